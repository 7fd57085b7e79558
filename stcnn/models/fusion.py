"""The paper's networks: single-frame, early, late and slow fusion × full-frame / multires streams.

Time connectivity [paper §1, Fig. 1]:
- single: one frame (the first frame of the clip it is given).
- early: conv1 spans T=10 contiguous frames (11×11×3×10 filters), the rest of the tower is 2-D.
- late: two towers with shared weights on frames 0 and 15 (a 16-frame clip), up to and including
  conv5+pool, concatenated at FC1.
- slow: 10 frames; conv1 extent 4 stride 2 → 4 responses in time, conv2 and conv3 extent 2 stride
  2 → 2 → 1; valid in time; conv4, conv5 spatial. conv3 sees all 10 frames.

Streams: `full` = one tower on the whole frame; `multires` = a fovea and a context tower (unshared
weights [choice], last pool removed so each ends at 7×7×256), concatenated at FC1; `fovea` /
`context` = one of those streams alone. Multires is combinable with every fusion type [choice].

Then FC(4096)-ReLU-dropout-FC(4096)-ReLU-dropout and the head. ReLU after every conv and FC
[choice]; dropout on the FC layers only, rate from the config [choice, paper silent for Sports-1M].
"""
from __future__ import annotations

from typing import Any, Optional

import flax.linen as nn
import jax.numpy as jnp

from stcnn.models import heads, layers, multires

FUSIONS = ("single", "early", "late", "slow")
STREAMS = ("full", "multires", "fovea", "context")
EARLY_FRAMES = 10  # [paper] early fusion's conv1 spans T = 10 contiguous frames
LATE_GAP = 15  # [paper] late fusion's two towers see frames 15 apart
SLOW_TEMPORAL = ((4, 2), (2, 2), (2, 2))  # [paper] slow fusion conv1..conv3 (extent, stride)


def check_architecture(fusion: str, streams: str = "full") -> None:
  """The one check of the fusion and stream names (errors name the config key)."""
  for key, value, allowed in (("fusion", fusion, FUSIONS), ("streams", streams, STREAMS)):
    if value not in allowed:
      raise ValueError(f"config.model.{key}: unknown {value!r}; expected one of {allowed}")


def temporal_spec(fusion: str, early_frames: int = EARLY_FRAMES):
  """(extent, stride) in time for conv1..conv3 of each fusion type."""
  return {"single": (), "late": (), "early": ((early_frames, 1),), "slow": SLOW_TEMPORAL}[fusion]


def frames_spanned(spec) -> int:
  """How many input frames a stack of valid temporal convs (extent, stride) reduces to one."""
  t = 1
  for extent, stride in reversed(spec):
    t = (t - 1) * stride + extent
  return t


def frame_offsets(fusion: str, early_frames: int = EARLY_FRAMES,
                  late_gap: int = LATE_GAP) -> tuple[int, ...]:
  """The one rule for which of a clip's frames a network reads (the clip spans max(...) + 1).

  single (0,); early range(early_frames); late (0, late_gap); slow range(10): the frames its
  temporal convs reduce to one response.
  """
  check_architecture(fusion)
  return {"single": (0,), "early": tuple(range(early_frames)), "late": (0, late_gap),
          "slow": tuple(range(frames_spanned(SLOW_TEMPORAL)))}[fusion]


class VideoNet(nn.Module):
  """video float32 (B, T, H, W, 3), mean-subtracted → scores (B, num_classes).

  T is `num_frames` (1, 10, 16, 10; longer clips are fine, the first frames are read) or exactly
  `len(frame_offsets)`: the frames read, already gathered (the input pipeline decodes only those,
  e.g. late fusion's frames 0 and 15).

  Pure function of (params, video, dropout rng): `apply({'params': p}, video, train=True,
  rngs={'dropout': rng})`. Any square input size works; the paper's are 170 (full) and 178
  (multires: two 89×89 streams).
  """
  num_classes: int
  fusion: str = "single"
  streams: str = "full"
  width: float = 1.0
  dropout: float = 0.5
  head: str = "flat"
  hierarchy: Optional[heads.Hierarchy] = None
  early_frames: int = EARLY_FRAMES
  late_gap: int = LATE_GAP
  lrn: tuple[float, int, float, float] = (2.0, 5, 1e-4, 0.5)  # k, n, alpha, beta [paper]
  dtype: Any = jnp.float32  # compute dtype (bfloat16: mixed precision); params and scores float32
  conv_impl: Optional[str] = None  # every conv's formulation (layers.CONV_IMPLS); None: measured

  @property
  def frame_offsets(self) -> tuple[int, ...]:
    return frame_offsets(self.fusion, self.early_frames, self.late_gap)

  @property
  def num_frames(self) -> int:
    """Length of the clip the data pipeline must give this network (1, 10, 16, 10)."""
    return max(self.frame_offsets) + 1

  @nn.compact
  def __call__(self, video, train: bool = False):
    if video.ndim != 5 or video.shape[-1] != 3:
      raise ValueError(f"video must be (batch, time, height, width, 3), got {video.shape}")
    check_architecture(self.fusion, self.streams)
    idx = self.frame_offsets
    if video.shape[1] == len(idx) < self.num_frames:
      x = video  # the clip holds exactly the frames read (late fusion: frames 0 and 15 gathered)
    elif video.shape[1] >= self.num_frames:
      x = video[:, idx[0]:idx[-1] + 1] if idx == tuple(range(idx[0], idx[-1] + 1)) else \
          video[:, list(idx)]
    else:
      raise ValueError(f"{self.fusion} fusion reads frames {idx} of a {self.num_frames}-frame "
                       f"clip (or exactly those {len(idx)} frames), the clip has {video.shape[1]}")
    x = x.astype(self.dtype)
    tower = lambda name, last_pool: layers.Tower(  # noqa: E731
        self.width, temporal_spec(self.fusion, self.early_frames), last_pool,
        *self.lrn, dtype=self.dtype, conv_impl=self.conv_impl, name=name)
    if self.streams == "full":
      feats = [tower("tower", True)(x)]
    else:
      names = ("fovea", "context") if self.streams == "multires" else (self.streams,)
      feats = [tower(n, False)(multires.STREAM_INPUTS[n](x)) for n in names]
    x = jnp.concatenate([f.reshape(f.shape[0], -1) for f in feats], axis=-1)
    for i in (1, 2):
      x = nn.relu(nn.Dense(layers.scaled(layers.FC_WIDTH, self.width), dtype=self.dtype,
                           name=f"fc{i}")(x))
      x = nn.Dropout(self.dropout, deterministic=not train)(x)
    x = x.astype(jnp.float32)  # the head and the loss in float32
    if self.head == "tree":
      return heads.TreeHead(self.hierarchy, name="head")(x)
    return heads.FlatHead(self.num_classes, name="head")(x)
