"""Grain input pipelines: the infinite training stream and the multi-view evaluation batches.

Both consume any random-access source (`len(source)`, `source[i]` → a record of the data contract in
`stcnn.data`, e.g. a tfds ArrayRecordDataSource or a list of dicts) and produce per-process numpy
batches {'video' float32 (b, T, S, S, 3), 'label' int32 (b,), 'target' float32 (b, C), ...}.

Randomness contract (DESIGN.md), training:
  * global example g (= step · global_batch_size + position in the global batch) reads record
    perm_e[g mod N] of epoch e = g // N, where perm_e is grain's index shuffle seeded by
    (shuffle_seed(seed) + e): each epoch is a fresh permutation, a function of (seed, e) only;
  * its clip start, crop and flip come from np.random.default_rng([seed, g]) (draw order: start,
    top, left, flip), a function of (seed, g) only;
  * every grain element is one process batch: element k of the MapDataset `...batch(b)` holds global
    examples [k·b, (k+1)·b), and process p keeps elements p, p + P, p + 2P, ..., i.e. the slice
    [p·b, (p+1)·b) of every global batch of B = P·b examples.
Batches are MapDataset elements addressed by index, so worker processes (mp_prefetch) and reader
threads only change who computes an element, never its content or order, and the iterator state is
one index per worker: `get_state()`/`set_state()` resume mid-epoch and across epochs exactly.
"""
from __future__ import annotations

import collections
import dataclasses
import functools
from typing import Any, Iterator, Sequence

import grain
import numpy as np

from stcnn.data import sampling
from stcnn.data import transforms

_SHUFFLE_STREAM = 0x5EED  # Separates the record-order stream from the per-example streams.


# ---------------------------------------------------------------------------------------------
# Record fields.

def video_id_of(record: dict) -> str:
  vid = record["video_id"]
  if isinstance(vid, np.ndarray):
    vid = vid.item()
  return vid.decode() if isinstance(vid, bytes) else str(vid)


def labels_of(record: dict, num_classes: int | None = None) -> np.ndarray:
  """The record's leaf label ids (int64, >= 1 of them), checked against num_classes."""
  labels = np.atleast_1d(np.asarray(record["labels"], np.int64))
  if labels.size == 0 or (num_classes is not None and
                          (labels.min() < 0 or labels.max() >= num_classes)):
    raise ValueError(f"video {video_id_of(record)!r}: labels {labels.tolist()} must be 1 or more "
                     f"ids in [0, num_classes={num_classes})")
  return labels


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


def _with_workers(ds: grain.IterDataset, worker_count: int) -> grain.IterDataset:
  if worker_count < 0:
    raise ValueError(f"worker_count must be >= 0, got {worker_count}")
  if worker_count == 0:
    return ds
  return ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=worker_count))


# ---------------------------------------------------------------------------------------------
# Training.

def _train_example(index: int, record: dict, *, seed: int, offsets: tuple[int, ...],
                   crop_size: int, num_classes: int, flip: bool) -> dict[str, Any]:
  rng = np.random.default_rng([seed, index])
  clip = sampling.sample_train_clip(rng, record, offsets)
  labels = labels_of(record, num_classes)
  return {"video": transforms.random_augment(rng, clip, crop_size, flip),
          "label": np.int32(labels[0]), "target": soft_target(labels, num_classes)}


def _collate(examples: Sequence[dict[str, Any]], mean: float) -> dict[str, np.ndarray]:
  batch = {k: np.stack([e[k] for e in examples]) for k in examples[0]}
  batch["video"] = transforms.normalize(batch["video"], mean)
  return batch


def per_process_batch_size(global_batch_size: int, process_count: int) -> int:
  if process_count < 1 or global_batch_size < 1 or global_batch_size % process_count:
    raise ValueError(f"global_batch_size={global_batch_size} must be a positive multiple of "
                     f"process_count={process_count}")
  return global_batch_size // process_count


