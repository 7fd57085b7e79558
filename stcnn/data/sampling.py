"""Clip sampling from one prepared record (one video segment); decodes only the frames it needs.

A clip is `len(offsets)` frames at `start + offsets` of a segment; offsets are range(num_frames)
for contiguous clips (single-frame, early and slow fusion) and e.g. (0, 15) for late fusion. Its
span is max(offsets) + 1 frames.

Training [paper: clips are random and about half a second]: a position uniform over every place
where the span fits in one of the video's segments (`train_clip_position`: one uniform picks the
segment and the start together, so a segment weighs as many clips as it has starts).

Evaluation [paper: 20 clips a video, 50 on UCF-101]: exactly N clips a video, spread over the
video's segments as evenly as possible (segment k of S gets the clips j with floor(j·S/N) = k, i.e.
⌊N/S⌋ or ⌈N/S⌉ of them), and inside a segment at the centres of m equal slices of the valid starts.
Videos shorter than the clip give repeated clips: every video still weighs N clips.

Decoding: `decode_clip` decodes only the distinct frames a clip reads, with `decode_jpeg` (libjpeg
straight from the bytes, without PIL's Python header parser; the same pixels).

Short segments [choice]: when a segment has fewer frames than the span, the missing frames repeat
the segment's last frame (the clip "freezes" at the end, no artificial jump as looping would give).
`clip_frame_indices` returns how many frames were padded; `stcnn.inspect.dataset_stats` counts the
segments this affects.
"""
from __future__ import annotations

import struct
from typing import Sequence

import numpy as np
from PIL import Image

from stcnn.data import video_io
from stcnn.data.randomness import uniform_index


def clip_offsets(num_frames: int, offsets: Sequence[int] | None = None) -> tuple[int, ...]:
  """The clip's frame offsets: `offsets` if given (checked), else range(num_frames)."""
  if num_frames < 1:
    raise ValueError(f"num_frames must be >= 1, got {num_frames}")
  if offsets is None:
    return tuple(range(num_frames))
  offsets = tuple(int(o) for o in offsets)
  if not offsets or min(offsets) < 0 or list(offsets) != sorted(set(offsets)):
    raise ValueError(f"frame_offsets={offsets} must be increasing offsets >= 0")
  if len(offsets) != num_frames:
    raise ValueError(f"frame_offsets={offsets} has {len(offsets)} frames, num_frames={num_frames}: "
                     f"a clip holds exactly the frames read, so num_frames must be "
                     f"len(frame_offsets) = {len(offsets)} (their span is {max(offsets) + 1})")
  return offsets


def clip_span(offsets: Sequence[int]) -> int:
  """How many consecutive frames a clip covers."""
  return max(offsets) + 1


def clip_frame_indices(num_available: int, start: int,
                       offsets: Sequence[int]) -> tuple[np.ndarray, int]:
  """Frame indices start + offsets, clamped to the last frame; also how many were clamped."""
  if num_available < 1:
    raise ValueError("a segment with no frames cannot give a clip")
  wanted = start + np.asarray(offsets, np.int64)
  indices = np.minimum(wanted, num_available - 1)
  return indices, int(np.sum(wanted != indices))


def clip_frames(num_available: int, start: int, offsets: Sequence[int]) -> slice | np.ndarray:
  """The frames of `clip_frame_indices` as a slice when they are consecutive and all exist (a view
  of a decoded segment, no copy), else as the clamped index array."""
  if offsets[-1] == len(offsets) - 1 and start + len(offsets) <= num_available:
    return slice(start, start + len(offsets))
  return clip_frame_indices(num_available, start, offsets)[0]


def train_clip_position(u: float, segment_lengths: Sequence[int],
                        span: int) -> tuple[int, int]:
  """(segment position, start) uniform over every clip position of a video, from one uniform u.

  Segment k of n_k frames has max(n_k - span, 0) + 1 starts (one, 0, when it is shorter than the
  span); i = uniform_index(u, all the video's starts) names segment k and start i - (the starts of
  the segments before k). `TrainClipPositions` does the same for many videos.
  """
  if len(segment_lengths) == 0:
    raise ValueError("a video with no segments cannot give a clip")
  return TrainClipPositions([0, len(segment_lengths)], segment_lengths, span).draw(u, 0)


class TrainClipPositions:
  """`train_clip_position` for every video of a table, its cumulative start counts made once.

  Video v's segments are records starts[v]..starts[v+1]-1 of `frames` frames each (`VideoTable`).
  """

  def __init__(self, starts: Sequence[int], frames: Sequence[int], span: int):
    self._starts = np.asarray(starts, np.int64)
    counts = np.maximum(np.asarray(frames, np.int64) - span, 0) + 1
    self._before = np.concatenate([[0], np.cumsum(counts)])  # clip starts before each record

  def draw(self, u: float, video: int) -> tuple[int, int]:
    """(segment position in the video, start frame), uniform over the video's clips for u
    uniform in [0, 1)."""
    lo, hi = int(self._starts[video]), int(self._starts[video + 1])
    base = int(self._before[lo])
    at = base + uniform_index(u, int(self._before[hi]) - base)
    record = int(np.searchsorted(self._before, at, side="right")) - 1
    return record - lo, at - int(self._before[record])


