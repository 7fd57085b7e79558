"""Which prepared data set a config trains on (`config.data`), making the synthetic one on first use.

  config.data.name = 'synthetic'  → the embedded data set of preset `config.data.preset`, generated
                                    (stcnn.data.synthetic) and prepared (stcnn.data.prepare) once
                                    under `config.data.cache_dir`, then reused;
  config.data.name = 'prepared'   → the output of `python -m stcnn.data.prepare` at config.data.path.

In a multi-process run only process 0 generates and prepares; the others wait for it.
"""
from __future__ import annotations

import os

import jax

from stcnn import parallel
from stcnn.data import builders


def synthetic_path(config) -> str:
  from stcnn.data import synthetic
  return os.path.join(
      os.path.expanduser(config.data.cache_dir),
      f"synthetic-{config.data.preset}-seed{config.data.synthetic_seed}-v{synthetic.FORMAT_VERSION}")


def ensure_synthetic(config) -> str:
  """Generates + prepares the synthetic preset if not cached; returns the prepared data set dir.

  Presets in the UCF-101 layout (`transfer`) are prepared with the UCF-101 reader, split
  `config.data.ucf_split` (1..3).
  """
  from stcnn.data import prepare, synthetic  # heavy, and only needed here
  root = synthetic_path(config)
  preset = synthetic.get_preset(config.data.preset)

  prepared = os.path.join(root, f"prepared-{config.data.frame_size}px")

  def make():
    source = synthetic.generate(preset, os.path.join(root, "source"),
                                seed=config.data.synthetic_seed)
    if preset.layout == "ucf101":
      return prepare.prepare("ucf101", source, prepared,
                             split=config.data.ucf_split,
                             frame_size=config.data.frame_size)
    return prepare.prepare("csv", os.path.join(source, "manifest.csv"),
                           prepared, frame_size=config.data.frame_size)
  # Process 0 does the work; the others then find it done (both calls return at once).
  if jax.process_index() == 0:
    make()
  parallel.sync("synthetic data set ready")
  return make()


def load(config) -> builders.Prepared:
  """The prepared data set named by config.data (errors name the key)."""
  name = config.data.name
  if name == "synthetic":
    return builders.load(ensure_synthetic(config))
  if name == "prepared":
    if not config.data.path:
      raise ValueError("config.data.path: data.name='prepared' needs the directory written by "
                       "`python -m stcnn.data.prepare --output=DIR`")
    return builders.load(os.path.expanduser(config.data.path))
  raise ValueError(f"config.data.name: unknown {name!r}; expected 'synthetic' or 'prepared'")
