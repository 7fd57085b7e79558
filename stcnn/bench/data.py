"""The `data` benchmark: the training input pipeline's throughput, and where one example's time
goes (stage_times), on a synthetic in-memory source (synthetic_source) or a prepared data set.

See stcnn.bench.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import time
from typing import Sequence

from absl import app, flags
import numpy as np

from stcnn.bench.timing import Table, load_dataset, note

FLAGS = flags.FLAGS


def synthetic_source(num_records: int = 16, num_frames: int = 40, frame_size: int = 200,
                     num_classes: int = 487, seed: int = 0) -> list[dict]:
  """In-memory records of the data contract with JPEG frames of smooth moving colour blobs.

  Smooth content gives JPEGs of a realistic size and decode cost (random noise would not).
  """
  from PIL import Image  # pylint: disable=g-import-not-at-top

  from stcnn.data import video_io  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(seed)
  records = []
  for i in range(num_records):
    big = frame_size + num_frames
    base = Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8))
    scene = np.asarray(base.resize((big, big), Image.BILINEAR))
    frames = []
    for t in range(num_frames):  # The camera pans one pixel a frame, plus sensor noise.
      frame = scene[t:t + frame_size, t:t + frame_size].astype(np.int16)
      frame += rng.integers(-6, 7, frame.shape, dtype=np.int16)
      frames.append(video_io.encode_jpeg(np.clip(frame, 0, 255).astype(np.uint8)))
    records.append({"video_id": f"synthetic{i:04d}".encode(),
                    "labels": np.array([i % num_classes], np.int64), "frames": frames,
                    "segment": 0, "num_segments": 1, "fps": np.float32(25)})
  return records


def _cpu_seconds() -> float:
  """CPU time of this process and its live children (Linux /proc; else this process only)."""
  total = time.process_time()
  tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
  for child in multiprocessing.active_children():
    try:
      with open(f"/proc/{child.pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
      total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    except (OSError, IndexError, ValueError):
      pass
  return total


def _time_pipeline(source, *, offsets, crop_size, batch_size, workers, read_threads, steps,
                   warmup, num_classes=487, index=None) -> dict:
  from stcnn.data import pipeline  # pylint: disable=g-import-not-at-top
  it = pipeline.train_iterator(source, num_frames=len(offsets), crop_size=crop_size,
                               num_classes=num_classes, global_batch_size=batch_size, seed=0,
                               worker_count=workers, read_threads=read_threads,
                               frame_offsets=offsets, index=index)
  try:
    for _ in range(warmup):
      next(it)
    cpu, wall = _cpu_seconds(), time.perf_counter()
    for _ in range(steps):
      batch = next(it)
    wall, cpu = time.perf_counter() - wall, _cpu_seconds() - cpu
  finally:
    if hasattr(it, "close"):
      it.close()
  assert batch["video"].shape == (batch_size, len(offsets), crop_size, crop_size, 3)
  clips = steps * batch_size
  return {"clips_per_s": clips / wall, "per_worker": clips / wall / max(workers, 1),
          "cores": cpu / wall, "per_core": clips / max(cpu, 1e-9)}


def _timed(fn, reps: int) -> float:
  """Best mean seconds per call of fn(i) over 3 rounds of `reps` calls (robust to other load)."""
  best = float("inf")
  for _ in range(3):
    t0 = time.perf_counter()
    for i in range(reps):
      fn(i)
    best = min(best, (time.perf_counter() - t0) / reps)
  return best


def stage_times(source, *, num_frames: int, crop_size: int, batch_size: int,
                num_classes: int = 487, index=None, reps: int = 64,
                frame_offsets: Sequence[int] | None = None) -> dict[str, float]:
  """Seconds per training example of each stage of the pipeline, in this process.

  record read (source[i], random i), JPEG decode (a clip's frames), crop + flip, float conversion
  (`normalize`, in the consuming process), collate (stacking a batch: the pipeline itself writes
  examples straight into the batch), worker transfer (grain's copy of a uint8 batch into shared
  memory and back, as mp_prefetch does), and 'example' = a whole training batch (order, draws,
  read, decode, crop, flip, labels) divided by the batch size, for comparison.
  """
  from stcnn.data import pipeline, sampling, transforms  # pylint: disable=g-import-not-at-top
  offsets = tuple(range(num_frames) if frame_offsets is None else frame_offsets)
  span = sampling.clip_span(offsets)
  table = pipeline.video_table(source, index=index)
  rng = np.random.default_rng(0)
  which = rng.integers(0, len(source), reps)
  records = [source[int(i)] for i in which[:16]]
  starts = [int(rng.integers(0, max(len(r["frames"]) - span, 0) + 1)) for r in records]
  clips = [sampling.read_clip(r, s, offsets) for r, s in zip(records, starts)]
  crops = [transforms.random_augment(rng, c, crop_size) for c in clips]
  batch = np.stack([crops[i % len(crops)] for i in range(batch_size)])
  times = {
      "record read": _timed(lambda i: source[int(which[i])], reps),
      "JPEG decode": _timed(lambda i: sampling.read_clip(records[i % 16], starts[i % 16],
                                                         offsets), reps),
      "crop + flip": _timed(lambda i: transforms.random_augment(rng, clips[i % 16], crop_size),
                            reps),
      "float conversion": _timed(lambda i: transforms.normalize(batch), 4) / batch_size,
      "collate": _timed(lambda i: np.stack([crops[j % 16] for j in range(batch_size)]),
                        4) / batch_size,
  }
  try:  # grain internals: what mp_prefetch does to a batch (worker: copy in; main: open, free).
    from grain._src.python.ipc import shared_memory_array as shm  # pylint: disable=g-import-not-at-top
    sent = {"video": batch, "target": np.zeros((batch_size, num_classes), np.float32)}

    def transfer(_):
      out = shm.open_from_shm(shm.copy_to_shm(sent))
      shm.unlink_shm(out)
    times["worker transfer"] = _timed(transfer, 4) / batch_size
  except Exception:  # pylint: disable=broad-except
    pass
  batch_fn = pipeline._TrainBatch(  # pylint: disable=protected-access
      source, table, seed=0, offsets=offsets, crop_size=crop_size, num_classes=num_classes,
      flip=True, global_batch_size=batch_size, b=batch_size, process_index=0)
  batch_fn(0)  # the first epoch's video order
  times["example (all of it)"] = _timed(batch_fn, max(reps // batch_size, 2)) / batch_size
  return times


def _describe(source, index) -> str:
  """Records, frames per record and mean JPEG size (from up to 8 records spread over the source)."""
  sample = [source[int(i)] for i in np.linspace(0, len(source) - 1, min(8, len(source)))]
  kib = np.mean([len(f) for r in sample for f in r["frames"]]) / 1024
  frames = (np.mean([e["num_frames"] for e in index]) if index is not None else
            np.mean([len(r["frames"]) for r in sample]))
  return (f"{len(source)} records, mean {frames:.0f} frames each "
          f"({'index' if index is not None else 'no index: scanned'}), JPEG frames mean "
          f"{kib:.1f} KiB")


def _clip_name(offsets) -> str:
  """'10' for frames 0..9; '0,15' for late fusion's two."""
  contiguous = tuple(offsets) == tuple(range(len(offsets)))
  return str(len(offsets)) if contiguous else ",".join(map(str, offsets))


DATA_COLUMNS = (
    ("frames", "frames", ""), ("workers", "workers", "d"), ("clips_per_s", "clips/s", ".1f"),
    ("per_worker", "clips/s/worker", ".1f"), ("cores", "cores busy", ".2f"),
    ("per_core", "clips/s/core", ".1f"))


def bench_data(argv) -> None:
  """Training input pipeline throughput and stage times (see stcnn.bench's docstring)."""
  del argv
  from stcnn.data import transforms  # pylint: disable=g-import-not-at-top
  if FLAGS.data and FLAGS.prepared:
    raise app.UsageError("--data=PATH and --prepared (--config's data set): give one")
  steps, warmup, t0 = FLAGS.steps, FLAGS.warmup, time.perf_counter()
  index, num_classes, crop = None, 487, FLAGS.crop_size
  clips = [tuple(range(int(n))) for n in FLAGS.num_frames]
  if FLAGS.data or FLAGS.prepared:
    from stcnn.data import datasets, prepared  # pylint: disable=g-import-not-at-top
    data = prepared.load(FLAGS.data) if FLAGS.data else load_dataset(datasets, FLAGS.config)
    source, index = data.source(FLAGS.split), data.index(FLAGS.split)
    num_classes, frame_size = data.num_classes, data.frame_size
    what = f"{data.builder_dir} [{FLAGS.split}]: {_describe(source, index)}"
    if FLAGS.prepared:  # every network's clip (single, early, late, slow), the config's crop
      import ml_collections  # pylint: disable=g-import-not-at-top

      from stcnn import models  # pylint: disable=g-import-not-at-top
      clips = []
      for fusion in ("single", "early", "late", "slow"):
        config = ml_collections.ConfigDict(FLAGS.config.to_dict())
        config.model.fusion = fusion
        clips += [models.frame_offsets(config)] * (models.frame_offsets(config) not in clips)
      crop = crop or FLAGS.config.model.input_size
  else:
    frame_size = FLAGS.frame_size
    source = synthetic_source(FLAGS.records, FLAGS.record_frames, frame_size)
    what = f"synthetic in-memory source: {_describe(source, None)}"
  crop = crop or transforms.crop_size_for(frame_size)
  note(f"{what}, {frame_size}x{frame_size}, opened in {time.perf_counter() - t0:.1f}s; "
       f"crop {crop}, batch {FLAGS.batch_size}, {steps} timed steps after {warmup}, "
       f"{FLAGS.read_threads} reader threads per process, {os.cpu_count()} CPUs visible")
  table = Table(DATA_COLUMNS, FLAGS.json)
  for offsets in clips:
    for workers in map(int, FLAGS.workers):
      r = _time_pipeline(source, offsets=offsets, crop_size=crop, batch_size=FLAGS.batch_size,
                         workers=workers, read_threads=FLAGS.read_threads, steps=steps,
                         warmup=warmup, num_classes=num_classes, index=index)
      table.add({"frames": _clip_name(offsets), "frame_offsets": list(offsets), "crop": crop,
                 "batch": FLAGS.batch_size, "workers": workers, **r})
  if not FLAGS.stages:
    return
  for offsets in clips:
    times = stage_times(source, num_frames=len(offsets), crop_size=crop, frame_offsets=offsets,
                        batch_size=FLAGS.batch_size, num_classes=num_classes, index=index)
    if FLAGS.json:
      print(json.dumps({"stages": _clip_name(offsets), "seconds_per_example": times}), flush=True)
      continue
    total = sum(v for k, v in times.items() if not k.startswith("example"))
    what = (f"{len(offsets)}-frame example" if "," not in _clip_name(offsets) else
            f"example of frames {_clip_name(offsets)}")
    print(f"\none {what}, in one process (best of 3; µs):")
    for name, seconds in times.items():
      share = "" if name.startswith("example") else f" {100 * seconds / total:5.1f}%"
      print(f"  {name:<22} {1e6 * seconds:9.1f}{share}")

