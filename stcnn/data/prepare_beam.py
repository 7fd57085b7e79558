r"""Offline preparation as an Apache Beam pipeline: `prepare.prepare(..., runner="beam")`.

  python -m stcnn.data.prepare --dataset=ucf101 --source=~/data/UCF101 --output=~/data/ucf101_s1 \
      --runner=beam --beam_options="--runner=DirectRunner --direct_num_workers=2"

Only the orchestration is Beam's. What a video becomes is `stcnn.data.encode`'s, as for the local
runner (`encode.encode_task`, then `encode.video_examples`, then `builders.serialize` /
`builders.index_entry`), and shards are cut by `builders.ShardPlan` over the records' sizes in
listing order, so a Beam run writes what the local runner writes: the same records (byte for byte),
shards, index, metadata and fingerprint, and the same `prepare_report.json` but for its timings.

The pipeline, run while the data set sits in its temporary sibling dir (`builders.publishing`):
  task files (one JSON line per present video: split, position in the split's listing, item;
  `TASKS_PER_FILE` a file) → Create(their names) → read them → Reshuffle
  → Encode each video (records + index entries, or the reason it failed)
  → Summarise each video (its records' sizes and frame counts, or its reason) → one list → Plan
    (`ShardPlan` per split over the videos in listing order: each record's shard; writes the
    summary file)
  → Key each record by (split, shard), the plan a side input → GroupByKey
  → Write each shard: its records sorted by (position, segment) → the ArrayRecord shard under its
    final name, and that shard's part of the split's index.
Then this process counts each split's videos from the summary in listing order (`SplitStats.add`),
joins the index parts into `index-<split>.jsonl` and writes the TFDS metadata
(`builders.write_info`); `prepare` writes the report.

Decisions [choice]:
- Deterministic: a record's shard and place depend only on the listing and the sizes of the
  records, never on which worker ran which video or when.
- A shard is put together in one worker's memory (up to `builders.SHARD_BYTES`, ~1 GiB) to be
  sorted; the plan holds a few numbers per video, in one worker (~100 MB per million videos).
- workers = 1 decodes in the Beam worker: a failing video is counted and named, but a decoder crash
  fails its bundle (the runner retries it, then fails the job). workers > 1 decodes batches of
  `ISOLATED_BATCH` x workers videos in that many child processes of the Beam worker, started per
  batch (`stcnn.data.encode.run_isolated`), so a crash or a hang (`video_timeout`) costs only its
  video, as with the local runner.
- No options: the DirectRunner. Workers need stcnn and its dependencies installed (Dataflow:
  `--setup_file=./setup.py`, or a custom container). Source and output are then URIs every worker
  can read and write (gs://...; `stcnn.fileio`).
"""
from __future__ import annotations

import functools
import json
import os
import shlex
import time
from typing import Any, Callable, Iterator, Mapping, Sequence

try:
  import apache_beam as beam
  from apache_beam.options import pipeline_options
except ImportError as e:
  raise ImportError(f"stcnn.data.prepare_beam needs Apache Beam ({e}): "
                    "pip install -e '.[beam]'") from e

from stcnn import fileio
from stcnn.data import builders, prepare
from stcnn.data import encode as encode_lib  # `encode` is this module's step below

TASKS_FILE = ".beam-tasks-{:05d}.jsonl"
TASKS_PER_FILE = 1000  # [choice] the pipeline graph holds only the task files' names
SUMMARY_FILE = ".beam-summary.json"
ISOLATED_BATCH = 16  # [choice] videos per child process a batch (workers > 1)
INDEX_PART = ".{index}.part-{shard:05d}"


# --------------------------------------------------------------------------- one video, on a worker
def _item(task: Mapping[str, Any]) -> builders.Item:
  return builders.Item(task["video_id"], task["path"], tuple(task["labels"]))


def _encoded(task: dict, result) -> dict:
  """A task with its `encode_lib.encode_task` result: records [(bytes, index entry)] or a reason."""
  if isinstance(result, str):
    return {**task, "reason": result, "records": []}
  examples = encode_lib.video_examples(_item(task), *result)
  return {**task, "reason": None,
          "records": [(builders.serialize(e), builders.index_entry(e)) for e in examples]}


