"""A prepared split's frames decoded once into a uint8 memory map: `cached_source(prepared, split)`.

For small frames (the `cpu` and `tiny` configs: 64×64 and 32×32) JPEG decode is most of an
example's input cost (~70% of a 10-frame example), and on a 2-core machine every microsecond of it
is taken from the training step. `cached_source` decodes the split's frames once (reader threads,
a tqdm bar, the time logged) into `frames.npy`, uint8 (total frames, S, S, 3), opened again with
`np.load(mmap_mode="r")`, and returns a random-access source with the same len() and records as
`prepared.source(split)` whose "frames" is the record's (n, S, S, 3) slice of the map. The pipeline
touches frames only through `sampling.read_clip` → `decode_clip` → `decode_frame`, which passes a
decoded array through, and the cache is filled by `sampling.decode_frame` itself: every example of
every step gets the same video, frames, crop and flip, and the same pixels, as from the JPEGs.

Layout [choice]: `<cache_dir>/<split>-<fingerprint[:16]>-v<FORMAT_VERSION>/` holding frames.npy,
records.npz (the records' other fields and where each record's frames start) and meta.json (full
fingerprint, split, counts, shape). cache_dir defaults to `<builder dir>/frame-cache`, so the cache
goes when the data set is deleted. A cache is reused only when meta.json names the same fingerprint,
split, record count and frame shape: a rerun reuses it, another data set never does.

Atomic [choice]: built in a hidden temporary sibling and renamed when complete
(`fileio.atomic_dir`), so a killed build leaves only a `.NAME.incomplete-*` directory (named in a
warning the next time), never a cache that looks complete.

Several processes [choice]: no leader and no barrier. A process that finds no cache builds one in
its own temporary and renames it into place; a directory cannot be renamed onto a non-empty one, so
a process that loses the race keeps the winner's cache (the same records decoded by the same code:
the same bytes). On a shared file system a first multi-process run may decode once per process (a
bounded, one-time cost); on local disks each host builds its own. No process waits on another, so
nothing can deadlock when processes disagree (e.g. one lacks disk space and falls back to JPEG).

Refusals [choice]: the plain JPEG source is returned, with the reason logged, when the decoded split
would exceed `max_bytes` (default 4 GiB: paper-size data, 200×200 frames, stays JPEG), when the
cache's file system lacks the space or cannot be written, when the split has no index and no
frame count to size it by, or when a record's frames are not S×S.

Pickling: grain's worker processes (mp_prefetch) receive the source pickled. `CachedSource` pickles
only its directory and meta.json's fields and reopens the map lazily in each process (a memmap
would otherwise pickle as a copy of all its data).
"""
from __future__ import annotations

import collections.abc
from concurrent import futures
import json
import operator
import os
import shutil
import time
from typing import Any, Sequence

from absl import logging
import numpy as np
import tqdm

from stcnn import fileio
from stcnn.data import sampling

FORMAT_VERSION = 1
DEFAULT_MAX_BYTES = 4 << 30  # [choice] the cpu set's train split is ~1 GiB decoded; paper's is TBs.
DEFAULT_DIR = "frame-cache"  # under the builder dir
FRAMES_FILE, RECORDS_FILE, META_FILE = "frames.npy", "records.npz", "meta.json"


class _Refused(Exception):
  """The split cannot be cached (the reason is the message); the JPEG source is used."""


class CachedSource(collections.abc.Sequence):
  """Random-access records (the data contract) whose "frames" are decoded uint8 (n, S, S, 3).

  The other fields as the prepared (TFDS) source gives them: video_id bytes, labels int64 (n,),
  segment and num_segments int, fps float (a float32 value). `built` is True when this call
  decoded the split, `build_seconds` how long it took.
  """

  def __init__(self, directory: str | os.PathLike, meta: dict[str, Any]):
    self.directory = os.fspath(directory)
    self.meta = dict(meta)
    self.built, self.build_seconds = False, 0.0
    self._arrays = None  # (frames memmap, records dict), opened on first use in each process.

  def __getstate__(self):
    return {"directory": self.directory, "meta": self.meta}

  def __setstate__(self, state):
    self.__init__(state["directory"], state["meta"])

  def _open(self):
    arrays = self._arrays
    if arrays is None:  # Reader threads may both open it: harmless, and assigned whole.
      with np.load(os.path.join(self.directory, RECORDS_FILE)) as z:
        r = {k: z[k] for k in z.files}
      frames = np.load(os.path.join(self.directory, FRAMES_FILE), mmap_mode="r")
      # Plain lists and an ndarray view of the map: a record's read costs ~4 instead of ~12 µs.
      arrays = self._arrays = (np.asarray(frames), r["labels"], {
          k: r[k].tolist() for k in ("frame_starts", "label_starts", "fps", "num_segments",
                                     "segment")}, [bytes(v) for v in r["video_id"]])
    return arrays

  def __len__(self) -> int:
    return int(self.meta["num_records"])

  def __getitem__(self, index) -> dict[str, Any]:
    i, n = operator.index(index), len(self)
    if i < 0:
      i += n
    if not 0 <= i < n:
      raise IndexError(f"record {index} of {n}")
    frames, labels, r, video_ids = self._open()
    starts, label_starts = r["frame_starts"], r["label_starts"]
    return {"fps": r["fps"][i], "frames": frames[starts[i]:starts[i + 1]],
            "labels": labels[label_starts[i]:label_starts[i + 1]].copy(),
            "num_segments": r["num_segments"][i], "segment": r["segment"][i],
            "video_id": video_ids[i]}

  def __repr__(self):
    m = self.meta
    return (f"CachedSource({self.directory!r}, {m['num_records']} records, {m['num_frames']} "
            f"frames of {m['frame_shape']})")


