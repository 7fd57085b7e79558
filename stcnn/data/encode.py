"""One video → its records' frames: decode, segment windows, centre square, resize, JPEG; and
running such work in isolated worker processes.

What every writer of prepared records does per video: the local runner (`stcnn.data.prepare`) and
the Beam runner (`stcnn.data.prepare_beam`) call `encode_task` then `video_examples` (then
`builders.serialize`), alone or through `run_isolated`; the synthetic direct-records writer
(`stcnn.data.synthetic.records`) renders instead of decoding but picks each segment's frames with
`segment_windows` as `encode_video` does. So a video becomes the same records whoever runs it.

Contract:
- `encode_video(path, settings)` → (segments, fps): the video's segments (`segment_windows`), each
  a non-empty list of JPEG bytes in frame order, every frame its centred square resized to
  settings.frame_size (`video_io.centre_crop_resize`, paper §2) and encoded at
  settings.jpeg_quality (`video_io.encode_jpeg`); fps is the stored frame rate. Raises
  `video_io.VideoDecodeError` (or whatever decoding raises) for a video it cannot read.
- `encode_task(path, settings)`: the same, or the reason it failed as a string; never raises, and
  is picklable (bind settings with functools.partial) for worker processes.
- `video_examples(item, segments, fps)`: the video's records, one example dict per segment in
  order, as the contract in `stcnn/data/__init__.py` says.
- `run_isolated(fn, tasks, workers, timeout)`: fn(task) per task, in order, in `workers` spawned
  processes; a reason string where a task raised, hung or killed its process.

Decisions [choice]:
- Segments: a video of T <= max_segments x segment_frames frames is stored whole, as
  ceil(T / segment_frames) contiguous, non-overlapping segments of (nearly) equal length, at most
  segment_frames each; a longer one is max_segments segments of segment_frames consecutive frames,
  starts evenly spaced from 0 to T - segment_frames. Defaults 300 frames (10-12 s) x 10 keep every
  frame of almost all UCF-101 videos and 3000 frames spread over a Sports-1M video.
- T is read from the container header (`video_io.probe`; for mkv/webm estimated from duration x
  rate) before decoding, so only kept frames are converted and encoded; if decoding yields fewer
  frames than announced, late segments are shortened or dropped (more frames than announced: the
  extra ones are not kept).
- Frame rate: kept as is by default (`fps=None`; UCF-101 is 25 fps, YouTube mostly 25-30).
  `fps=F` resamples by picking the nearest earlier frame (drops or repeats frames); stored fps = F.
- Bad videos: one that cannot be opened, decodes with an error or yields 0 frames gives its reason
  (`encode_task`), never an exception. Through `run_isolated`, one that kills its worker process
  (a crash in libav, an OOM kill) or takes longer than `timeout` seconds gives a reason too, and
  costs only itself: the pool is rebuilt and the other tasks run again. Called in-process, a
  decoder crash ends the caller and nothing times out.
"""
from __future__ import annotations

import collections
from concurrent import futures
import math
import multiprocessing
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

import numpy as np

from stcnn.data import video_io

if TYPE_CHECKING:
  from stcnn.data import builders
# stcnn.data.builders (TensorFlow Datasets) is only named in annotations here: the synthetic
# renderer's spawned workers import this module (through stcnn.data.synthetic.records) without it.


# -------------------------------------------------------------- one video → segments of JPEG frames
def segment_windows(num_frames: int, segment_frames: int, max_segments: int) -> list[range]:
  """Frame index ranges of a video's segments (see the module docstring)."""
  if num_frames <= segment_frames:
    return [range(0, num_frames)]
  if num_frames <= max_segments * segment_frames:
    chunks = np.array_split(np.arange(num_frames), math.ceil(num_frames / segment_frames))
    return [range(int(c[0]), int(c[-1]) + 1) for c in chunks]
  starts = np.round(np.linspace(0, num_frames - segment_frames, max_segments)).astype(int)
  return [range(s, s + segment_frames) for s in starts]