def encode(task: dict, settings: builders.Settings) -> dict:
  """One video, decoded in this process."""
  return _encoded(task, encode_lib.encode_task(task["path"], settings))


def encode_isolated(tasks: list[dict], settings: builders.Settings, workers: int,
                    timeout: float) -> Iterator[dict]:
  """A batch of videos, decoded in `workers` child processes (`encode_lib.run_isolated`)."""
  results = encode_lib.run_isolated(functools.partial(encode_lib.encode_task, settings=settings),
                                    [t["path"] for t in tasks], workers, timeout)
  for task, result in zip(tasks, results):
    yield _encoded(task, result)


# ----------------------------------------------------------------------- the plan, on one worker
def _summary(video: dict) -> tuple:
  """What the plan needs of a video: (split, position, reason, record sizes, frame counts)."""
  return (video["split"], video["pos"], video["reason"],
          [len(record) for record, _ in video["records"]],
          [entry["num_frames"] for _, entry in video["records"]])


def plan(summaries: list[tuple], splits: Sequence[str], shard_bytes: int, directory: str) -> dict:
  """Each record's shard ({(split, position): [shard per record]}) and each split's shard count;
  writes the summary file for the driver: per split, its shards' lengths and sizes and its videos
  [position, reason, frame counts] in listing order."""
  shards, num_shards, summary = {}, {}, {}
  for split in splits:
    shard_plan, videos = builders.ShardPlan(shard_bytes), []
    for _, pos, reason, sizes, frames in sorted(s for s in summaries if s[0] == split):
      shards[split, pos] = [shard_plan.add(size) for size in sizes]
      videos.append([pos, reason, frames])
    num_shards[split] = len(shard_plan.lengths)
    summary[split] = {"lengths": shard_plan.lengths, "sizes": shard_plan.sizes, "videos": videos}
  fileio.write_json(os.path.join(directory, SUMMARY_FILE), summary, indent=None)
  return {"shards": shards, "num_shards": num_shards}


# ------------------------------------------------------------------------- the shards, on workers
def key_records(video: dict, shard_plan: dict) -> Iterator[tuple[tuple[str, int], tuple]]:
  """((split, shard), (position, segment, record, index entry)) of each record of a video (the
  annotation is Beam's output type: a key-value pair, as GroupByKey checks since Beam 2.7x)."""
  shards = shard_plan["shards"][video["split"], video["pos"]]
  for segment, ((record, entry), shard) in enumerate(zip(video["records"], shards)):
    yield (video["split"], shard), (video["pos"], segment, record, entry)


def write_shard(keyed: tuple, shard_plan: dict, name: str, directory: str) -> None:
  """Writes one shard (records in listing order) and its part of the split's index."""
  (split, shard), records = keyed
  records = sorted(records, key=lambda r: r[:2])
  num_shards = shard_plan["num_shards"][split]
  builders.write_shard(builders.shard_path(name, directory, split, shard, num_shards),
                       (record for _, _, record, _ in records))
  with builders.index_writer(os.path.join(directory, _index_part(split, shard))) as write_entry:
    for *_, entry in records:
      write_entry(entry)


def _index_part(split: str, shard: int) -> str:
  return INDEX_PART.format(index=builders.INDEX_FILE.format(split=split), shard=shard)


# --------------------------------------------------------------------------------------- the driver
def pipeline_args(options: str | Sequence[str] | None) -> list[str]:
  """Beam's command-line options from a string ("--runner=... --project=...") or a list."""
  if options is None:
    return []
  return shlex.split(options) if isinstance(options, str) else list(options)


def read_tasks(path: str) -> list[dict]:
  return [json.loads(line) for line in fileio.text_lines(path)]


