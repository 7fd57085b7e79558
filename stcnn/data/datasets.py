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
  return os.path.join(os.path.expanduser(config.data.cache_dir),
                      f"synthetic-{config.data.preset}-seed{config.data.get('synthetic_seed', 0)}")


def ensure_synthetic(config) -> str:
  """Generates + prepares the synthetic preset if not cached; returns the prepared data set dir."""
  from stcnn.data import prepare, synthetic  # heavy, and only needed here
  root = synthetic_path(config)
  prepared = os.path.join(root, "prepared")
  if jax.process_index() == 0:
    synthetic.generate(config.data.preset, os.path.join(root, "source"),
                       seed=config.data.get("synthetic_seed", 0))
    prepared = prepare.prepare("csv", os.path.join(root, "source", "manifest.csv"), prepared,
                               frame_size=config.data.frame_size)
  parallel.sync("synthetic data set ready")
  return prepared


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
