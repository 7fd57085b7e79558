"""Which records are which video's segments: `video_table(source, index=...)`.

A prepared data set stores a video as one record per segment (the data contract in `stcnn.data`).
The table groups them by video, from the data set's index (`Prepared.index(split)`: one small dict
per record, no JPEG bytes read) or, without one (older data sets, in-memory sources), from one scan
of the records, which at Sports-1M scale means reading all the data: pass the index.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Iterable, Iterator, Sequence

import numpy as np


# ------------------------------------------------------------------------------------ record fields
def _as_str(value) -> str:
  if isinstance(value, np.ndarray):
    value = value.item()
  return value.decode() if isinstance(value, bytes) else str(value)


def video_id_of(record: dict) -> str:
  return _as_str(record["video_id"])


def check_labels(labels, video_id: str, num_classes: int | None = None) -> np.ndarray:
  """Label ids as int64 (>= 1 of them, in [0, num_classes)); the error names the video."""
  labels = np.atleast_1d(np.asarray(labels, np.int64))
  if labels.size == 0 or (num_classes is not None and
                          (labels.min() < 0 or labels.max() >= num_classes)):
    raise ValueError(f"video {video_id!r}: labels {labels.tolist()} must be 1 or more "
                     f"ids in [0, num_classes={num_classes})")
  return labels


def labels_of(record: dict, num_classes: int | None = None) -> np.ndarray:
  """The record's leaf label ids (int64, >= 1 of them), checked against num_classes."""
  return check_labels(record["labels"], video_id_of(record), num_classes)


# ---------------------------------------------------------------------------------------- the table
@dataclasses.dataclass(frozen=True)
class VideoTable:
  """A source's records grouped by video.

  Videos are in order of first appearance in the source, a video's records in segment order:
  video v's records are `records[starts[v]:starts[v + 1]]`, of `frames[...]` frames each.
  """
  video_ids: tuple[str, ...]
  labels: tuple[tuple[int, ...], ...]  # per video: its first segment's labels, then any others.
  num_segments: np.ndarray  # int64 (V,): the segment count the records declare.
  starts: np.ndarray  # int64 (V + 1,)
  records: np.ndarray  # int64 (R,): record indices in the source.
  frames: np.ndarray  # int64 (R,)
  fps: np.ndarray  # float64 (R,); NaN where unknown (an index without fps).

  @property
  def num_videos(self) -> int:
    return len(self.video_ids)

  def segments(self, v: int) -> slice:
    return slice(int(self.starts[v]), int(self.starts[v + 1]))


@dataclasses.dataclass(frozen=True)
class _Row:
  """One record as the table needs it."""
  video_id: str
  labels: object  # list, tuple or array of label ids
  segment: int
  num_segments: int
  num_frames: int
  fps: float | None


@dataclasses.dataclass
class _Video:
  """What the table learns about one video while reading its records."""
  first_segment: int  # the lowest segment seen: its labels are the video's first labels
  labels: tuple[int, ...]
  other_labels: set[int] | None  # labels of segments that disagree with `labels` (rare)
  declared_segments: int
  seen_segments: int = 0

  def all_labels(self) -> tuple[int, ...]:
    if not self.other_labels:
      return self.labels
    return self.labels + tuple(sorted(self.other_labels - set(self.labels)))


def _index_rows(index: Sequence[dict], num_records: int) -> Iterator[_Row]:
  if len(index) != num_records:
    raise ValueError(f"the index has {len(index)} entries but the source {num_records} records: "
                     "it belongs to another split or data set")
  for e in index:
    vid = e["video_id"]
    yield _Row(vid if type(vid) is str else _as_str(vid), e["labels"], e["segment"],  # pylint: disable=unidiomatic-typecheck
               e["num_segments"], e["num_frames"], e.get("fps"))


def _source_rows(source) -> Iterator[_Row]:
  for i in range(len(source)):
    r = source[i]  # Reads the record's JPEG bytes too: what `index=` avoids.
    yield _Row(video_id_of(r), r["labels"], int(r["segment"]), int(r["num_segments"]),
               len(r["frames"]), r.get("fps"))


def _as_tuple(labels) -> tuple:
  return tuple(labels) if isinstance(labels, (list, tuple)) else tuple(
      np.atleast_1d(labels).tolist())


def _table(rows: Iterable[_Row], max_videos: int) -> VideoTable:
  """Groups the rows (one per record) by video."""
  position: dict[str, int] = {}  # video id → video index
  videos: list[_Video] = []
  video_of, segment_of, record_of, frames_of, fps_of = [], [], [], [], []  # per record kept
  pending = 0  # Videos (of the first max_videos) with fewer records seen than they declare.
  for i, row in enumerate(rows):
    v = position.get(row.video_id)
    if v is None:
      if max_videos and len(videos) == max_videos:
        continue
      v = position[row.video_id] = len(videos)
      videos.append(_Video(row.segment, tuple(check_labels(row.labels, row.video_id).tolist()),
                           None, int(row.num_segments)))
      pending += 1
    elif _as_tuple(row.labels) != videos[v].labels:
      lab = tuple(check_labels(row.labels, row.video_id).tolist())
      video = videos[v]
      if lab != video.labels:  # Rare: segments of one video with other labels.
        video.other_labels = (video.other_labels or set()) | set(lab) | set(video.labels)
        if row.segment < video.first_segment:
          video.first_segment, video.labels = row.segment, lab
    videos[v].seen_segments += 1
    if videos[v].seen_segments == videos[v].declared_segments:
      pending -= 1
    video_of.append(v)
    segment_of.append(row.segment)
    record_of.append(i)
    frames_of.append(row.num_frames)
    fps_of.append(math.nan if row.fps is None else row.fps)
    if max_videos and len(videos) == max_videos and not pending:
      break  # The first max_videos videos are complete: read no further.
  order = np.lexsort((np.asarray(segment_of, np.int64), np.asarray(video_of, np.int64)))
  return VideoTable(
      video_ids=tuple(position), labels=tuple(video.all_labels() for video in videos),
      num_segments=np.array([video.declared_segments for video in videos], np.int64),
      starts=np.concatenate([[0], np.cumsum([video.seen_segments for video in videos])]
                            ).astype(np.int64),
      records=np.asarray(record_of, np.int64)[order],
      frames=np.asarray(frames_of, np.int64)[order], fps=np.asarray(fps_of, np.float64)[order])


def video_table(source, *, index: Sequence[dict] | None = None,
                max_videos: int = 0) -> VideoTable:
  """The source's records grouped by video, from `index` (no record read) or a scan of the source.

  Args:
    source: random-access records (the data contract in `stcnn.data`).
    index: `Prepared.index(split)`: per record in stored order {"video_id", "labels", "segment",
      "num_segments", "num_frames"} (+ optional "fps"); None: read every record instead.
    max_videos: > 0 keeps only the first max_videos videos (in order of first appearance); the
      scan then stops as soon as they have all their declared segments (at once when a video's
      segments are stored together, as `prepare` writes them).
  """
  if max_videos < 0:
    raise ValueError(f"max_videos must be >= 0 (0: all), got {max_videos}")
  rows = _source_rows(source) if index is None else _index_rows(index, len(source))
  return _table(rows, max_videos)