def train_dataset(source, *, num_frames: int, crop_size: int, num_classes: int,
                  global_batch_size: int, seed: int, process_index: int = 0,
                  process_count: int = 1, worker_count: int = 0, mean: float = transforms.MEAN,
                  flip: bool = True, frame_offsets: Sequence[int] | None = None,
                  read_threads: int = 2, start_step: int = 0) -> grain.IterDataset:
  """The infinite training stream of process batches as a grain IterDataset (see train_iterator)."""
  b = per_process_batch_size(global_batch_size, process_count)
  if not 0 <= process_index < process_count:
    raise ValueError(f"process_index={process_index} not in [0, process_count={process_count})")
  if len(source) == 0:
    raise ValueError("the training source is empty")
  if start_step < 0:
    raise ValueError(f"start_step must be >= 0, got {start_step}")
  example = functools.partial(
      _train_example, seed=int(seed), offsets=sampling.frame_offsets(num_frames, frame_offsets),
      crop_size=crop_size, num_classes=num_classes, flip=flip)
  ds = grain.MapDataset.source(source).shuffle(seed=_shuffle_seed(seed)).repeat()
  ds = ds.map_with_index(example)  # index = global example index g.
  ds = ds.batch(b, batch_fn=functools.partial(_collate, mean=mean))
  ds = ds[process_index::process_count][start_step:]  # element k = this process's part of step k.
  return _with_workers(ds.to_iter_dataset(_read_options(read_threads)), worker_count)


def train_iterator(source, *, num_frames: int, crop_size: int, num_classes: int,
                   global_batch_size: int, seed: int, process_index: int = 0,
                   process_count: int = 1, worker_count: int = 0, mean: float = transforms.MEAN,
                   flip: bool = True, frame_offsets: Sequence[int] | None = None,
                   read_threads: int = 2, start_step: int = 0) -> grain.DatasetIterator:
  """The training stream: a checkpointable iterator of this process's batches, forever.

  Yields {'video' float32 (b, T, S, S, 3), 'label' int32 (b,) (the record's first label),
  'target' float32 (b, num_classes) (soft, 1/n on each of the n labels)} with
  b = global_batch_size // process_count, T = num_frames, S = crop_size.

  Args:
    source: random-access records (the data contract in `stcnn.data`).
    num_frames, crop_size, num_classes, global_batch_size, seed: as named.
    process_index, process_count: this process reads [p·b, (p+1)·b) of every global batch.
    worker_count: grain worker processes (0: in this process); never changes the batches.
    mean: subtracted after crop and flip. flip: random horizontal flips (p=0.5).
    frame_offsets: the clip's frame offsets, default range(num_frames); e.g. (0, 15) for late
      fusion.
    read_threads: threads per process, each computing one batch.
    start_step: the first global step to yield. Batches are a function of (seed, step), so a run
      can also resume from its step alone (e.g. after changing worker_count); get_state() of such
      an iterator counts from start_step.

  Returns:
    a grain DatasetIterator: `get_state()` / `set_state(state)` restore the exact position
    (mid-epoch or not); call `close()` when worker_count > 0.
  """
  return iter(train_dataset(
      source, num_frames=num_frames, crop_size=crop_size, num_classes=num_classes,
      global_batch_size=global_batch_size, seed=seed, process_index=process_index,
      process_count=process_count, worker_count=worker_count, mean=mean, flip=flip,
      frame_offsets=frame_offsets, read_threads=read_threads, start_step=start_step))


# ---------------------------------------------------------------------------------------------
# Data set scan (evaluation plan and statistics).

@dataclasses.dataclass(frozen=True)
class _RecordInfo:
  video_id: str
  labels: tuple[int, ...]
  segment: int
  num_segments: int
  num_frames: int
  fps: float


def _scan(source) -> list[_RecordInfo]:
  """Reads every record's metadata (the JPEG bytes are read, not decoded)."""
  infos = []
  for i in range(len(source)):
    r = source[i]
    infos.append(_RecordInfo(video_id_of(r), tuple(labels_of(r).tolist()), int(r["segment"]),
                             int(r["num_segments"]), len(r["frames"]), float(r["fps"])))
  return infos