def run_pipeline(task_files: Sequence[str], directory: str, name: str, splits: Sequence[str],
                 settings: builders.Settings, options: str | Sequence[str] | None, workers: int,
                 video_timeout: float, shard_bytes: int) -> None:
  """Runs the pipeline (module docstring) over the task files into `directory`, to the end."""
  opts = pipeline_options.PipelineOptions(pipeline_args(options))
  with beam.Pipeline(options=opts) as p:
    tasks = (p | "Task files" >> beam.Create(list(task_files))
             | "Read tasks" >> beam.FlatMap(read_tasks) | "Spread" >> beam.Reshuffle())
    if workers > 1:
      batch = ISOLATED_BATCH * workers  # a fixed size: each batch starts its own processes
      videos = (tasks | "Batch" >> beam.BatchElements(min_batch_size=batch, max_batch_size=batch)
                | "Encode" >> beam.FlatMap(encode_isolated, settings, workers, video_timeout))
    else:
      videos = tasks | "Encode" >> beam.Map(encode, settings)
    shard_plan = (videos | "Summarise" >> beam.Map(_summary)
                  | "Gather" >> beam.combiners.ToList()
                  | "Plan" >> beam.Map(plan, list(splits), shard_bytes, directory))
    _ = (videos
         | "Key" >> beam.FlatMap(key_records, beam.pvalue.AsSingleton(shard_plan))
         | "Group" >> beam.GroupByKey()
         | "Write" >> beam.Map(write_shard, beam.pvalue.AsSingleton(shard_plan), name, directory))


def write(builder, metadata: Callable[[], Mapping[str, Any]], *,
          splits: Mapping[str, Sequence[builders.Item]], settings: builders.Settings,
          stats: Mapping[str, prepare.SplitStats], options: str | Sequence[str] | None = None,
          workers: int = 1, video_timeout: float = prepare.VIDEO_TIMEOUT,
          shard_bytes: int | None = None) -> str:
  """Writes `splits` (name -> listed items; those without a path are skipped) as `builder`'s data
  set through the Beam pipeline and fills in `stats`, as `builders.write` does for the local runner.
  Returns the builder dir."""
  shard_bytes = shard_bytes or builders.SHARD_BYTES
  with builders.publishing(builder) as tmp:
    start = time.time()
    tasks = [json.dumps({"split": split, "pos": pos, "video_id": it.video_id, "path": it.path,
                         "labels": list(it.labels)}) + "\n"
             for split, items in splits.items() for pos, it in enumerate(items) if it.path]
    task_files = []
    for k in range(0, len(tasks), TASKS_PER_FILE):
      task_files.append(os.path.join(tmp, TASKS_FILE.format(k // TASKS_PER_FILE)))
      fileio.write_text(task_files[-1], "".join(tasks[k:k + TASKS_PER_FILE]))
    run_pipeline(task_files, tmp, builder.name, list(splits), settings, options, workers,
                 video_timeout, shard_bytes)
    summary = json.loads(fileio.read_bytes(os.path.join(tmp, SUMMARY_FILE)))
    for split, items in splits.items():
      for pos, reason, frames in summary[split]["videos"]:
        stats[split].add(items[pos], frames if reason is None else reason)
      stats[split].seconds = time.time() - start
    infos = [builders.split_info(builder, tmp, split, summary[split]["lengths"],
                                 summary[split]["sizes"]) for split in splits]
    for split in splits:
      _join_index(tmp, split, len(summary[split]["lengths"]))
    for path in [*task_files, os.path.join(tmp, SUMMARY_FILE)]:
      fileio.remove(path)
    builders.write_info(builder, tmp, infos, metadata())
  return os.fspath(builder.data_dir)


def _join_index(directory: str, split: str, num_shards: int) -> None:
  """index-<split>.jsonl from its parts, in shard order; the parts are removed."""
  parts = [os.path.join(directory, _index_part(split, k)) for k in range(num_shards)]
  with fileio.open_binary(os.path.join(directory, builders.INDEX_FILE.format(split=split)),
                          "wb") as f:
    for part in parts:
      f.write(fileio.read_bytes(part))
  for part in parts:
    fileio.remove(part)