def cache_path(prepared, split: str, cache_dir: str | os.PathLike | None = None) -> str:
  """Where `cached_source` keeps (or would keep) the split's decoded frames."""
  root = os.path.join(prepared.builder_dir, DEFAULT_DIR) if cache_dir is None else cache_dir
  return os.path.join(os.path.expanduser(os.fspath(root)),
                      f"{split}-{prepared.fingerprint[:16]}-v{FORMAT_VERSION}")


def _expected_meta(prepared, split: str, num_records: int) -> dict[str, Any]:
  return {"format_version": FORMAT_VERSION, "fingerprint": prepared.fingerprint, "split": split,
          "num_records": num_records}


def _existing(directory: str, expected: dict[str, Any]) -> CachedSource | None:
  """The complete cache at `directory` if it is the one expected, else None (a warning says why)."""
  path = os.path.join(directory, META_FILE)
  if not os.path.exists(path):
    return None
  try:
    with open(path) as f:
      meta = json.load(f)
    differ = {k: meta.get(k) for k, v in expected.items() if meta.get(k) != v}
    if differ:
      raise _Refused(f"it holds {differ}, expected {expected}")
    shape = np.load(os.path.join(directory, FRAMES_FILE), mmap_mode="r").shape
    if list(shape) != [meta["num_frames"], *meta["frame_shape"]]:
      raise _Refused(f"{FRAMES_FILE} has shape {shape}, meta.json says "
                     f"{[meta['num_frames'], *meta['frame_shape']]}")
  except (OSError, ValueError, KeyError, TypeError, _Refused) as e:
    logging.warning("frame cache %s is not usable (%s); remove it to rebuild it", directory, e)
    return None
  return CachedSource(directory, meta)


def _frame_counts(prepared, split: str, num_records: int, source, max_bytes: int) -> list[int]:
  """Frames per record, from the index, else from a scan of the records (if their size fits)."""
  index = prepared.index(split)
  if index is not None and len(index) == num_records:
    return [int(e["num_frames"]) for e in index]
  total = prepared.counts.get(split, {}).get("frames")
  if total is None:
    raise _Refused("the split has no index and no frame count to size the cache by")
  _check_size(int(total), prepared.frame_size, max_bytes)  # before reading every record
  return [len(source[i]["frames"]) for i in range(num_records)]


def _check_size(num_frames: int, frame_size: int, max_bytes: int) -> int:
  nbytes = num_frames * frame_size * frame_size * 3
  if nbytes > max_bytes:
    raise _Refused(f"{num_frames} frames of {frame_size}×{frame_size} decode to "
                   f"{nbytes / 2**30:.2f} GiB > max_bytes {max_bytes / 2**30:.2f} GiB")
  return nbytes


def _check_space(directory: str, nbytes: int) -> None:
  parent = os.path.dirname(os.path.abspath(directory))
  while not os.path.isdir(parent):  # the nearest existing ancestor tells the file system
    parent = os.path.dirname(parent)
  free = shutil.disk_usage(parent).free
  if nbytes + (64 << 20) > free:
    raise _Refused(f"{nbytes / 2**30:.2f} GiB needed but {free / 2**30:.2f} GiB free at {parent}")


