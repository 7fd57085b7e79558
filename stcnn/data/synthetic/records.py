"""Prepared records straight from the renderer: a sports-layout preset without video files.

`prepare_records(preset, output, ...)` writes the data set that `generate` followed by
`prepare.prepare("csv", <manifest.csv>, output, ...)` writes, less the video codec's round trip:
every planned video's kept frames are rendered (`render.iter_frames`), centre-cropped and resized
to frame_size (`video_io.centre_crop_resize`: nothing to do when the rendered size is frame_size, as
for every preset's own config), JPEG-encoded (`video_io.encode_jpeg`, settings.jpeg_quality) and cut
into segments exactly as `encode.encode_video` cuts a decoded video (`stored_frames`), then stored
by `prepare.write_prepared`: the same builder, features, records order, index, metadata, counts and
prepare_report.json, so `stcnn.data.prepared.load` and everything after it see an ordinary prepared
data set.

Differences from the round trip [choice]:
- pixels: JPEGs of the rendered frames instead of the frames after mpeg4/yuv420p (the codec's loss,
  a few grey levels on average, is gone);
- the listing: manifest.csv's video ids, labels and splits (in its order), but no files (each
  Item.path is None) and one source file instead, `synthetic-source.json` in `output` (generator,
  FORMAT_VERSION, RECORDS_VERSION, preset, seed), whose checksum puts all of them into the
  fingerprint; the report's counts list every video as written.

Rendering and encoding run in `workers` spawned processes, a few videos a task, a bounded number of
tasks in flight, results taken in plan order by the one writer in this process: memory stays
bounded and the records do not depend on the worker count. A frame known to repeat the one before
(a cut-away, a still subject on a static background) reuses its JPEG (the encoder is
deterministic). One progress bar counts the videos.
"""
from __future__ import annotations

import collections
from concurrent import futures
import contextlib
import dataclasses
import json
import math
import multiprocessing
import os
import pathlib
import time
from typing import TYPE_CHECKING, Iterable, Iterator, Sequence

import numpy as np
import tqdm

from stcnn import fileio
from stcnn.data import encode, video_io
from stcnn.data.synthetic import planning, presets, render, taxonomy

if TYPE_CHECKING:
  from stcnn.data import builders
# stcnn.data.builders and .prepare (TensorFlow Datasets, ArrayRecord) are imported where records
# are written, not here: the spawned rendering workers import this module and need neither.

# Bump whenever the same preset, seed and settings would give other records (the pixels' own
# version is presets.FORMAT_VERSION). Part of the fingerprint and of the synthetic cache key.
RECORDS_VERSION = 1
SOURCE_FILE = "synthetic-source.json"
_VIDEOS_PER_TASK = 4  # [choice] ~0.1-0.5 s of work a task at 200 px: little pickling overhead
_TASKS_PER_WORKER = 3  # in flight: enough to keep every worker busy, bounded memory
_VIDEOS_PER_WORKER = 256  # [choice] a spawned worker's start costs about as much as that many


