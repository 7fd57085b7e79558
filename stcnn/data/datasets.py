"""Which prepared data set a config trains on (`config.data`), making the synthetic one on first
use.

  config.data.name = 'synthetic'  → the embedded data set of preset `config.data.preset`, made
                                    (stcnn.data.synthetic; see `ensure_synthetic`) once under
                                    `config.data.cache_dir`, then reused;
  config.data.name = 'prepared'   → the output of `python -m stcnn.data.prepare` at
                                    config.data.path.

In a multi-process run the caller says which process does the work (`leader`) and how the others
wait for it (`barrier`, e.g. `stcnn.parallel.sync`): this package knows no devices or hosts.
"""
from __future__ import annotations

import os
from typing import Callable

from stcnn.data import prepared


def _no_barrier(name: str) -> None:
  del name


def with_resolved_paths(config):
  """A copy of `config` whose data paths are absolute (`~` and the working directory resolved)."""
  config = config.copy_and_resolve_references()
  for key in ("path", "cache_dir"):
    if config.data.get(key):
      config.data[key] = os.path.abspath(os.path.expanduser(config.data[key]))
  return config


def synthetic_path(config) -> str:
  """Where the synthetic data set of config.data lives: one folder per (preset, seed, version)."""
  from stcnn.data import synthetic
  return os.path.join(
      os.path.expanduser(config.data.cache_dir),
      f"synthetic-{config.data.preset}-seed{config.data.synthetic_seed}-v{synthetic.FORMAT_VERSION}")


def ensure_synthetic(config, *, leader: bool = True,
                     barrier: Callable[[str], None] = _no_barrier) -> str:
  """Generates + prepares the synthetic preset if not cached; returns the prepared data set dir.

  Sports-layout presets (tiny, cpu, paper) are rendered straight to prepared records
  (`synthetic.prepare_records`, under `records-v<RECORDS_VERSION>-<frame_size>px`: no video
  files). Presets in the UCF-101 layout (`transfer`) are written as videos (`synthetic.generate`)
  and prepared with the UCF-101 reader, split `config.data.ucf_split` (1..3). Both use every core
  (at most one process per 256 videos). Refused before any work if config.num_classes does not
  match the preset (a paper-size config is Sports-1M's 487-way network; the `paper` preset has
  fewer).
  """
  from stcnn.data import prepare, synthetic  # heavy, and only needed here
  root = synthetic_path(config)
  preset = synthetic.get_preset(config.data.preset)
  if config.num_classes != preset.num_leaves:
    raise ValueError(f"config.num_classes = {config.num_classes} but the synthetic preset "
                     f"{config.data.preset!r} (config.data.preset) has {preset.num_leaves} "
                     f"classes: pass --config.num_classes={preset.num_leaves}")
  seed, size = config.data.synthetic_seed, config.data.frame_size
  workers = synthetic.default_workers(preset.num_videos)

  def make():
    if preset.layout == "sports":
      records = os.path.join(root, f"records-v{synthetic.RECORDS_VERSION}-{size}px")
      return synthetic.prepare_records(preset, records, seed=seed, frame_size=size,
                                       workers=workers)
    source = synthetic.generate(preset, os.path.join(root, "source"), seed=seed, workers=workers)
    return prepare.prepare("ucf101", source, os.path.join(root, f"prepared-{size}px"),
                           split=config.data.ucf_split, frame_size=size)
  # The leader does the work; the others then find it done (their call returns at once).
  path = make() if leader else None
  barrier("synthetic data set ready")
  return path or make()


def load(config, *, leader: bool = True,
         barrier: Callable[[str], None] = _no_barrier) -> prepared.Prepared:
  """The prepared data set named by config.data (errors name the key); see `ensure_synthetic`."""
  name = config.data.name
  if name == "synthetic":
    return prepared.load(ensure_synthetic(config, leader=leader, barrier=barrier))
  if name == "prepared":
    if not config.data.path:
      raise ValueError("config.data.path: data.name='prepared' needs the directory written by "
                       "`python -m stcnn.data.prepare --output=DIR`")
    return prepared.load(os.path.expanduser(config.data.path))
  raise ValueError(f"config.data.name: unknown {name!r}; expected 'synthetic' or 'prepared'")
