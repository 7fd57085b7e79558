"""Clip augmentation (pure numpy): the one home of crop, flip and mean subtraction [paper §2].

Clips stay uint8 (T, H, W, 3) through crop and flip; `normalize` is the last step and the only one
that makes float32. The training draws come in as uniforms (`crop_flip_params`, the contract in
`stcnn.data.randomness`), and the crop itself takes explicit parameters (`crop_flip`), so the
numerics are testable without randomness.

Training [paper]: one random crop_size × crop_size window and one coin flip (p=0.5) per clip, the
same for every frame of the clip; subtract the constant 117.

Evaluation [paper: "each clip seen 4 times (different crops and flips)"; the crops are our choice]:
`eval_views` lists deterministic views in this order

  0 centre        1 centre+flip      2 top-left         3 bottom-right+flip
  4 top-right     5 bottom-left+flip 6 top-left+flip    7 bottom-right
  8 top-right+flip 9 bottom-left

so views=4 (the default) = the centre crop twice (camera bias: the subject is usually central) and
both diagonals' corners once, two views flipped and two not; views=2 = centre × {no flip, flip};
views=10 = the 5 crops × 2 flips of AlexNet.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from stcnn.data.randomness import uniform_index

MEAN = 117.0  # [paper] constant subtracted from raw pixel values.
PAPER_FRAME_SIZE = 200  # [paper] stored frames are 200 × 200.
PAPER_CROP_SIZE = 170  # [paper] network input.
PAPER_MULTIRES_CROP_SIZE = 178  # [derived] multires input: 2 × 89.


def crop_size_for(frame_size: int, multires: bool = False) -> int:
  """The network input size for stored frames of `frame_size` (170/178 at 200, scaled otherwise).

  Multires crops are even (context = the crop downsampled ×2, fovea = its centre half), so they are
  rounded to the nearest even size: 200 → 178, 64 → 56. Single-stream crops round to the nearest
  integer: 200 → 170, 64 → 54, 32 → 27.
  """
  if frame_size <= 0:
    raise ValueError(f"frame_size must be positive, got {frame_size}")
  if multires:
    size = 2 * int(round(frame_size * PAPER_MULTIRES_CROP_SIZE / 2 / PAPER_FRAME_SIZE))
  else:
    size = int(round(frame_size * PAPER_CROP_SIZE / PAPER_FRAME_SIZE))
  return max(size, 2 if multires else 1)


def _check_size(height: int, width: int, crop_size: int) -> None:
  if crop_size > height or crop_size > width or crop_size <= 0:
    raise ValueError(f"crop_size={crop_size} does not fit frames of {height}x{width}")


def crop_flip(clip: np.ndarray, top: int, left: int, crop_size: int, flip: bool, *,
              frames: np.ndarray | slice | None = None,
              out: np.ndarray | None = None) -> np.ndarray:
  """The same crop (and horizontal flip) of every frame of a (T, H, W, C) clip; dtype unchanged.

  frames: which of the clip's frames to take (indices or a slice; default all), gathered after the
    crop, so a clip of a stored segment copies only its crops.
  out: written into (C-contiguous, the result's shape) and returned; default a new array.
  """
  clip = np.asarray(clip)
  _check_size(clip.shape[-3], clip.shape[-2], crop_size)
  if not (0 <= top <= clip.shape[-3] - crop_size and 0 <= left <= clip.shape[-2] - crop_size):
    raise ValueError(f"crop at ({top}, {left}) of size {crop_size} leaves the "
                     f"{clip.shape[-3]}x{clip.shape[-2]} frame")
  view = clip[..., top:top + crop_size, left:left + crop_size, :]
  if isinstance(frames, slice):
    view = view[frames]
  elif frames is not None:
    view = view[np.asarray(frames, np.int64)]  # a copy of the crops only
  if not flip:
    if out is None:
      return np.ascontiguousarray(view)
    out[...] = view
    return out
  if out is None:
    out = np.empty(view.shape, view.dtype)
  _flipped_into(view, out)
  return out


def _flipped_into(src: np.ndarray, out: np.ndarray) -> None:
  """out[...] = src[..., ::-1, :] for (..., W, C) arrays, 3-4× faster than NumPy's own copy of the
  flipped view (which moves each 3-byte pixel alone: ~290 µs for 10 frames of 54²).

  Reversing a row's W·C elements reverses its pixels and each pixel's channels; channel k is then
  taken from C-1-k, C strided copies of whole rows.
  """
  c = src.shape[-1]
  rows = src.reshape(*src.shape[:-2], -1)[..., ::-1]
  flat = out.reshape(*out.shape[:-2], -1)
  for k in range(c):
    flat[..., k::c] = rows[..., c - 1 - k::c]


def crop_flip_params(u, height: int, width: int, crop_size: int,
                     flip: bool = True) -> tuple[int, int, bool]:
  """The training crop and flip of a clip from three uniforms in [0, 1), u = (top, left, flip):
  (top, left) uniform over every position where the crop fits, then the flip coin (p=0.5) if
  `flip`."""
  _check_size(height, width, crop_size)
  return (uniform_index(u[0], height - crop_size + 1), uniform_index(u[1], width - crop_size + 1),
          bool(flip and u[2] < 0.5))


def random_augment(rng: np.random.Generator, clip: np.ndarray, crop_size: int,
                   flip: bool = True) -> np.ndarray:
  """One random crop and coin flip of a uint8 clip, the same for all frames: `crop_flip_params` of
  three uniforms drawn from `rng`."""
  top, left, do_flip = crop_flip_params(rng.random(3), clip.shape[-3], clip.shape[-2], crop_size,
                                        flip)
  return crop_flip(clip, top, left, crop_size, do_flip)


def normalize(video: np.ndarray, mean: float = MEAN) -> np.ndarray:
  """The last transform: uint8 pixels → float32 minus the constant mean."""
  return np.subtract(video, np.float32(mean), dtype=np.float32)


@dataclasses.dataclass(frozen=True)
class View:
  """A deterministic evaluation view: crop position and flip."""
  top: int
  left: int
  flip: bool


_VIEW_ORDER = (("c", False), ("c", True), ("tl", False), ("br", True), ("tr", False),
               ("bl", True), ("tl", True), ("br", False), ("tr", True), ("bl", False))


def view_names(views: int = 4) -> list[str]:
  """Readable names of the first `views` eval views, e.g. 'centre', 'bottom-right flipped'."""
  where = {"c": "centre", "tl": "top-left", "tr": "top-right", "bl": "bottom-left",
           "br": "bottom-right"}
  return [where[name] + (" flipped" if flip else "") for name, flip in _VIEW_ORDER[:views]]


def eval_views(height: int, width: int, crop_size: int, views: int = 4) -> list[View]:
  """The first `views` (1..10) deterministic views, in the order of the module docstring."""
  _check_size(height, width, crop_size)
  if not 1 <= views <= len(_VIEW_ORDER):
    raise ValueError(f"views must be in 1..{len(_VIEW_ORDER)}, got {views}")
  bottom, right = height - crop_size, width - crop_size
  corners = {"c": (bottom // 2, right // 2), "tl": (0, 0), "tr": (0, right),
             "bl": (bottom, 0), "br": (bottom, right)}
  return [View(*corners[name], flip) for name, flip in _VIEW_ORDER[:views]]
