"""Grain input pipelines: the infinite training stream and the multi-view evaluation batches.

Both consume any random-access source (`len(source)`, `source[i]` → a record of the data contract in
`stcnn.data`, e.g. a tfds ArrayRecordDataSource or a list of dicts) and produce per-process numpy
batches {'video' float32 (b, T, S, S, 3), 'label' int32 (b,), 'target' float32 (b, C), ...}.

Which records make each video comes from `stcnn.data.video_index` (pass the data set's index).

Randomness contract (docs/design.md; its streams live in `stcnn.data.randomness`), training
[choice: videos, not segments, are the unit]:
  * global example g (= step · global_batch_size + position in the global batch) is a clip of video
    perm_e[g mod V] of epoch e = g // V, V = the number of videos, where perm_e is grain's index
    shuffle (`grain.MapDataset.range(V).shuffle(...).repeat()`, computed a whole epoch at a time by
    `order.epoch_order`) seeded by `randomness.shuffle_seed(seed)` (+ e: grain reseeds each
    epoch): every video is seen once an epoch however many segments it was stored as (a
    10-segment video is not drawn 10× as often as a short one), in a fresh order each epoch, a
    function of (seed, e) only;
  * its segment and clip start (`sampling.TrainClipPositions`: uniform over the video's clip
    positions), crop and flip (`transforms.crop_flip_params`) come from example g's four uniforms,
    `randomness.example_uniforms` (position, top, left, flip), a function of (seed, g) only;
  * every grain element is one process batch: element k of the MapDataset holds this process's
    slice [p·b, (p+1)·b) of global step start_step + k's B = P·b examples (`_TrainBatch`, which
    computes the whole slice in one call).
Batches are MapDataset elements addressed by index, so worker processes (mp_prefetch) and reader
threads only change who computes an element, never its content or order, and the iterator state is
one index per worker: `get_state()`/`set_state()` resume mid-epoch and across epochs exactly, and
`start_step=s` starts at step s from nothing but (seed, s).
"""
from __future__ import annotations

import dataclasses
import functools
import gc
import signal
import sys
from typing import Iterator, Sequence

import grain
import numpy as np

from stcnn.data import order, randomness, sampling, transforms
from stcnn.data.video_index import check_labels, labels_of, video_table

_LABEL_CACHE = 1 << 16  # records whose checked labels a training batch function keeps


def soft_target(labels: Sequence[int], num_classes: int) -> np.ndarray:
  """float32 (C,): 1/n on each of the n distinct labels [choice, docs/paper.md §3]."""
  labels = np.asarray(labels, np.int64)
  target = np.zeros(num_classes, np.float32)
  target[labels] = soft_weight(labels)
  return target


def soft_weight(labels: Sequence[int]) -> float:
  """The weight `soft_target` gives each of a record's labels."""
  return 1.0 / len(set(np.asarray(labels).tolist()))


def _read_options(read_threads: int) -> grain.ReadOptions:
  # One element is a whole batch: keep only `read_threads` of them in flight per process.
  return grain.ReadOptions(num_threads=read_threads, prefetch_buffer_size=read_threads)


def _normalize_batch(batch: dict[str, np.ndarray], mean: float) -> dict[str, np.ndarray]:
  """The last step: uint8 video → float32 minus mean; padding (mask False) stays 0."""
  video = transforms.normalize(batch["video"], mean)
  if "mask" in batch:
    video[~batch["mask"]] = 0
  return {**batch, "video": video}


def _ignore_sigint(worker_index: int, worker_count: int) -> None:
  """Workers leave Ctrl-C to the main process, which checkpoints and stops them."""
  del worker_index, worker_count
  signal.signal(signal.SIGINT, signal.SIG_IGN)


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
  ds = ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=worker_count),
                      worker_init_fn=_ignore_sigint).map(normalize)
  return grain.experimental.ThreadPrefetchIterDataset(ds, prefetch_buffer_size=1)


def drain_shared_memory() -> None:
  """Frees the shared memory of the batches worker processes sent that were dropped unread.

  Grain unlinks a dropped batch's shared memory on a background thread pool; tasks still queued
  when the process exits never run, and Python's resource_tracker then warns of "leaked
  shared_memory objects". Called once the iterators are closed: waits for those tasks (grain
  starts a new pool for the next multiprocess iterator).
  """
  from grain._src.python.ipc import shared_memory_array  # pylint: disable=g-import-not-at-top
  array = shared_memory_array.SharedMemoryArray
  pool = array._del_thread_pool  # pylint: disable=protected-access
  if pool is None:
    return
  gc.collect()  # batches in reference cycles of the closed iterators reach __del__ now
  pool.close()
  pool.join()
  array._disable_async_del()  # pylint: disable=protected-access


