"""The paper's networks. `build(config)` is the one entry point; see fusion.py for the variants."""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from stcnn.models import fusion, heads
from stcnn.models.fusion import FUSIONS, STREAMS, VideoNet
from stcnn.models.heads import Hierarchy, loss_fn

__all__ = [
    "build",
    "check_model_config",
    "conv1_kernels",
    "frame_offsets",
    "fusion",
    "FUSIONS",
    "heads",
    "Hierarchy",
    "hierarchy_for",
    "loss_fn",
    "num_frames",
    "STREAMS",
    "VideoNet",
]

HEADS = ("flat", "tree")
DTYPES = ("float32", "bfloat16")  # compute dtype; parameters and optimiser state stay float32


def check_model_config(config) -> None:
  """Refuses bad num_classes and model.* values up front, naming the key and what was expected
  (the table and the cross-key rules of stcnn.config_check; absent keys are left to the code that
  reads them)."""
  from stcnn import config_check  # it imports this package for FUSIONS, STREAMS and HEADS
  config_check.check(config, only=("num_classes", "model"), partial=True)


def hierarchy_for(config) -> Hierarchy | None:
  """The class tree for `config.model.head == 'tree'`, from config.model.hierarchy: a path to a
  hierarchy.json, or group sizes as text ('6,6,6,6': consecutive leaves in 4 groups)."""
  if config.model.head != "tree":
    return None
  h = config.model.get("hierarchy")
  if not h:
    raise ValueError("config.model.hierarchy: the tree head needs a class hierarchy (a "
                     "hierarchy.json path or group sizes like '6,6,6,6'); the trainer fills it "
                     "from the data set when the data set has one")
  if all(part.strip().isdigit() for part in h.split(",")):
    hier = Hierarchy.from_groups([int(part) for part in h.split(",")])
  else:
    hier = Hierarchy.from_json(h)
  if hier.num_leaves != config.num_classes:
    raise ValueError(f"config.model.hierarchy has {hier.num_leaves} leaves but "
                     f"config.num_classes = {config.num_classes}")
  return hier


def build(config) -> VideoNet:
  """The linen module for a config (keys: num_classes, model.{fusion, streams, width, dropout,
  head, hierarchy, early_frames, late_gap})."""
  check_model_config(config)
  m = config.model
  return VideoNet(
      num_classes=config.num_classes, fusion=m.fusion, streams=m.streams, width=m.width,
      dropout=m.dropout, head=m.head, hierarchy=hierarchy_for(config),
      early_frames=m.early_frames, late_gap=m.late_gap,
      dtype=jnp.dtype(m.get("dtype", "float32")))


def conv1_kernels(params) -> dict:
  """{stream: first-layer kernel, float32 (h, w, 3·frames, filters)} of a VideoNet's params, for
  each of its streams ('tower' for a full-frame network, 'fovea', 'context'), in that order."""
  out = {}
  for stream in ("tower", "fovea", "context"):
    kernel = params.get(stream, {}).get("conv1", {}).get("conv", {}).get("kernel")
    if kernel is not None:
      out[stream] = np.asarray(kernel, np.float32)
  return out


def frame_offsets(config) -> tuple[int, ...]:
  """The clip frames this config's network reads (late fusion: (0, 15)); the input pipeline
  decodes only these."""
  m = config.model
  return fusion.frame_offsets(m.fusion, m.early_frames, m.late_gap)


def num_frames(config) -> int:
  """How many frames a clip for this config's network must have (1, 10, 16, 10)."""
  return max(frame_offsets(config)) + 1
