r"""Offline preparation: videos → TFDS/ArrayRecord segments of square JPEG frames. Run once.

  python -m stcnn.data.prepare --dataset=ucf101 --source=~/data/UCF101 --output=~/data/ucf101_s1 \
      --split=1
  python -m stcnn.data.prepare --dataset=sports1m --source=~/sports1m --output=~/data/sports1m
  python -m stcnn.data.prepare --dataset=folder --source=~/my_videos --output=~/data/mine
  python -m stcnn.data.prepare --dataset=csv --source=~/my_videos/list.csv --output=~/data/mine
  python -m stcnn.data.prepare ... --runner=beam \
      --beam_options="--runner=DirectRunner --direct_num_workers=2"

The pipeline: a reader's listing (`read_listing`: ucf101, sports1m, folder, csv) → each present
video's segments of square JPEG frames (`stcnn.data.encode`: whatever PyAV reads, any resolution,
aspect ratio, frame rate) → its records (`encode.video_examples`) → `builders.write`, which streams
them into ArrayRecord shards (memory stays bounded at any data set size) → the report. A progress
bar counts videos, frames/s and the ETA.

Runners: `runner="local"` (this process, or `workers` processes) or `runner="beam"` (an Apache
Beam pipeline, `stcnn.data.prepare_beam`: DirectRunner here, Dataflow / Flink / Spark given their
options). One video becomes records through the same functions whichever runner calls them
(`encode.encode_task` then `encode.video_examples` then `builders.serialize`), and shards are cut by
`builders.ShardPlan` from the records' sizes in listing order, so both runners write the same
records, shards, index, metadata and fingerprint, and the same report but for its timings. Paths
may be URIs (gs://...; `stcnn.fileio`) where the runner can read and write them.

Decisions [choice] (segments, frame rate and what makes a video unreadable: `stcnn.data.encode`):
- A video `encode` gives a reason for (cannot be opened, decodes with an error, yields 0 frames,
  kills its worker process or takes longer than `video_timeout`) is skipped, counted as unreadable
  and named with the reason in the report, `prepare_report.json` next to the builder dir
  (`report_path`; one per UCF-101 split config). A split never stops on a bad video.
  workers > 1 decodes in that many processes (`encode.run_isolated`), so a crash or a hang costs
  only its video; workers=1 decodes in this process: no protection from crashes and no timeout
  (the same holds inside each Beam worker).
- Resume: a complete data set with the same fingerprint is returned at once; one made from another
  source or settings is never touched (error). Data is written into a hidden
  `.NAME.incomplete-*` sibling and renamed at the end (`stcnn.fileio`), so a failed or killed run
  leaves nothing that looks complete; an interrupted run restarts that data set from the beginning
  (its stale temporaries are removed first).
- Folder and Sports-1M sources are scanned for videos, so the output may not lie inside them (its
  files would be listed next time); UCF-101 and CSV list their videos, so there it may.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import time
from typing import Any, Callable, Iterator, Sequence

from absl import app, flags, logging
import tqdm

from stcnn import console, fileio
from stcnn.data import builders, encode, folder, prepared, sports1m, ucf101

DATASETS = ("ucf101", "sports1m", "folder", "csv")
RUNNERS = ("local", "beam")
REPORT_FILE = "prepare_report.json"
VIDEO_TIMEOUT = 3600.0  # [choice] seconds one video may take (workers > 1); hours-long ones fit.


def read_listing(dataset: str, source, *, split: int | None = None,
                 labels_file=None) -> builders.Listing:
  """The reader's listing of `source` for `dataset` (one of DATASETS)."""
  if dataset not in DATASETS:
    raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")
  if split is not None and dataset != "ucf101":
    raise ValueError(f"split={split} only applies to ucf101 (its official splits 1, 2, 3)")
  if labels_file is not None and dataset != "sports1m":
    raise ValueError("labels_file only applies to sports1m; folder/csv read classes.txt")
  source = os.path.expanduser(os.fspath(source))
  if dataset == "ucf101":
    return ucf101.read(source, split=1 if split is None else split)
  if dataset == "sports1m":
    return sports1m.read(source, labels_file=labels_file)
  return folder.read_folder(source) if dataset == "folder" else folder.read_csv(source)