# ----------------------------------------------------------------------------------------- training

class _TrainBatch:
  """This process's part of global training step `step` (video uint8 until `_iter_batches`): global
  examples [step·B + p·b, step·B + (p+1)·b), each as the module docstring's contract draws it.

  One call makes a whole batch: the epoch's video order is computed once (`order.epoch_order`, the
  permutation grain's shuffle would give index by index), clip positions come from cumulative
  counts made once, a record's labels are checked once, and decoded frames (`frame_cache`) are
  cropped before they are gathered, straight into the batch (no per-example arrays to stack).
  """

  def __init__(self, source, table, *, seed: int, offsets: tuple[int, ...], crop_size: int,
               num_classes: int, flip: bool, global_batch_size: int, b: int, process_index: int):
    self._source, self._table, self._seed, self._offsets = source, table, seed, offsets
    self._positions = sampling.TrainClipPositions(table.starts, table.frames,
                                                  sampling.clip_span(offsets))
    self._crop_size, self._num_classes, self._flip = crop_size, num_classes, flip
    self._global_batch_size, self._b, self._process_index = global_batch_size, b, process_index
    self._orders = {}  # epoch → its video order; replaced whole, so thread-safe.
    self._checked = {}  # record index → (label, labels, weight) once checked

  def __getstate__(self):
    return {**self.__dict__, "_orders": {}, "_checked": {}}

  def _video(self, g: int) -> int:
    epoch, i = divmod(g, self._table.num_videos)
    if epoch not in self._orders:  # keeps the epochs a batch can span: this one and the last
      self._orders = {**{e: o for e, o in self._orders.items() if e == epoch - 1},
                      epoch: order.epoch_order(randomness.shuffle_seed(self._seed), epoch,
                                               self._table.num_videos)}
    return int(self._orders[epoch][i])

  def _labels(self, index: int, record: dict) -> tuple[int, np.ndarray, float]:
    """(first label, labels, soft weight 1/n) of record `index`, checked once; the last
    _LABEL_CACHE records' are kept (a big data set's would not fit)."""
    if index not in self._checked:
      if len(self._checked) >= _LABEL_CACHE:
        self._checked = {}
      labels = labels_of(record, self._num_classes)
      self._checked[index] = int(labels[0]), labels, soft_weight(labels)
    return self._checked[index]

  def __call__(self, step: int) -> dict[str, np.ndarray]:
    b, size, t = self._b, self._crop_size, self._table
    first = step * self._global_batch_size + self._process_index * b
    video = np.empty((b, len(self._offsets), size, size, 3), np.uint8)
    label = np.empty(b, np.int32)
    target = np.zeros((b, self._num_classes), np.float32)
    draws = randomness.example_uniforms(self._seed, first, b).tolist()
    for j in range(b):
      v = self._video(first + j)
      k, start = self._positions.draw(draws[j][0], v)
      index = int(t.records[int(t.starts[v]) + k])
      record = self._source[index]
      frames = record["frames"]
      if sampling.is_decoded(frames):  # crop, then gather the clip's frames
        which = sampling.clip_frames(len(frames), start, self._offsets)
      else:
        frames, which = sampling.read_clip(record, start, self._offsets), None
      top, left, flip = transforms.crop_flip_params(draws[j][1:], frames.shape[1], frames.shape[2],
                                                    size, self._flip)
      transforms.crop_flip(frames, top, left, size, flip, frames=which, out=video[j])
      label[j], labels, weight = self._labels(index, record)
      target[j, labels] = weight  # = soft_target(labels)
    return {"video": video, "label": label, "target": target}


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
  """The infinite training stream of this process's batches, as a grain IterDataset.

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
    read_threads: threads per process, each computing one batch; 0: the thread that calls
      `next` computes it (the trainer then makes batch k+1 while its dispatched step k runs:
      on 2 cores, cached frames, 0.6 against 1.3 ms of CPU a batch with 2 threads).
    start_step: the first global step to yield. Batches are a function of (seed, step), so a run
      can also resume from its step alone (e.g. after changing worker_count); get_state() of such
      an iterator counts from start_step.
    index: `Prepared.index(split)` (see `video_table`); None: read every record once at start
      (fine for small and in-memory sources, slow for big ones).

  Returns:
    a grain IterDataset; `iter()` of it (`train_iterator`) is a DatasetIterator whose
    `get_state()` / `set_state(state)` restore the exact position (mid-epoch or not); call its
    `close()` when worker_count > 0.
  """
  b = per_process_batch_size(global_batch_size, process_count)
  if not 0 <= process_index < process_count:
    raise ValueError(f"process_index={process_index} not in [0, process_count={process_count})")
  if start_step < 0:
    raise ValueError(f"start_step must be >= 0, got {start_step}")
  offsets = sampling.clip_offsets(num_frames, frame_offsets)
  randomness.check_seed(seed)  # before any scan
  if len(source) == 0:
    raise ValueError("the training source is empty")
  table = video_table(source, index=index)
  batch = _TrainBatch(source, table, seed=int(seed), offsets=offsets, crop_size=crop_size,
                      num_classes=num_classes, flip=flip, global_batch_size=global_batch_size,
                      b=b, process_index=process_index)
  ds = grain.MapDataset.range(start_step, sys.maxsize).map(batch)  # element k: step start_step + k
  return _iter_batches(ds, mean=mean, worker_count=worker_count, read_threads=read_threads)