def eval_clip_starts(segment_lengths: Sequence[int], clips_per_video: int,
                     span: int) -> list[tuple[int, int]]:
  """(segment position, start) for each of the video's clips_per_video evaluation clips."""
  num_segments = len(segment_lengths)
  if num_segments == 0 or clips_per_video < 1:
    raise ValueError(f"need >= 1 segment and clip, got {num_segments} and {clips_per_video}")
  owner = [j * num_segments // clips_per_video for j in range(clips_per_video)]
  clips = []
  for k, length in enumerate(segment_lengths):
    m = owner.count(k)
    valid = max(int(length) - span, 0) + 1  # number of valid starts
    clips += [(k, (2 * i + 1) * valid // (2 * m)) for i in range(m)]
  return clips


def _jpeg_bytes(frame) -> bytes | None:
  """The frame's JPEG bytes, or None if it is already a decoded array."""
  if isinstance(frame, (bytes, np.bytes_)):
    return bytes(frame)
  if isinstance(frame, np.ndarray) and frame.dtype == object:
    return _jpeg_bytes(frame.item())
  return None


# Start of frame markers (not DHT/JPG/DAC).
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def jpeg_size(data: bytes) -> tuple[int, int] | None:
  """(width, height) from a JPEG's frame header, or None unless it has 1 or 3 components.

  Walks the marker segments up to the first start-of-frame (a few hops: APP0, DQT, SOF).
  """
  if data[:2] != b"\xff\xd8":
    return None
  i, n = 2, len(data)
  while i + 4 <= n:
    if data[i] != 0xFF:
      return None
    marker = data[i + 1]
    if marker == 0xFF:  # fill byte
      i += 1
    elif marker == 0x01 or 0xD0 <= marker <= 0xD7:  # no length
      i += 2
    elif marker in _SOF_MARKERS:
      if i + 10 > n:
        return None
      _, _, height, width, components = struct.unpack_from(">HBHHB", data, i + 2)
      return (width, height) if width and height and components in (1, 3) else None
    elif marker == 0xDA:  # scan data before any frame header
      return None
    else:
      i += 2 + struct.unpack_from(">H", data, i + 2)[0]
  return None


def decode_jpeg(data: bytes) -> np.ndarray:
  """RGB uint8 (H, W, 3) of JPEG bytes, the same pixels as `video_io.decode_jpeg`, faster.

  For a 1- or 3-component JPEG, libjpeg decodes straight into an image of the size read from the
  frame header (`PIL.Image.frombytes(..., "jpeg")`, which raises unless it consumed a complete image
  of that size); this skips PIL's Python header parser, ~40% of a 64×64 frame's decode. Anything
  else (CMYK, an unreadable header) takes `video_io.decode_jpeg`.
  """
  size = jpeg_size(data)
  if size is not None:
    try:
      return np.asarray(Image.frombytes("RGB", size, data, "jpeg", "RGB", ""))
    except (ValueError, OSError):
      pass
  return video_io.decode_jpeg(data)


def decode_frame(frame) -> np.ndarray:
  """uint8 (H, W, 3) from JPEG bytes (the data contract) or an already decoded array."""
  data = _jpeg_bytes(frame)
  return np.asarray(frame) if data is None else decode_jpeg(data)


def is_decoded(frames) -> bool:
  """Whether a record's frames are already decoded: a uint8 (N, H, W, 3) array (`frame_cache`)."""
  return isinstance(frames, np.ndarray) and frames.dtype == np.uint8 and frames.ndim == 4


def decode_clip(frames: Sequence, indices: Sequence[int]) -> np.ndarray:
  """uint8 (T, H, W, 3): decodes each distinct frame index once (already decoded frames, a uint8
  (N, H, W, 3) array as `frame_cache` gives, are gathered in one indexing)."""
  if is_decoded(frames):
    return frames[np.asarray(indices, np.int64)]
  decoded = {int(i): decode_frame(frames[int(i)]) for i in np.unique(indices)}
  shapes = {d.shape for d in decoded.values()}
  if len(shapes) > 1:
    raise ValueError(f"the clip's frames {sorted(decoded)} have different shapes {shapes}: a "
                     "record's frames must all have one size")
  return np.stack([decoded[int(i)] for i in indices])


def read_clip(record: dict, start: int, offsets: Sequence[int]) -> np.ndarray:
  """uint8 (T, H, W, 3): the record's frames start + offsets (clamped to its last frame)."""
  indices, _ = clip_frame_indices(len(record["frames"]), start, offsets)
  return decode_clip(record["frames"], indices)

