"""Grain input pipelines: the infinite training stream and the multi-view evaluation batches.

Both consume any random-access source (`len(source)`, `source[i]` → a record of the data contract in
`stcnn.data`, e.g. a tfds ArrayRecordDataSource or a list of dicts) and produce per-process numpy
batches {'video' float32 (b, T, S, S, 3), 'label' int32 (b,), 'target' float32 (b, C), ...}.

Where the videos are (`video_table`): which records are a video's segments, and their lengths and
labels, come from the data set's index (`Prepared.index(split)`: one small dict per record, no JPEG
bytes read) when one is passed as `index=`; without it (older data sets, in-memory sources) every
record is read once to find out, which at Sports-1M scale means reading all the data: pass the index.

Randomness contract (DESIGN.md), training [choice: videos, not segments, are the unit]:
  * global example g (= step · global_batch_size + position in the global batch) is a clip of video
    perm_e[g mod V] of epoch e = g // V, V = the number of videos, where perm_e is grain's index
    shuffle seeded by SeedSequence([seed, 1]) (+ e: grain reseeds each epoch): every video is seen
    once an epoch however many segments it was stored as (a 10-segment video is not drawn 10× as
    often as a short one), in a fresh order each epoch, a function of (seed, e) only;
  * its segment and clip start (one draw, uniform over the video's clip positions,
    `sampling.train_clip_position`), crop and flip come from np.random.default_rng([seed, 0, g])
    (draw order: position, top, left, flip), a function of (seed, g) only. The streams [seed, 0, ·]
    and [seed, 1] never share entropy (SeedSequence pads with zeros: [seed, 0x5EED] was example
    24301's);
  * every grain element is one process batch: element k of the MapDataset `...batch(b)` holds global
    examples [k·b, (k+1)·b), and process p keeps elements p, p + P, p + 2P, ..., i.e. the slice
    [p·b, (p+1)·b) of every global batch of B = P·b examples.
Batches are MapDataset elements addressed by index, so worker processes (mp_prefetch) and reader
threads only change who computes an element, never its content or order, and the iterator state is
one index per worker: `get_state()`/`set_state()` resume mid-epoch and across epochs exactly, and
`start_step=s` starts at step s from nothing but (seed, s).
"""
from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Iterable, Iterator, Sequence

import grain
import numpy as np

from stcnn.data import sampling
from stcnn.data import transforms

_EXAMPLE_STREAM = 0  # np.random.default_rng([seed, 0, g]): example g's draws.
_SHUFFLE_STREAM = 1  # SeedSequence([seed, 1]): the video order (grain adds the epoch).


# ---------------------------------------------------------------------------------------------
# Record fields.

def _as_str(value) -> str:
  if isinstance(value, np.ndarray):
    value = value.item()
  return value.decode() if isinstance(value, bytes) else str(value)


def video_id_of(record: dict) -> str:
  return _as_str(record["video_id"])


def _check_labels(labels, video_id: str, num_classes: int | None = None) -> np.ndarray:
  labels = np.atleast_1d(np.asarray(labels, np.int64))
  if labels.size == 0 or (num_classes is not None and
                          (labels.min() < 0 or labels.max() >= num_classes)):
    raise ValueError(f"video {video_id!r}: labels {labels.tolist()} must be 1 or more "
                     f"ids in [0, num_classes={num_classes})")
  return labels


def labels_of(record: dict, num_classes: int | None = None) -> np.ndarray:
  """The record's leaf label ids (int64, >= 1 of them), checked against num_classes."""
  return _check_labels(record["labels"], video_id_of(record), num_classes)


def soft_target(labels: Sequence[int], num_classes: int) -> np.ndarray:
  """float32 (C,): 1/n on each of the n distinct labels [choice, PAPER.md §3]."""
  labels = np.unique(np.asarray(labels, np.int64))
  target = np.zeros(num_classes, np.float32)
  target[labels] = 1.0 / len(labels)
  return target


def _shuffle_seed(seed: int) -> int:
  if not isinstance(seed, (int, np.integer)) or seed < 0:
    raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
  return int(np.random.SeedSequence([int(seed), _SHUFFLE_STREAM]).generate_state(1)[0])