def _build(tmp: str, source, counts: Sequence[int], frame_size: int, threads: int,
           desc: str) -> dict[str, Any]:
  """Decodes every record's frames into tmp/frames.npy, the other fields into records.npz."""
  starts = np.zeros(len(counts) + 1, np.int64)
  np.cumsum(counts, out=starts[1:])
  shape = (frame_size, frame_size, 3)
  frames = np.lib.format.open_memmap(os.path.join(tmp, FRAMES_FILE), mode="w+", dtype=np.uint8,
                                     shape=(int(starts[-1]), *shape))

  def decode(i: int) -> dict[str, Any]:
    record = source[i]
    if len(record["frames"]) != counts[i]:
      raise _Refused(f"record {i} has {len(record['frames'])} frames, the index says {counts[i]}")
    for j, frame in enumerate(record["frames"]):
      decoded = sampling.decode_frame(frame)
      if decoded.shape != shape or decoded.dtype != np.uint8:
        raise _Refused(f"record {i} frame {j} decodes to {decoded.dtype} {decoded.shape}, not "
                       f"uint8 {shape}")
      frames[starts[i] + j] = decoded
    return {k: record[k] for k in ("video_id", "labels", "segment", "num_segments", "fps")}

  fields = []
  with futures.ThreadPoolExecutor(max(1, threads)) as pool, tqdm.tqdm(
      total=int(starts[-1]), unit="frame", unit_scale=True, desc=desc, dynamic_ncols=True) as bar:
    try:  # libjpeg releases the GIL: threads decode in parallel.
      for i, f in enumerate(pool.map(decode, range(len(counts)))):
        fields.append(f)
        bar.update(counts[i])
    except BaseException:
      pool.shutdown(wait=True, cancel_futures=True)
      raise
  frames.flush()  # (the map closes when this function returns)
  video_ids = [f["video_id"] for f in fields]
  labels = [np.atleast_1d(np.asarray(f["labels"], np.int64)) for f in fields]
  label_starts = np.zeros(len(labels) + 1, np.int64)
  np.cumsum([len(x) for x in labels], out=label_starts[1:])
  np.savez(os.path.join(tmp, RECORDS_FILE), frame_starts=starts, label_starts=label_starts,
           video_id=np.array([v.encode() if isinstance(v, str) else bytes(v) for v in video_ids],
                             dtype=np.bytes_).reshape(len(fields)),
           labels=np.concatenate(labels) if labels else np.zeros(0, np.int64),
           segment=np.array([f["segment"] for f in fields], np.int64).reshape(len(fields)),
           num_segments=np.array([f["num_segments"] for f in fields], np.int64).reshape(
               len(fields)),
           fps=np.array([f["fps"] for f in fields], np.float32).reshape(len(fields)))
  return {"num_frames": int(starts[-1]), "frame_shape": list(shape)}


def config_source(prepared, split: str, config):
  """The split's records as a run of `config` reads them: `cached_source` when
  `config.data.cache_frames` (the `cpu` and `tiny` configs), else the prepared JPEG records."""
  if config.data.get("cache_frames"):
    return cached_source(prepared, split)
  return prepared.source(split)


def is_cached(source) -> bool:
  """Whether `source` holds decoded frames (reading it costs no decode: read it in-process)."""
  return isinstance(source, CachedSource)


def cached_source(prepared, split: str, cache_dir: str | os.PathLike | None = None,
                  max_bytes: int = DEFAULT_MAX_BYTES, threads: int | None = None):
  """`prepared.source(split)` with its frames decoded once into a memory map (see module doc).

  Args:
    prepared: a `prepared.Prepared` (source, index, fingerprint, frame_size, builder_dir).
    split: the split to read.
    cache_dir: where caches live; None: `<builder dir>/frame-cache`.
    max_bytes: larger decoded splits are not cached (the JPEG source is returned).
    threads: decoding threads; None: min(4, CPUs).

  Returns:
    a `CachedSource` (reused, or built now), or `prepared.source(split)` itself when refused
    (the reason is logged).
  """
  source = prepared.source(split)
  directory = cache_path(prepared, split, cache_dir)
  expected = _expected_meta(prepared, split, len(source))
  cached = _existing(directory, expected)
  if cached is not None:
    logging.info("frame cache: reusing %s", cached)
    return cached
  try:
    counts = _frame_counts(prepared, split, len(source), source, max_bytes)
    nbytes = _check_size(sum(counts), prepared.frame_size, max_bytes)
    _check_space(directory, nbytes)
    stale = fileio.stale_temporaries(directory)
    if stale:
      logging.warning("frame cache: unfinished builds (killed, or building now) at %s",
                      [os.fspath(p) for p in stale])
    t0 = time.perf_counter()
    with fileio.atomic_dir(directory,
                           keep_existing=lambda: _existing(directory, expected) is not None) as tmp:
      shapes = _build(os.fspath(tmp), source, counts, prepared.frame_size,
                      threads or min(4, os.cpu_count() or 1), f"frame cache {split}")
      seconds = time.perf_counter() - t0
      meta = {**expected, **shapes, "build_seconds": round(seconds, 3),
              "builder_dir": os.fspath(prepared.builder_dir)}
      fileio.write_json(os.path.join(tmp, META_FILE), meta)
  except (_Refused, OSError) as e:
    logging.warning("frame cache off for %s [%s], reading JPEG frames: %s",
                    prepared.builder_dir, split, e)
    return source
  cached = _existing(directory, expected)  # ours, or the one another process published first
  if cached is None:
    return source
  cached.built, cached.build_seconds = True, seconds
  logging.info("frame cache: decoded %d frames of %s [%s] in %.1f s (%.0f frames/s): %.0f MiB "
               "at %s", shapes["num_frames"], prepared.builder_dir, split, seconds,
               shapes["num_frames"] / max(seconds, 1e-9), nbytes / 2**20, directory)
  return cached