def _group_by_video(infos: Sequence[_RecordInfo]) -> dict[str, list[int]]:
  """video_id → its record indices sorted by segment; videos in order of first appearance."""
  videos = collections.defaultdict(list)
  for i, info in enumerate(infos):
    videos[info.video_id].append(i)
  return {v: sorted(idx, key=lambda i: infos[i].segment) for v, idx in videos.items()}


def dataset_stats(source, *, num_classes: int | None = None,
                  clip_frames: int | None = None) -> dict[str, Any]:
  """Counts for `inspect`: records, videos, frames/segments per video, labels, short segments."""
  infos = _scan(source)
  videos = _group_by_video(infos)
  if not infos:
    return {"records": 0, "videos": 0}
  frames_per_video = np.array([sum(infos[i].num_frames for i in idx) for idx in videos.values()])
  frames_per_segment = np.array([info.num_frames for info in infos])
  segs = np.array([len(idx) for idx in videos.values()])
  video_labels = [sorted(set().union(*(infos[i].labels for i in idx))) for idx in videos.values()]
  num_classes = num_classes or 1 + max(max(l) for l in video_labels)
  per_class = np.zeros(num_classes, np.int64)
  for labels in video_labels:
    per_class[labels] += 1
  mmm = lambda a: (int(a.min()), float(a.mean()), int(a.max()))
  stats = {
      "records": len(infos), "videos": len(videos),
      "segments_per_video": mmm(segs), "frames_per_video": mmm(frames_per_video),
      "frames_per_segment": mmm(frames_per_segment),
      "fps_mean": float(np.mean([info.fps for info in infos])),
      "videos_per_class": per_class,
      "multi_label_fraction": float(np.mean([len(l) > 1 for l in video_labels])),
      "incomplete_videos": sum(len(idx) != infos[idx[0]].num_segments
                               for idx in videos.values()),
  }
  if clip_frames is not None:  # Segments whose clips repeat their last frame (sampling.py).
    stats["short_segments"] = int(np.sum(frames_per_segment < clip_frames))
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
              views: int = 4, frame_offsets: Sequence[int] | None = None) -> EvalPlan:
  """Scans the source once and places clips_per_video clips in every video (sampling.py)."""
  offsets = sampling.frame_offsets(num_frames, frame_offsets)
  infos = _scan(source)
  videos = _group_by_video(infos)
  labels = np.zeros((len(videos), num_classes), np.float32)
  first = np.array([infos[idx[0]].labels[0] for idx in videos.values()], np.int32)
  clips = []
  for v, idx in enumerate(videos.values()):
    for i in idx:
      labels[v, list(labels_of(dataclasses.asdict(infos[i]), num_classes))] = 1.0
    starts = sampling.eval_clip_starts([infos[i].num_frames for i in idx], clips_per_video,
                                       sampling.clip_span(offsets))
    clips += [(v, idx[k], start) for k, start in starts]
  return EvalPlan(tuple(videos), labels, first, np.array(clips, np.int64).reshape(-1, 3),
                  clips_per_video, views, offsets)