def _read_options(read_threads: int) -> grain.ReadOptions:
  # One element is a whole batch: keep only `read_threads` of them in flight per process.
  return grain.ReadOptions(num_threads=read_threads, prefetch_buffer_size=read_threads)


def _normalize_batch(batch: dict[str, np.ndarray], mean: float) -> dict[str, np.ndarray]:
  """The last step: uint8 video → float32 minus mean; padding (mask False) stays 0."""
  video = transforms.normalize(batch["video"], mean)
  if "mask" in batch:
    video[~batch["mask"]] = 0
  return {**batch, "video": video}


def _iter_batches(ds: grain.MapDataset, *, mean: float, worker_count: int,
                  read_threads: int) -> grain.IterDataset:
  """Batches (uint8 video) computed by reader threads or worker processes, then made float32.

  With workers, batches cross to this process as uint8 (a quarter of the float32 bytes: 10 frames
  of 54×54 are 2.8 instead of 11 MB a batch of 32 through shared memory, which cost 16% of an
  example's time) and a thread of this process converts them one batch ahead of the consumer.
  """
  if worker_count < 0:
    raise ValueError(f"worker_count must be >= 0, got {worker_count}")
  normalize = functools.partial(_normalize_batch, mean=mean)
  if worker_count == 0:
    return ds.map(normalize).to_iter_dataset(_read_options(read_threads))
  ds = ds.to_iter_dataset(_read_options(read_threads))
  ds = ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=worker_count)).map(normalize)
  return grain.experimental.ThreadPrefetchIterDataset(ds, prefetch_buffer_size=1)


# ---------------------------------------------------------------------------------------------
# Where the videos are: the index, or a scan of the records.

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


def _index_rows(index: Sequence[dict], num_records: int) -> Iterator[tuple]:
  if len(index) != num_records:
    raise ValueError(f"the index has {len(index)} entries but the source {num_records} records: "
                     "it belongs to another split or data set")
  for e in index:
    vid = e["video_id"]
    yield (vid if type(vid) is str else _as_str(vid), e["labels"], e["segment"],  # pylint: disable=unidiomatic-typecheck
           e["num_segments"], e["num_frames"], e.get("fps"))


def _source_rows(source) -> Iterator[tuple]:
  for i in range(len(source)):
    r = source[i]  # Reads the record's JPEG bytes too: what `index=` avoids.
    yield (video_id_of(r), r["labels"], int(r["segment"]), int(r["num_segments"]),
           len(r["frames"]), r.get("fps"))


