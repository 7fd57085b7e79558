"""The paper's networks. `build(config)` is the one entry point; see fusion.py for the variants."""
from __future__ import annotations

from stcnn.models import heads
from stcnn.models import fusion
from stcnn.models.fusion import FUSIONS, STREAMS, VideoNet
from stcnn.models.heads import Hierarchy, loss_fn

__all__ = [
    "build",
    "check_model_config",
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


def check_model_config(config) -> None:
  """Refuses bad model keys up front, naming the key and what was expected."""
  m = config.model
  fusion.check_architecture(m.fusion, m.streams)
  if m.head not in HEADS:
    raise ValueError(f"config.model.head: unknown {m.head!r}; expected one of {HEADS}")
  if not m.width > 0:
    raise ValueError(f"config.model.width must be > 0, got {m.width}")
  if not 0 <= m.dropout < 1:
    raise ValueError(f"config.model.dropout must be in [0, 1), got {m.dropout}")
  if config.num_classes < 1:
    raise ValueError(f"config.num_classes must be >= 1, got {config.num_classes}")
  if m.get("input_size", 0) and m.streams != "full" and m.input_size % 2:
    raise ValueError(f"config.model.input_size: multires/fovea/context streams need an even "
                     f"frame size (centre half + ×2 downsample), got {m.input_size}")


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
      early_frames=m.early_frames, late_gap=m.late_gap)


def frame_offsets(config) -> tuple[int, ...]:
  """The clip frames this config's network reads (late fusion: (0, 15)); the input pipeline
  decodes only these."""
  m = config.model
  return fusion.frame_offsets(m.fusion, m.early_frames, m.late_gap)


def num_frames(config) -> int:
  """How many frames a clip for this config's network must have (1, 10, 16, 10)."""
  return max(frame_offsets(config)) + 1