# ------------------------------------------------------------ bookkeeping and the example generator
@dataclasses.dataclass
class SplitStats:
  listed: int = 0
  written: int = 0
  missing: int = 0
  unreadable: int = 0
  segments: int = 0
  frames: int = 0
  seconds: float = 0.0
  unreadable_files: list = dataclasses.field(default_factory=list)  # {video_id, path, reason}
  missing_ids: list = dataclasses.field(default_factory=list)

  def counts(self) -> dict:
    return {k: v for k, v in dataclasses.asdict(self).items() if not k.endswith(("_files", "_ids"))}

  def add(self, item: builders.Item, result: list[int] | str) -> None:
    """Counts one video: `result` is its segments' frame counts, or why it is unreadable."""
    if isinstance(result, str):
      self.unreadable += 1
      self.unreadable_files.append({"video_id": item.video_id, "path": item.path, "reason": result})
    else:
      self.written += 1
      self.segments += len(result)
      self.frames += sum(result)


def _examples(split, items, settings, stats: SplitStats, workers, timeout) -> Iterator[dict]:
  present = [it for it in items if it.path]
  encode_path = functools.partial(encode.encode_task, settings=settings)
  paths = [it.path for it in present]
  results = (encode.run_isolated(encode_path, paths, workers, timeout) if workers > 1
             else (encode_path(path) for path in paths))
  start = time.time()
  with contextlib.closing(results), tqdm.tqdm(total=len(present), desc=f"prepare {split}",
                                              unit="video") as bar:
    for item, result in zip(present, results):
      if not isinstance(result, str):
        yield from encode.video_examples(item, *result)
      stats.add(item, result if isinstance(result, str) else [len(seg) for seg in result[0]])
      stats.seconds = time.time() - start
      bar.update(1)
      bar.set_postfix(frames_s=f"{stats.frames / max(stats.seconds, 1e-9):.0f}",
                      bad=stats.unreadable, refresh=False)


def report_path(builder_dir) -> str:
  """Where prepare writes the report of a builder dir: next to it (one per UCF-101 config)."""
  return os.path.join(os.path.dirname(os.fspath(builder_dir).rstrip("/")), REPORT_FILE)


def _report(listing, settings, builder, stats, status, seconds, error=None) -> dict:
  total = sum(s.written + s.unreadable for s in stats.values())
  frames = sum(s.frames for s in stats.values())
  return {
      "status": status, "error": error, "dataset": listing.kind, "config": listing.config,
      "source": listing.root, "builder_dir": os.fspath(builder.data_dir),
      "fingerprint": builder.metadata_to_write["fingerprint"],
      "settings": dataclasses.asdict(settings),
      "notes": listing.notes, "seconds": round(seconds, 3),
      "videos_per_s": round(total / max(seconds, 1e-9), 3),
      "frames_per_s": round(frames / max(seconds, 1e-9), 1),
      "splits": {k: s.counts() for k, s in stats.items()},
      "unreadable": {k: s.unreadable_files for k, s in stats.items()},
      "missing": {k: s.missing_ids for k, s in stats.items()}}


def _print_summary(report, path):
  for split, c in report["splits"].items():
    print(f"{split}: videos listed {c['listed']}, written {c['written']}, missing {c['missing']}, "
          f"unreadable {c['unreadable']} ({c['segments']} segments, {c['frames']} frames)")
    for bad in report["unreadable"][split][:20]:
      print(f"  unreadable: {bad['reason']}")
    if len(report["unreadable"][split]) > 20:
      print(f"  ... {len(report['unreadable'][split]) - 20} more in {path}")
  print(f"{report['status']}: {report['videos_per_s']} videos/s, "
        f"{report['frames_per_s']} frames/s; report {path}; data set {report['builder_dir']}")


# ---------------------------------------------------------------------------------------- prepare()
def _differences(old: dict, new: dict) -> list[str]:
  """What changed between two data sets' metadata, for the refusal message."""
  out = []
  for key in ("settings", "source_checksums"):
    a, b = old.get(key) or {}, new[key]
    out += [f"{key}.{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted({*a, *b})
            if a.get(k) != b.get(k)]
  for key, what in (("class_names", "class names"), ("hierarchy", "hierarchy"),
                    ("items_sha256", "listed videos (added, removed, renamed or resized)")):
    if old.get(key) != new[key]:
      out.append(f"{what} differ")
  return out or ["fingerprint differs"]


def _check_existing(output, builder) -> bool:
  """True if `builder` is already complete with the same fingerprint; raises on any conflict."""
  target = fileio.resolve(builder.data_dir)
  meta = builder.metadata_to_write
  for d in prepared.find_builder_dirs(output):
    old = prepared.read_metadata(d)
    if d == target and old.get("fingerprint") == meta["fingerprint"]:
      return True
    if d == target:
      raise ValueError(f"{d} was prepared from a different source or settings "
                       f"({'; '.join(_differences(old, meta))}). Refusing to overwrite it: choose "
                       "another --output or delete that folder.")
    if old.get("builder") != meta["builder"] or old.get("builder_version") != builders.DATA_VERSION:
      raise ValueError(f"{output} already holds a different prepared data set at {d} "
                       f"({old.get('builder')} {old.get('builder_version')}); choose another "
                       "--output.")
  return False


