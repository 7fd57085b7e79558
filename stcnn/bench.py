r"""Benchmarks, one subcommand each: `python -m stcnn.bench SUBCOMMAND [--flags]`.

  data   training input pipeline throughput on an in-memory synthetic source of JPEG records
         (nothing on disk): clips/s and clips/s per worker process and per CPU core, for each
         clip length (--num_frames) and worker count (--workers), batch --batch_size.

    python -m stcnn.bench data [--frame_size=200] [--workers=0,1,2] [--num_frames=1,10] [--steps=20]

Add a benchmark by writing `bench_NAME(argv)` and registering it in SUBCOMMANDS.
"""
from __future__ import annotations

import multiprocessing
import os
import time
from typing import Callable

from absl import app
from absl import flags
import numpy as np

FLAGS = flags.FLAGS


def _define_flags():
  """Defined only when run as a program, so importing this module never clashes with other CLIs."""
  flags.DEFINE_integer("frame_size", 200, "Stored frame size of the synthetic records.")
  flags.DEFINE_integer("crop_size", None, "Crop (default: crop_size_for(frame_size)).")
  flags.DEFINE_list("workers", ["0", "1", "2"], "Worker process counts (0: in-process).")
  flags.DEFINE_list("num_frames", ["1", "10"], "Clip lengths.")
  flags.DEFINE_integer("batch_size", 32, "Global batch size.")
  flags.DEFINE_integer("steps", 20, "Timed batches per configuration.")
  flags.DEFINE_integer("warmup", 3, "Untimed batches first (worker start-up, buffers).")
  flags.DEFINE_integer("read_threads", 2, "Reader threads per process (one batch each).")
  flags.DEFINE_integer("records", 16, "Synthetic records (segments) in the source.")
  flags.DEFINE_integer("record_frames", 40, "Frames per synthetic record.")


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


def _time_pipeline(source, *, num_frames, crop_size, batch_size, workers, read_threads, steps,
                   warmup) -> dict:
  from stcnn.data import pipeline  # pylint: disable=g-import-not-at-top
  it = pipeline.train_iterator(source, num_frames=num_frames, crop_size=crop_size,
                               num_classes=487, global_batch_size=batch_size, seed=0,
                               worker_count=workers, read_threads=read_threads)
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
  assert batch["video"].shape == (batch_size, num_frames, crop_size, crop_size, 3)
  clips = steps * batch_size
  return {"clips_s": clips / wall, "per_worker": clips / wall / max(workers, 1),
          "cores": cpu / wall, "per_core": clips / max(cpu, 1e-9)}


def bench_data(argv) -> None:
  """Training input pipeline throughput (see module docstring)."""
  del argv
  from stcnn.data import transforms  # pylint: disable=g-import-not-at-top
  crop = FLAGS.crop_size or transforms.crop_size_for(FLAGS.frame_size)
  t0 = time.perf_counter()
  source = synthetic_source(FLAGS.records, FLAGS.record_frames, FLAGS.frame_size)
  kib = np.mean([len(f) for r in source for f in r["frames"]]) / 1024
  print(f"synthetic source: {len(source)} records x {FLAGS.record_frames} JPEG frames "
        f"{FLAGS.frame_size}x{FLAGS.frame_size} (mean {kib:.1f} KiB), built in "
        f"{time.perf_counter() - t0:.1f}s; crop {crop}, batch {FLAGS.batch_size}, "
        f"{FLAGS.steps} timed steps after {FLAGS.warmup}, {FLAGS.read_threads} reader threads "
        f"per process, {os.cpu_count()} CPUs visible")
  header = (f"{'frames':>6} {'workers':>7} {'clips/s':>9} {'clips/s/worker':>14} "
            f"{'cores busy':>10} {'clips/s/core':>12}")
  print(header)
  print("-" * len(header))
  for num_frames in map(int, FLAGS.num_frames):
    for workers in map(int, FLAGS.workers):
      r = _time_pipeline(source, num_frames=num_frames, crop_size=crop,
                         batch_size=FLAGS.batch_size, workers=workers,
                         read_threads=FLAGS.read_threads, steps=FLAGS.steps,
                         warmup=FLAGS.warmup)
      print(f"{num_frames:>6} {workers:>7} {r['clips_s']:>9.1f} {r['per_worker']:>14.1f} "
            f"{r['cores']:>10.2f} {r['per_core']:>12.1f}", flush=True)


SUBCOMMANDS: dict[str, Callable[[list[str]], None]] = {"data": bench_data}


def main(argv):
  if len(argv) < 2 or argv[1] not in SUBCOMMANDS:
    raise app.UsageError(f"usage: python -m stcnn.bench {{{','.join(SUBCOMMANDS)}}} [--flags]; "
                         f"got {argv[1:]}")
  SUBCOMMANDS[argv[1]](argv[2:])


if __name__ == "__main__":
  _define_flags()
  app.run(main)