def encode_video(path, settings: builders.Settings) -> tuple[list[list[bytes]], float]:
  """(segments of JPEG frames, stored fps) of one video; raises VideoDecodeError."""
  count, rate = video_io.probe(path)
  fps = settings.fps or rate
  step = rate / fps  # source frames per stored frame
  windows = segment_windows(math.ceil(count / step), settings.segment_frames,
                            settings.max_segments)
  if len(windows) == 1:  # Short video: keep up to segment_frames, whatever the count announced.
    windows = [range(0, settings.segment_frames)]
  wanted = {}  # source frame index -> [(segment, position)]
  for k, window in enumerate(windows):
    for pos, j in enumerate(window):
      wanted.setdefault(int(j * step + 1e-6), []).append((k, pos))
  segments = [[None] * len(w) for w in windows]
  decoded = 0
  for i, frame in video_io.decode_frames(path, wanted):
    decoded += 1
    jpeg = video_io.encode_jpeg(video_io.centre_crop_resize(frame, settings.frame_size),
                                settings.jpeg_quality)
    for k, pos in wanted[i]:
      segments[k][pos] = jpeg
  if not decoded:
    raise video_io.VideoDecodeError(f"{path}: decoded 0 frames")
  segments = [[f for f in seg if f is not None] for seg in segments]
  return [seg for seg in segments if seg], fps


def encode_task(path, settings: builders.Settings) -> tuple[list[list[bytes]], float] | str:
  """`encode_video`, or the reason it failed: never raises, so one bad video never stops a run.
  What every runner calls for one video (picklable, for worker processes)."""
  try:
    return encode_video(path, settings)
  except Exception as e:  # pylint: disable=broad-except
    return str(e) if isinstance(e, video_io.VideoDecodeError) else f"{type(e).__name__}: {e}"


def video_examples(item: builders.Item, segments: list[list[bytes]], fps: float) -> list[dict]:
  """The records (example dicts, one per segment) of a video that `encode_task` encoded."""
  return [{"video_id": item.video_id, "labels": np.asarray(item.labels, np.int64),
           "frames": frames, "segment": k, "num_segments": len(segments),
           "fps": np.float32(fps)} for k, frames in enumerate(segments)]


# ------------------------------------------------------------------------ isolated worker processes
def _kill(pool: futures.ProcessPoolExecutor):
  """Stops a pool now, busy workers included (Python < 3.14 has no public way)."""
  for process in list((pool._processes or {}).values()):  # pylint: disable=protected-access
    process.kill()
  pool.shutdown(wait=True, cancel_futures=True)


def run_isolated(fn: Callable[[Any], Any], tasks: Iterable[Any], workers: int,
                 timeout: float) -> Iterator[Any]:
  """fn(task) per task in order, in `workers` processes; a reason string where a task failed.

  A task that raises gives "<Error>: <message>"; one that runs past `timeout` seconds (counted
  from when all earlier tasks are done) "timed out ..."; one whose process dies "worker died ...".
  After a crash the tasks that were in flight are run again one at a time, so only the one that
  kills its worker is lost; the pool is rebuilt and the run goes on. `fn` must be picklable.
  """
  queue = collections.deque((task, False) for task in tasks)  # (task, run alone)
  inflight, pool = collections.deque(), None
  try:
    while queue or inflight:
      # Keep 2 x workers in flight; a task to run alone waits for, and then holds, an empty pool.
      while queue and len(inflight) < 2 * workers and not (
          inflight and (inflight[-1][1] or queue[0][1])):
        task, alone = queue.popleft()
        if pool is None:
          pool = futures.ProcessPoolExecutor(workers, multiprocessing.get_context("spawn"))
        try:
          inflight.append((task, alone, pool.submit(fn, task)))
        except futures.BrokenExecutor:  # a worker died since the last submit: handled below
          queue.appendleft((task, alone))
          break
      if not inflight:  # broken before anything was in flight: start a fresh pool
        _kill(pool)
        pool = None
        continue
      task, alone, future = inflight.popleft()
      try:
        yield future.result(timeout=timeout)
        continue
      except futures.TimeoutError:
        yield f"timed out after {timeout:g} s (worker stopped)"
        again = [(t, a) for t, a, _ in inflight]
      except futures.BrokenExecutor:  # BrokenProcessPool: a worker died.
        if alone:
          yield "worker died (a crash in the decoder or an out-of-memory kill)"
          again = [(t, a) for t, a, _ in inflight]
        else:  # Any of those in flight may be the culprit: each runs alone next.
          again = [(task, True)] + [(t, True) for t, _, _ in inflight]
      except Exception as e:  # pylint: disable=broad-except
        yield f"{type(e).__name__}: {e}"
        continue
      _kill(pool)
      pool = None
      inflight.clear()
      queue.extendleft(reversed(again))
  finally:
    if pool is not None:
      _kill(pool)