def prepare(dataset: str, source, output, *, split: int | None = None, frame_size: int = 200,
            segment_frames: int = 300, max_segments: int = 10, jpeg_quality: int = 90,
            fps: float | None = None, labels_file=None, workers: int = 1,
            video_timeout: float = VIDEO_TIMEOUT, runner: str = "local",
            beam_options: str | Sequence[str] | None = None) -> str:
  """Prepares `source` as a TFDS data set under `output`; returns the builder dir (module doc).

  Args:
    dataset: "ucf101", "sports1m", "folder" or "csv".
    source: the source folder (the CSV file for "csv").
    output: folder to write into; a complete identical data set there is reused.
    split: UCF-101 official split 1, 2 or 3 (default 1); only for ucf101.
    frame_size: side of the stored square frames [paper: 200].
    segment_frames: frames per stored segment; max_segments: most segments per video.
    jpeg_quality: JPEG quality of the stored frames.
    fps: resample to this frame rate; None keeps each video's own.
    labels_file: Sports-1M labels.txt (default: the bundled copy).
    workers: decoding processes. 1 decodes here (a decoder crash ends the run); > 1 spawns
      processes that isolate crashes and hangs (call from under `if __name__ == "__main__":`).
      With runner="beam", the same within each Beam worker.
    video_timeout: seconds one video may take when workers > 1 (then it counts as unreadable).
    runner: "local" or "beam" (`stcnn.data.prepare_beam`; needs `pip install -e '.[beam]'`).
    beam_options: the Beam pipeline options, a command-line string or a list of arguments
      (default: DirectRunner); only with runner="beam".
  """
  if runner not in RUNNERS:
    raise ValueError(f"runner must be one of {RUNNERS}, got {runner!r}")
  if beam_options and runner != "beam":
    raise ValueError("beam_options only apply to runner='beam'")
  settings = builders.Settings(frame_size, segment_frames, max_segments, jpeg_quality, fps)
  output = fileio.resolve(output)
  listing = read_listing(dataset, source, split=split, labels_file=labels_file)
  if dataset in ("folder", "sports1m") and _inside(output, listing.root):
    raise ValueError(f"output {output} is inside the source folder {listing.root}: its files "
                     "would be read as source videos next time; choose an output folder outside it")
  stats = {}
  for name, items in listing.splits.items():
    missing = [it.video_id for it in items if not it.path]
    stats[name] = SplitStats(listed=len(items), missing=len(missing), missing_ids=missing)
  present = {}
  for name, items in listing.splits.items():
    if stats[name].listed > stats[name].missing:
      present[name] = items
    else:
      logging.warning("split %s: none of its %d listed videos is present; not written",
                      name, stats[name].listed)
  if runner == "local":
    examples = {name: _examples(name, items, settings, stats[name], workers, video_timeout)
                for name, items in present.items()}
    return write_prepared(listing, settings, output, examples, stats)
  try:
    from stcnn.data import prepare_beam  # pylint: disable=import-outside-toplevel
  except ImportError as e:
    raise ImportError(f"runner='beam' needs Apache Beam ({e}): pip install -e '.[beam]'") from e
  write = functools.partial(prepare_beam.write, splits=present, settings=settings, stats=stats,
                            options=beam_options, workers=workers, video_timeout=video_timeout)
  return _write_reported(listing, settings, output, stats, bool(present), write)


def _inside(path: str, root: str) -> bool:
  """Whether `path` is `root` or below it (local paths: after resolving links)."""
  if fileio.is_remote(path) or fileio.is_remote(root):
    return (path.rstrip("/") + "/").startswith(root.rstrip("/") + "/")
  root = os.path.realpath(root)
  return os.path.commonpath([root, os.path.realpath(path)]) == root


def write_prepared(listing: builders.Listing, settings: builders.Settings, output,
                   examples: dict[str, Iterator[dict]], stats: dict[str, SplitStats]) -> str:
  """The writing half of `prepare`, also for examples made elsewhere (`stcnn.data.synthetic`
  renders its records straight to JPEG): the same builder, reuse or refusal, atomic write and
  report. `examples` (split -> generator of that split's examples in order, closed on failure) fill
  in `stats` (split -> SplitStats) as they go. Returns the builder dir.
  """
  def write(builder, metadata):
    try:
      builders.write(builder, examples, metadata)
    except BaseException:
      for split_examples in examples.values():
        split_examples.close()  # Stops its worker processes now.
      raise

  return _write_reported(listing, settings, output, stats, bool(examples), write)