def _eval_batch(step: int, *, source, plan: EvalPlan, crop_size: int, num_classes: int,
                global_batch_size: int, b: int, process_index: int,
                mean: float) -> dict[str, np.ndarray]:
  """This process's part of global evaluation batch `step`; padding has mask False, index -1."""
  first = step * global_batch_size + process_index * b
  n = min(max(plan.num_examples - first, 0), b)  # real examples here, then padding.
  video = np.zeros((b, len(plan.offsets), crop_size, crop_size, 3), np.uint8)
  video_index = np.full(b, -1, np.int32)
  clip, views, decoded = None, None, -1  # Consecutive views of a clip share one decode.
  for j in range(n):
    c, view = divmod(first + j, plan.views)
    video_index[j], record_index, start = plan.clips[c]
    if c != decoded:
      record = source[int(record_index)]
      indices, _ = sampling.clip_frame_indices(len(record["frames"]), int(start), plan.offsets)
      clip, decoded = sampling.decode_clip(record["frames"], indices), c
      views = transforms.eval_views(clip.shape[1], clip.shape[2], crop_size, plan.views)
    video[j] = transforms.crop_flip(clip, views[view].top, views[view].left, crop_size,
                                    views[view].flip)
  video = transforms.normalize(video, mean)
  video[n:] = 0
  target = plan.video_labels[video_index] / plan.video_labels[video_index].sum(-1, keepdims=True)
  target[n:] = 0
  label = plan.first_labels[video_index]
  label[n:] = 0
  return {"video": video, "label": label, "target": target.astype(np.float32),
          "video_index": video_index, "mask": np.arange(b) < n}


class EvalBatches:
  """Re-iterable evaluation batches of one process (see `eval_batches`); `len()` = batch count."""

  def __init__(self, source, plan: EvalPlan, *, crop_size: int, num_classes: int,
               batch_size: int, mean: float, process_index: int, process_count: int,
               worker_count: int, read_threads: int):
    b = per_process_batch_size(batch_size, process_count)
    self.plan = plan
    self.batch_size = batch_size
    self.num_batches = -(-plan.num_examples // batch_size)
    fn = functools.partial(_eval_batch, source=source, plan=plan, crop_size=crop_size,
                           num_classes=num_classes, global_batch_size=batch_size, b=b,
                           process_index=process_index, mean=mean)
    ds = grain.MapDataset.range(self.num_batches).map(fn)
    self._dataset = _with_workers(ds.to_iter_dataset(_read_options(read_threads)), worker_count)

  @property
  def num_videos(self) -> int:
    return self.plan.num_videos

  @property
  def video_labels(self) -> np.ndarray:
    return self.plan.video_labels

  def __len__(self) -> int:
    return self.num_batches

  def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
    return iter(self._dataset)


def eval_batches(source, *, num_frames: int, crop_size: int, num_classes: int,
                 clips_per_video: int = 20, views: int = 4, batch_size: int,
                 mean: float = transforms.MEAN, process_index: int = 0, process_count: int = 1,
                 frame_offsets: Sequence[int] | None = None, plan: EvalPlan | None = None,
                 worker_count: int = 0, read_threads: int = 2) -> EvalBatches:
  """Deterministic multi-view evaluation batches [paper §4: 20 clips × 4 views a video].

  Every video contributes clips_per_video × views examples (clip-major, view-minor, videos in order
  of first appearance in the source). The last global batch is padded to `batch_size` (global,
  independent of device and process count) with mask=False, video 0, target 0, video_index -1.
  Process p gets examples [p·b, (p+1)·b) of every global batch, b = batch_size // process_count.
  Batches: {'video', 'label' (the video's first label), 'target', 'video_index' int32, 'mask' bool}.
  Returns a re-iterable `EvalBatches` (`for batch in ...`), exposing `.plan`, `.num_videos`,
  `.video_labels` (multi-hot, (num_videos, C)) and `len()` (batches per pass). Pass a `plan` from
  `eval_plan` to skip rescanning the source.
  """
  if plan is None:
    plan = eval_plan(source, num_frames=num_frames, num_classes=num_classes,
                     clips_per_video=clips_per_video, views=views, frame_offsets=frame_offsets)
  elif (plan.clips_per_video, plan.views, len(plan.offsets)) != (clips_per_video, views,
                                                                 num_frames):
    raise ValueError(f"plan has clips_per_video={plan.clips_per_video}, views={plan.views}, "
                     f"{len(plan.offsets)} frames; asked for {clips_per_video}, {views}, "
                     f"{num_frames}")
  return EvalBatches(source, plan, crop_size=crop_size, num_classes=num_classes,
                     batch_size=batch_size, mean=mean, process_index=process_index,
                     process_count=process_count, worker_count=worker_count,
                     read_threads=read_threads)