def _table(rows: Iterable[tuple], max_videos: int) -> VideoTable:
  """Groups (video_id, labels, segment, num_segments, num_frames, fps) rows, one per record."""
  position = {}  # video id → video index
  videos = []  # per video: [first segment seen, labels, other labels or None, declared, seen]
  video_of, segment_of, record_of, frames_of, fps_of = [], [], [], [], []  # per record kept
  pending = 0  # Videos (of the first max_videos) with fewer records seen than they declare.
  for i, (vid, lab, segment, num_segments, num_frames, rate) in enumerate(rows):
    v = position.get(vid)
    if v is None:
      if max_videos and len(videos) == max_videos:
        continue
      v = position[vid] = len(videos)
      videos.append([segment, tuple(_check_labels(lab, vid).tolist()), None, int(num_segments), 0])
      pending += 1
    elif (tuple(lab) if isinstance(lab, (list, tuple)) else
          tuple(np.atleast_1d(lab).tolist())) != videos[v][1]:
      lab = tuple(_check_labels(lab, vid).tolist())
      info = videos[v]
      if lab != info[1]:  # Rare: segments of one video with other labels.
        info[2] = (info[2] or set()) | set(lab) | set(info[1])
        if segment < info[0]:
          info[0], info[1] = segment, lab
    videos[v][4] += 1
    if videos[v][4] == videos[v][3]:
      pending -= 1
    video_of.append(v)
    segment_of.append(segment)
    record_of.append(i)
    frames_of.append(num_frames)
    fps_of.append(math.nan if rate is None else rate)
    if max_videos and len(videos) == max_videos and not pending:
      break  # The first max_videos videos are complete: read no further.
  order = np.lexsort((np.asarray(segment_of, np.int64), np.asarray(video_of, np.int64)))
  labels = [lab + tuple(sorted(more - set(lab))) if more else lab for _, lab, more, _, _ in videos]
  return VideoTable(
      video_ids=tuple(position), labels=tuple(labels),
      num_segments=np.array([info[3] for info in videos], np.int64),
      starts=np.concatenate([[0], np.cumsum([info[4] for info in videos])]).astype(np.int64),
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


# ---------------------------------------------------------------------------------------------
# Training.

def _train_example(g: int, video: int, *, source, starts: np.ndarray, records: np.ndarray,
                   frames: np.ndarray, seed: int, offsets: tuple[int, ...], crop_size: int,
                   num_classes: int, flip: bool) -> dict[str, Any]:
  """Global example g, a clip of `video` (the contract in the module docstring)."""
  rng = np.random.default_rng([seed, _EXAMPLE_STREAM, g])
  lo, hi = int(starts[video]), int(starts[video + 1])
  k, start = sampling.train_clip_position(rng, frames[lo:hi], sampling.clip_span(offsets))
  record = source[int(records[lo + k])]
  clip = sampling.read_clip(record, start, offsets)
  labels = labels_of(record, num_classes)
  return {"video": transforms.random_augment(rng, clip, crop_size, flip),
          "label": np.int32(labels[0]), "target": soft_target(labels, num_classes)}


def per_process_batch_size(global_batch_size: int, process_count: int) -> int:
  if process_count < 1 or global_batch_size < 1 or global_batch_size % process_count:
    raise ValueError(f"global_batch_size={global_batch_size} must be a positive multiple of "
                     f"process_count={process_count}")
  return global_batch_size // process_count


def train_dataset(source, *, num_frames: int, crop_size: int, num_classes: int,
                  global_batch_size: int, seed: int, process_index: int = 0,
                  process_count: int = 1, worker_count: int = 0, mean: float = transforms.MEAN,
                  flip: bool = True, frame_offsets: Sequence[int] | None = None,
                  read_threads: int = 2, start_step: int = 0,
                  index: Sequence[dict] | None = None) -> grain.IterDataset:
  """The infinite training stream of process batches as a grain IterDataset (see train_iterator)."""
  b = per_process_batch_size(global_batch_size, process_count)
  if not 0 <= process_index < process_count:
    raise ValueError(f"process_index={process_index} not in [0, process_count={process_count})")
  if start_step < 0:
    raise ValueError(f"start_step must be >= 0, got {start_step}")
  offsets = sampling.frame_offsets(num_frames, frame_offsets)
  _shuffle_seed(seed)  # Checks the seed before any scan.
  if len(source) == 0:
    raise ValueError("the training source is empty")
  table = video_table(source, index=index)
  example = functools.partial(
      _train_example, source=source, starts=table.starts, records=table.records,
      frames=table.frames, seed=int(seed), offsets=offsets, crop_size=crop_size,
      num_classes=num_classes, flip=flip)
  ds = grain.MapDataset.range(table.num_videos).shuffle(seed=_shuffle_seed(seed)).repeat()
  ds = ds.map_with_index(example)  # index = global example index g, element = its video.
  ds = ds.batch(b)  # grain's own stacking: in a worker it stacks straight into shared memory.
  ds = ds[process_index::process_count][start_step:]  # element k = this process's part of step k.
  return _iter_batches(ds, mean=mean, worker_count=worker_count, read_threads=read_threads)


def train_iterator(source, *, num_frames: int, crop_size: int, num_classes: int,
                   global_batch_size: int, seed: int, process_index: int = 0,
                   process_count: int = 1, worker_count: int = 0, mean: float = transforms.MEAN,
                   flip: bool = True, frame_offsets: Sequence[int] | None = None,
                   read_threads: int = 2, start_step: int = 0,
                   index: Sequence[dict] | None = None) -> grain.DatasetIterator:
  """The training stream: a checkpointable iterator of this process's batches, forever.

  Yields {'video' float32 (b, T, S, S, 3), 'label' int32 (b,) (the record's first label),
  'target' float32 (b, num_classes) (soft, 1/n on each of the n labels)} with
  b = global_batch_size // process_count, T = num_frames, S = crop_size.

  Sampling [choice]: an epoch is every *video* once, in a fresh order (not every segment: with
  max_segments=10, a long video would otherwise be drawn up to 10× as often as a short one); each
  example then takes a clip uniform over its video's clip positions, i.e. a segment weighted by its
  number of clip starts (all segments but a short video's only one have segment_frames frames).
  Which records make a video comes from `index` or, without it, one scan of the source at start.

  Args:
    source: random-access records (the data contract in `stcnn.data`).
    num_frames, crop_size, num_classes, global_batch_size, seed: as named. num_frames is the
      number of frames in a clip = len(frame_offsets) when those are given.
    process_index, process_count: this process reads [p·b, (p+1)·b) of every global batch.
    worker_count: grain worker processes (0: in this process); never changes the batches.
    mean: subtracted after crop and flip. flip: random horizontal flips (p=0.5).
    frame_offsets: the clip's frame offsets, default range(num_frames); e.g. (0, 15) for late
      fusion (num_frames=2: only the frames read are decoded and delivered).
    read_threads: threads per process, each computing one batch.
    start_step: the first global step to yield. Batches are a function of (seed, step), so a run
      can also resume from its step alone (e.g. after changing worker_count); get_state() of such
      an iterator counts from start_step.
    index: `Prepared.index(split)` (see `video_table`); None: read every record once at start
      (fine for small and in-memory sources, slow for big ones).

  Returns:
    a grain DatasetIterator: `get_state()` / `set_state(state)` restore the exact position
    (mid-epoch or not); call `close()` when worker_count > 0.
  """
  return iter(train_dataset(
      source, num_frames=num_frames, crop_size=crop_size, num_classes=num_classes,
      global_batch_size=global_batch_size, seed=seed, process_index=process_index,
      process_count=process_count, worker_count=worker_count, mean=mean, flip=flip,
      frame_offsets=frame_offsets, read_threads=read_threads, start_step=start_step,
      index=index))


# ---------------------------------------------------------------------------------------------
# Statistics.

def dataset_stats(source, *, num_classes: int | None = None, clip_frames: int | None = None,
                  index: Sequence[dict] | None = None) -> dict[str, Any]:
  """Counts for `inspect`: records, videos, frames/segments per video, labels, short segments.

  From `index` when given (no record read), else from a scan of the source. fps_mean is None when
  the index has no frame rates.
  """
  t = video_table(source, index=index)
  if not t.num_videos:
    return {"records": 0, "videos": 0}
  segs = np.diff(t.starts)
  frames_per_video = np.add.reduceat(t.frames, t.starts[:-1])
  num_classes = num_classes or 1 + max(max(lab) for lab in t.labels)
  per_class = np.zeros(num_classes, np.int64)
  for labels in t.labels:
    per_class[list(labels)] += 1
  mmm = lambda a: (int(a.min()), float(a.mean()), int(a.max()))
  known_fps = t.fps[~np.isnan(t.fps)]
  stats = {
      "records": len(t.records), "videos": t.num_videos,
      "segments_per_video": mmm(segs), "frames_per_video": mmm(frames_per_video),
      "frames_per_segment": mmm(t.frames),
      "fps_mean": float(known_fps.mean()) if known_fps.size else None,
      "videos_per_class": per_class,
      "multi_label_fraction": float(np.mean([len(lab) > 1 for lab in t.labels])),
      "incomplete_videos": int(np.sum(segs != t.num_segments)),
  }
  if clip_frames is not None:  # Segments whose clips repeat their last frame (sampling.py).
    stats["short_segments"] = int(np.sum(t.frames < clip_frames))
  return stats


# ---------------------------------------------------------------------------------------------
# Evaluation.

@dataclasses.dataclass(frozen=True)
class EvalPlan:
  """Which clips evaluation reads, and what a video-level evaluator needs to know.

  Example e of the evaluation (before padding) is view e % views of clip e // views; clip c belongs
  to video c // clips_per_video and is `clips[c]` = (video index, record index, start frame).
  """
  video_ids: tuple[str, ...]
  video_labels: np.ndarray  # float32 (num_videos, num_classes) multi-hot.
  first_labels: np.ndarray  # int32 (num_videos,): the 'label' of its examples, as in training.
  clips: np.ndarray  # int64 (num_videos * clips_per_video, 3).
  clips_per_video: int
  views: int
  offsets: tuple[int, ...]

  @property
  def num_videos(self) -> int:
    return len(self.video_ids)

  @property
  def num_examples(self) -> int:
    return len(self.clips) * self.views


def eval_plan(source, *, num_frames: int, num_classes: int, clips_per_video: int = 20,
              views: int = 4, frame_offsets: Sequence[int] | None = None,
              index: Sequence[dict] | None = None, max_videos: int = 0) -> EvalPlan:
  """Places clips_per_video clips in every video (sampling.py), videos in source order.

  Args:
    source, num_frames, num_classes, clips_per_video, views, frame_offsets: as in `eval_batches`.
    index: `Prepared.index(split)`: the plan then reads no record. None: scans the source.
    max_videos: > 0 keeps the first max_videos videos; a scan stops once it has them.
  """
  offsets = sampling.frame_offsets(num_frames, frame_offsets)
  span = sampling.clip_span(offsets)
  t = video_table(source, index=index, max_videos=max_videos)
  labels = np.zeros((t.num_videos, num_classes), np.float32)
  for v, lab in enumerate(t.labels):
    if min(lab) < 0 or max(lab) >= num_classes:
      _check_labels(lab, t.video_ids[v], num_classes)  # raises, naming the video
    labels[v, list(lab)] = 1.0
  placements = {}  # segment lengths → (segment position, start) of each clip; videos share them.
  records, starts = [], []
  for v in range(t.num_videos):
    seg = t.segments(v)
    lengths = tuple(t.frames[seg].tolist())
    if lengths not in placements:
      placements[lengths] = np.array(sampling.eval_clip_starts(lengths, clips_per_video, span),
                                     np.int64).reshape(-1, 2)
    placed = placements[lengths]
    records.append(t.records[seg][placed[:, 0]])
    starts.append(placed[:, 1])
  clips = np.stack([np.repeat(np.arange(t.num_videos, dtype=np.int64), clips_per_video),
                    np.concatenate(records or [np.zeros(0, np.int64)]),
                    np.concatenate(starts or [np.zeros(0, np.int64)])], axis=1)
  first = np.array([lab[0] for lab in t.labels], np.int32)
  return EvalPlan(t.video_ids, labels, first, clips, clips_per_video, views, offsets)


class _EvalBatch:
  """This process's part of global evaluation batch `step` (video uint8 until `_iter_batches`);
  padding has mask False, index -1.

  Clips are ordered by video and segment, so consecutive clips mostly share a record: the last
  record read is kept (within a batch, and from the previous batch of this thread or process), so
  a video's record is read about once instead of once per clip.
  """

  def __init__(self, source, plan: EvalPlan, *, crop_size: int, global_batch_size: int, b: int,
               process_index: int):
    self._source, self._plan, self._crop_size = source, plan, crop_size
    self._global_batch_size, self._b, self._process_index = global_batch_size, b, process_index
    self._last = (-1, None)  # (record index, record); replaced whole, so thread-safe.
    self.reads = 0  # Records read (for tests and benchmarks).

  def __getstate__(self):
    return {**self.__dict__, "_last": (-1, None), "reads": 0}

  def __call__(self, step: int) -> dict[str, np.ndarray]:
    plan, b, crop_size = self._plan, self._b, self._crop_size
    first = step * self._global_batch_size + self._process_index * b
    n = min(max(plan.num_examples - first, 0), b)  # real examples here, then padding.
    video = np.zeros((b, len(plan.offsets), crop_size, crop_size, 3), np.uint8)
    video_index = np.full(b, -1, np.int32)
    last = self._last
    clip, views, decoded = None, None, -1  # Consecutive views of a clip share one decode.
    for j in range(n):
      c, view = divmod(first + j, plan.views)
      video_index[j], record_index, start = plan.clips[c]
      if c != decoded:
        if last[0] != record_index:
          last = (int(record_index), self._source[int(record_index)])
          self.reads += 1
        clip, decoded = sampling.read_clip(last[1], int(start), plan.offsets), c
        views = transforms.eval_views(clip.shape[1], clip.shape[2], crop_size, plan.views)
      video[j] = transforms.crop_flip(clip, views[view].top, views[view].left, crop_size,
                                      views[view].flip)
    self._last = last
    target = plan.video_labels[video_index] / plan.video_labels[video_index].sum(-1, keepdims=True)
    target[n:] = 0
    label = plan.first_labels[video_index]
    label[n:] = 0
    return {"video": video, "label": label, "target": target.astype(np.float32),
            "video_index": video_index, "mask": np.arange(b) < n}


class EvalBatches:
  """Re-iterable evaluation batches of one process (see `eval_batches`); `len()` = batch count."""

  def __init__(self, source, plan: EvalPlan, *, crop_size: int, batch_size: int, mean: float,
               process_index: int, process_count: int, worker_count: int, read_threads: int):
    b = per_process_batch_size(batch_size, process_count)
    self.plan = plan
    self.batch_size = batch_size
    self.num_batches = -(-plan.num_examples // batch_size)
    self.batch_fn = _EvalBatch(source, plan, crop_size=crop_size, global_batch_size=batch_size,
                               b=b, process_index=process_index)
    self._dataset = _iter_batches(grain.MapDataset.range(self.num_batches).map(self.batch_fn),
                                  mean=mean, worker_count=worker_count, read_threads=read_threads)

  @property
  def num_videos(self) -> int:
    return self.plan.num_videos

  @property
  def video_labels(self) -> np.ndarray:
    return self.plan.video_labels

  def __len__(self) -> int:
    return self.num_batches

  def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
    it = iter(self._dataset)
    try:
      yield from it
    finally:  # stop the pass's worker processes and free their shared memory
      getattr(it, "close", lambda: None)()


def eval_batches(source, *, num_frames: int, crop_size: int, num_classes: int,
                 clips_per_video: int = 20, views: int = 4, batch_size: int,
                 mean: float = transforms.MEAN, process_index: int = 0, process_count: int = 1,
                 frame_offsets: Sequence[int] | None = None, plan: EvalPlan | None = None,
                 worker_count: int = 0, read_threads: int = 2,
                 index: Sequence[dict] | None = None, max_videos: int = 0) -> EvalBatches:
  """Deterministic multi-view evaluation batches [paper §4: 20 clips × 4 views a video].

  Every video contributes clips_per_video × views examples (clip-major, view-minor, videos in order
  of first appearance in the source). The last global batch is padded to `batch_size` (global,
  independent of device and process count) with mask=False, video 0, target 0, video_index -1.
  Process p gets examples [p·b, (p+1)·b) of every global batch, b = batch_size // process_count.
  Batches: {'video', 'label' (the video's first label), 'target', 'video_index' int32, 'mask' bool}.
  Returns a re-iterable `EvalBatches` (`for batch in ...`), exposing `.plan`, `.num_videos`,
  `.video_labels` (multi-hot, (num_videos, C)) and `len()` (batches per pass). Pass a `plan` from
  `eval_plan` to skip making one; else one is made from `index` (or a scan) and `max_videos`.
  """
  if plan is None:
    plan = eval_plan(source, num_frames=num_frames, num_classes=num_classes,
                     clips_per_video=clips_per_video, views=views, frame_offsets=frame_offsets,
                     index=index, max_videos=max_videos)
  elif (plan.clips_per_video, plan.views, len(plan.offsets)) != (clips_per_video, views,
                                                                 num_frames):
    raise ValueError(f"plan has clips_per_video={plan.clips_per_video}, views={plan.views}, "
                     f"{len(plan.offsets)} frames; asked for {clips_per_video}, {views}, "
                     f"{num_frames}")
  return EvalBatches(source, plan, crop_size=crop_size, batch_size=batch_size, mean=mean,
                     process_index=process_index, process_count=process_count,
                     worker_count=worker_count, read_threads=read_threads)