def _write_reported(listing: builders.Listing, settings: builders.Settings, output,
                    stats: dict[str, SplitStats], anything: bool,
                    write: Callable[[Any, Callable[[], dict]], Any]) -> str:
  """Reuse or refusal, then `write(builder, metadata)` (which fills in `stats`), then the report
  (also of a failed write). `anything`: whether any split has a video to write."""
  output = fileio.resolve(output)
  builder = builders.make_builder(listing, settings, output)
  if _check_existing(output, builder):
    print(f"Already prepared (same source and settings): {builder.data_dir}")
    return os.fspath(builder.data_dir)
  if not anything:
    raise ValueError(f"{listing.root}: none of the {sum(s.listed for s in stats.values())} "
                     "listed videos was found")
  for stale in fileio.stale_temporaries(builder.data_dir):
    logging.warning("Removing %s left by an interrupted run", stale)
    fileio.remove_tree(stale)
  path = report_path(builder.data_dir)
  start = time.time()
  metadata = lambda: {**builder.metadata_to_write,
                      "counts": {k: s.counts() for k, s in stats.items()}}
  try:
    write(builder, metadata)
  except BaseException as e:
    empty = [k for k, s in stats.items() if s.written == 0 and s.unreadable]
    error = (f"split {empty[0]}: none of its {stats[empty[0]].unreadable} videos could be read"
             if empty else f"{type(e).__name__}: {e}")
    report = _report(listing, settings, builder, stats, "failed", time.time() - start, error)
    fileio.write_json(path, report)
    _print_summary(report, path)
    if empty and isinstance(e, Exception):
      raise ValueError(f"{error} (reasons in {path}); nothing was written") from e
    raise
  report = _report(listing, settings, builder, stats, "ok", time.time() - start)
  fileio.write_json(path, report)
  _print_summary(report, path)
  return os.fspath(builder.data_dir)


# ---------------------------------------------------------------------------------------------- CLI
def _define_flags():
  """Flags exist only when this module is the program (they would clash in a library import)."""
  flags.DEFINE_enum("dataset", None, DATASETS, "Source kind.")
  flags.DEFINE_string("source", None, "Source folder (or the CSV file for --dataset=csv).")
  flags.DEFINE_string("output", None, "Output folder for the TFDS data set.")
  flags.DEFINE_integer("split", None, "UCF-101 official split 1, 2 or 3 (default 1).")
  flags.DEFINE_integer("frame_size", 200, "Stored square frame size [paper: 200].")
  flags.DEFINE_integer("segment_frames", 300, "Frames per stored segment.")
  flags.DEFINE_integer("max_segments", 10, "Most segments kept per video.")
  flags.DEFINE_integer("jpeg_quality", 90, "JPEG quality of stored frames.")
  flags.DEFINE_float("fps", None, "Resample to this frame rate (default: keep the video's).")
  flags.DEFINE_string("labels_file", None, "Sports-1M labels.txt (default: the bundled one).")
  flags.DEFINE_integer("workers", 1, "Decoding processes (> 1 also isolates decoder crashes).")
  flags.DEFINE_float("video_timeout", VIDEO_TIMEOUT, "Seconds one video may take (workers > 1).")
  flags.DEFINE_enum("runner", "local", RUNNERS, "local: this process (or --workers processes); "
                    "beam: an Apache Beam pipeline (pip install -e '.[beam]').")
  flags.DEFINE_string("beam_options", None, "Beam pipeline options for --runner=beam, e.g. "
                      "\"--runner=DirectRunner --direct_num_workers=2\" (default DirectRunner).")
  flags.mark_flags_as_required(["dataset", "source", "output"])


def main(argv):
  console.quiet_libraries()
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  f = flags.FLAGS
  prepare(f.dataset, f.source, f.output, split=f.split, frame_size=f.frame_size,
          segment_frames=f.segment_frames, max_segments=f.max_segments,
          jpeg_quality=f.jpeg_quality, fps=f.fps, labels_file=f.labels_file, workers=f.workers,
          video_timeout=f.video_timeout, runner=f.runner, beam_options=f.beam_options)


if __name__ == "__main__":
  _define_flags()
  app.run(main)