def default_workers(num_videos: int) -> int:
  """Every usable core, but at most one process per 256 videos (small sets render in-process)."""
  cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
  return max(1, min(cores or 1, num_videos // _VIDEOS_PER_WORKER))


def stored_frames(num_frames: int, rate: float,
                   settings: builders.Settings) -> tuple[list[list[int]], float]:
  """(per segment, the source frame indices it stores; stored fps) of a video of num_frames frames
  at `rate` fps: `encode.encode_video`'s choice for a video whose header count is exact."""
  fps = settings.fps or rate
  step = rate / fps  # source frames per stored frame
  windows = encode.segment_windows(math.ceil(num_frames / step), settings.segment_frames,
                                   settings.max_segments)
  if len(windows) == 1:  # encode_video keeps up to segment_frames of a short video
    windows = [range(0, settings.segment_frames)]
  segments = [[i for i in (int(j * step + 1e-6) for j in window) if i < num_frames]
              for window in windows]
  return [seg for seg in segments if seg], fps


def _unique(segments: list[list[int]]) -> list[int]:
  return sorted({f for seg in segments for f in seg})


def _encode(task) -> list[list[bytes]]:
  """Worker entry: per video of the task, the JPEGs of its frames `frames` (sorted, unique)."""
  p, size, quality, videos = task
  out = []
  for spec, frames in videos:
    jpegs = []
    for frame in render.iter_frames(p, spec, frames, skip_repeats=True):
      if frame is not None:  # else: equal to the frame before (the encoder is deterministic)
        jpeg = video_io.encode_jpeg(video_io.centre_crop_resize(frame, size), quality)
      jpegs.append(jpeg)
    out.append(jpegs)
  return out


def _in_order(fn, tasks: Iterable, workers: int) -> Iterator:
  """fn(task) for each task, in order; in `workers` spawned processes when workers > 1, with at
  most _TASKS_PER_WORKER tasks a worker in flight. Closing the generator stops the processes."""
  if workers <= 1:
    yield from map(fn, tasks)
    return
  tasks = iter(tasks)
  pool = futures.ProcessPoolExecutor(workers, multiprocessing.get_context("spawn"))
  inflight = collections.deque()
  try:
    while True:
      while len(inflight) < _TASKS_PER_WORKER * workers:
        task = next(tasks, None)
        if task is None:
          break
        inflight.append(pool.submit(fn, task))
      if not inflight:
        return
      yield inflight.popleft().result()
  finally:
    for future in inflight:
      future.cancel()
    pool.shutdown(wait=True, cancel_futures=True)


def source_marker(p: presets.Preset, seed: int, num_videos: int) -> dict:
  """The contents of SOURCE_FILE: what the records are rendered from."""
  return {"generator": "stcnn.data.synthetic.records", "format_version": presets.FORMAT_VERSION,
          "records_version": RECORDS_VERSION, "preset": dataclasses.asdict(p), "seed": seed,
          "num_videos": num_videos}


def listing(p: presets.Preset, specs: Sequence[planning.VideoSpec],
            source_file: str) -> builders.Listing:
  """The Listing that reading generate()'s manifest.csv gives, without files (see the module doc).

  source_file: the written SOURCE_FILE (its checksum enters the fingerprint).
  """
  from stcnn.data import builders  # pylint: disable=import-outside-toplevel
  names = taxonomy.class_names(p)
  splits = {}
  for spec in specs:
    video_id = os.path.splitext(spec.path)[0]  # folder.read_csv: the path without extension
    splits.setdefault(spec.split, []).append(builders.Item(video_id, None, spec.labels))
  return builders.Listing(
      kind="csv", root=os.path.dirname(source_file), class_names=names, splits=splits,
      files={SOURCE_FILE: source_file},
      hierarchy=builders.check_hierarchy(taxonomy.hierarchy(p), names, "synthetic hierarchy"),
      notes={"synthetic": "frames rendered straight to JPEG records (stcnn.data.synthetic.records);"
                          " the listed videos have no files"})


def prepare_records(preset: str | presets.Preset, output, *, seed: int = 0,
                    frame_size: int = 200, segment_frames: int = 300, max_segments: int = 10,
                    jpeg_quality: int = 90, fps: float | None = None, workers: int = 1) -> str:
  """Writes the prepared data set of a sports-layout preset under `output`; its builder dir.

  A complete data set with the same fingerprint there is reused at once; a different one is refused
  (`prepare.write_prepared`). Records are written to a hidden temporary sibling of the builder dir
  that is renamed at the end, so a killed or failed run leaves nothing that looks complete (the
  next run removes what a killed one left).

  Args:
    preset: a sports-layout preset (name or Preset).
    output: the folder to write into (as `prepare.prepare`'s output).
    seed: the data set's seed.
    frame_size, segment_frames, max_segments, jpeg_quality, fps: as for `prepare.prepare`.
    workers: rendering processes; 1 renders in this process (see `default_workers`).
  """
  from stcnn.data import builders, prepare  # pylint: disable=import-outside-toplevel
  p = presets.get_preset(preset)
  if p.layout != "sports":
    raise ValueError(f"preset {p.name}: records are rendered directly for the sports layout only; "
                     "write the videos (generate) and prepare them with the ucf101 reader")
  settings = builders.Settings(frame_size, segment_frames, max_segments, jpeg_quality, fps)
  output = os.path.abspath(os.path.expanduser(os.fspath(output)))
  specs = planning.plan(p, seed)
  source_file = os.path.join(output, SOURCE_FILE)
  marker = json.dumps(source_marker(p, seed, len(specs)), indent=1) + "\n"
  if not (os.path.exists(source_file) and pathlib.Path(source_file).read_text() == marker):
    fileio.write_text(source_file, marker)  # atomic; left alone when it says this already
  files = listing(p, specs, source_file)
  plans = [stored_frames(spec.num_frames, p.fps, settings) for spec in specs]
  stats = {split: prepare.SplitStats(listed=len(items)) for split, items in files.splits.items()}

  def tasks():
    for start in range(0, len(specs), _VIDEOS_PER_TASK):
      yield p, settings.frame_size, settings.jpeg_quality, [
          (specs[i], _unique(plans[i][0]))
          for i in range(start, min(start + _VIDEOS_PER_TASK, len(specs)))]

  def videos() -> Iterator[tuple[planning.VideoSpec, list[list[bytes]], float]]:
    """(spec, segments of JPEGs, fps) of every video in plan order; started by the writer (not
    when the data set is found complete), it stops its workers when closed."""
    chunks = _in_order(_encode, tasks(), workers)
    bar = tqdm.tqdm(total=len(specs), desc=f"synthetic {p.name}: render + encode", unit="video")
    specs_left = iter(zip(specs, plans))
    start, frames = time.time(), 0
    with contextlib.closing(chunks), bar:
      for chunk in chunks:
        for jpegs in chunk:
          spec, (segments, rate) = next(specs_left)
          by_frame = dict(zip(_unique(segments), jpegs))
          yield spec, [[by_frame[f] for f in seg] for seg in segments], rate
          frames += sum(map(len, segments))
          bar.update(1)
          bar.set_postfix(frames_s=f"{frames / max(time.time() - start, 1e-9):.0f}",
                          refresh=False)

  results = videos()

  def split_examples(split: str) -> Iterator[dict]:
    s, start = stats[split], time.time()
    for _ in range(s.listed):
      spec, segments, rate = next(results)
      assert spec.split == split, (spec.split, split)  # specs are in split order
      for k, frames in enumerate(segments):
        yield {"video_id": os.path.splitext(spec.path)[0],
               "labels": np.asarray(spec.labels, np.int64), "frames": frames, "segment": k,
               "num_segments": len(segments), "fps": np.float32(rate)}
      s.written += 1
      s.segments += len(segments)
      s.frames += sum(map(len, segments))
      s.seconds = time.time() - start

  with contextlib.closing(results):
    return prepare.write_prepared(files, settings, output,
                                  {split: split_examples(split) for split in files.splits}, stats)