def train_iterator(source, **kwargs) -> grain.DatasetIterator:
  """`iter(train_dataset(source, **kwargs))`: the checkpointable training iterator."""
  return iter(train_dataset(source, **kwargs))


# --------------------------------------------------------------------------------------- evaluation

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
  offsets = sampling.clip_offsets(num_frames, frame_offsets)
  span = sampling.clip_span(offsets)
  t = video_table(source, index=index, max_videos=max_videos)
  labels = np.zeros((t.num_videos, num_classes), np.float32)
  for v, lab in enumerate(t.labels):
    if min(lab) < 0 or max(lab) >= num_classes:
      check_labels(lab, t.video_ids[v], num_classes)  # raises, naming the video
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
  """Re-iterable evaluation batches of one process for a plan (see `eval_batches`); `len()` =
  batches a pass."""

  def __init__(self, source, plan: EvalPlan, *, crop_size: int, batch_size: int,
               mean: float = transforms.MEAN, process_index: int = 0, process_count: int = 1,
               worker_count: int = 0, read_threads: int = 2):
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
      drain_shared_memory()


def eval_batches(source, *, num_frames: int, crop_size: int, num_classes: int,
                 clips_per_video: int = 20, views: int = 4, batch_size: int,
                 mean: float = transforms.MEAN, process_index: int = 0, process_count: int = 1,
                 frame_offsets: Sequence[int] | None = None,
                 worker_count: int = 0, read_threads: int = 2,
                 index: Sequence[dict] | None = None, max_videos: int = 0) -> EvalBatches:
  """Deterministic multi-view evaluation batches [paper §4: 20 clips × 4 views a video].

  Every video contributes clips_per_video × views examples (clip-major, view-minor, videos in order
  of first appearance in the source). The last global batch is padded to `batch_size` (global,
  independent of device and process count) with mask=False, video 0, target 0, video_index -1.
  Process p gets examples [p·b, (p+1)·b) of every global batch, b = batch_size // process_count.
  Batches: {'video', 'label' (the video's first label), 'target', 'video_index' int32, 'mask' bool}.
  Returns a re-iterable `EvalBatches` (`for batch in ...`), exposing `.plan`, `.num_videos`,
  `.video_labels` (multi-hot, (num_videos, C)) and `len()` (batches per pass). The plan is made
  from `index` (or a scan) and `max_videos`; with a plan already made, build `EvalBatches` from it.
  """
  plan = eval_plan(source, num_frames=num_frames, num_classes=num_classes,
                   clips_per_video=clips_per_video, views=views, frame_offsets=frame_offsets,
                   index=index, max_videos=max_videos)
  return EvalBatches(source, plan, crop_size=crop_size, batch_size=batch_size, mean=mean,
                     process_index=process_index, process_count=process_count,
                     worker_count=worker_count, read_threads=read_threads)
