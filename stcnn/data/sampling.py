"""Clip sampling from one prepared record (one video segment); decodes only the frames it needs.

A clip is `len(offsets)` frames at `start + offsets` of a segment; offsets are range(num_frames)
for contiguous clips (single-frame, early and slow fusion) and e.g. (0, 15) for late fusion. Its
span is max(offsets) + 1 frames.

Training [paper: clips are random and about half a second]: a start uniform over every position
where the span fits in the segment.

Evaluation [paper: 20 clips a video, 50 on UCF-101]: exactly N clips a video, spread over the
video's segments as evenly as possible (segment k of S gets the clips j with floor(j·S/N) = k, i.e.
⌊N/S⌋ or ⌈N/S⌉ of them), and inside a segment at the centres of m equal slices of the valid starts.
Videos shorter than the clip give repeated clips: every video still weighs N clips.

Short segments [choice]: when a segment has fewer frames than the span, the missing frames repeat
the segment's last frame (the clip "freezes" at the end, no artificial jump as looping would give).
`clip_frame_indices` returns how many frames were padded; `pipeline.dataset_stats` counts the
segments this affects.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from stcnn.data import video_io


def frame_offsets(num_frames: int, offsets: Sequence[int] | None = None) -> tuple[int, ...]:
  """The clip's frame offsets: `offsets` if given (checked), else range(num_frames)."""
  if num_frames < 1:
    raise ValueError(f"num_frames must be >= 1, got {num_frames}")
  if offsets is None:
    return tuple(range(num_frames))
  offsets = tuple(int(o) for o in offsets)
  if len(offsets) != num_frames or min(offsets) < 0 or list(offsets) != sorted(set(offsets)):
    raise ValueError(f"frame_offsets={offsets} must be {num_frames} increasing offsets >= 0")
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


def train_clip_start(rng: np.random.Generator, num_available: int, span: int) -> int:
  """A start uniform over [0, num_available - span] (0 when the segment is shorter than span)."""
  return int(rng.integers(0, max(num_available - span, 0) + 1))


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


def decode_frame(frame) -> np.ndarray:
  """uint8 (H, W, 3) from JPEG bytes (the data contract) or an already decoded array."""
  if isinstance(frame, (bytes, np.bytes_)):
    return video_io.decode_jpeg(bytes(frame))
  frame = np.asarray(frame)
  if frame.dtype == object:
    return video_io.decode_jpeg(frame.item())
  return frame


def decode_clip(frames: Sequence, indices: Sequence[int]) -> np.ndarray:
  """uint8 (T, H, W, 3): decodes each distinct frame index once."""
  decoded = {int(i): decode_frame(frames[int(i)]) for i in np.unique(indices)}
  return np.stack([decoded[int(i)] for i in indices])


def sample_train_clip(rng: np.random.Generator, record: dict,
                      offsets: Sequence[int]) -> np.ndarray:
  """Training clip of a record: draws the start from `rng`, returns uint8 (T, H, W, 3)."""
  frames = record["frames"]
  start = train_clip_start(rng, len(frames), clip_span(offsets))
  indices, _ = clip_frame_indices(len(frames), start, offsets)
  return decode_clip(frames, indices)
