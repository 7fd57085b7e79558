r"""The multi-view video evaluator [paper §4], used during training and as a CLI.

  python -m stcnn.evaluate --workdir=DIR [--split=test] [--checkpoint=best|latest|STEP]
      [--clips_per_video=N] [--views=4]

Protocol: every video gives `clips_per_video` clips (20; UCF-101 50) evenly spaced, each seen in
`views` deterministic views (crops × flips, stcnn.data.transforms.eval_views); the video prediction
is the mean softmax over all of them. Metrics (stcnn.metrics): clip hit@1 (clip = mean over its
views), video hit@1 / hit@5 (hit if any true label is in the top k), mean class accuracy, per-class
AP and mean AP, confusion matrix. Batches are padded and masked to `config.eval_batch_size`, so
the numbers do not depend on the device or process count. The protocol is stored with every result.
"""
from __future__ import annotations

import json
import math
import os

from absl import app, flags, logging
import jax
import ml_collections
import numpy as np

from stcnn import (
  checkpoint_reader,
  console,
  fileio,
  host_memory,
  metrics,
  models,
  parallel,
  xla_options,
)


def jit_predict(model, mesh):
  """(params, views) → class probabilities (softmax of the scores), jitted: params replicated over
  `mesh`, the views split over its data axis, compiled with `stcnn.xla_options`."""
  return jax.jit(lambda p, v: jax.nn.softmax(model.apply({"params": p}, v, train=False)),
                 in_shardings=(parallel.replicated(mesh), parallel.data_sharding(mesh)),
                 out_shardings=parallel.replicated(mesh),
                 compiler_options=xla_options.compiler_options())


class Evaluator:
  """Evaluates params on one split: `run(params, step) -> dict` of metrics.

  Input: from cached frames (`config.data.cache_frames`) a view is a memory-mapped crop, and a
  pass's input is read in this process: worker processes, started afresh each pass, cost more
  than they save (the `cpu` test split, 15,360 views: multires 12.0-12.5 → 7.0 s a pass, slow
  fusion 50.3 → 46.4 s). Decoded from JPEG, `config.data.worker_count` workers read it.

  Streaming: each batch's view-averaged clip predictions are added into per-video sums as they
  arrive, so memory is (num_videos × C) however many clips × views there are (200k Sports-1M test
  videos × 20 clips × 4 views × 487 classes would be 31 GB kept whole). The video each example
  belongs to comes from the evaluation plan on the host: only the images travel to the devices.
  """

  def __init__(self, config, data, mesh, split: str, max_videos: int = 0,
               clips_per_video: int | None = None, views: int | None = None):
    from stcnn.data import frame_cache, pipeline, transforms  # grain is heavy: imported here
    if split not in data.splits:
      raise ValueError(f"config.data: split {split!r} is not in the data set at "
                       f"{data.builder_dir} (it has {sorted(data.splits)})")
    clips = clips_per_video or config.data.clips_per_video
    views = views or config.data.views
    if config.eval_batch_size % (views * jax.process_count()):
      raise ValueError(f"config.eval_batch_size = {config.eval_batch_size} must be a multiple of "
                       f"config.data.views ({views}) × the process count ({jax.process_count()})"
                       ", so that the views of a clip share a batch")
    self.mesh = mesh
    self.split = split
    self.batch_size = config.eval_batch_size
    offsets = models.frame_offsets(config)
    source = frame_cache.config_source(data, split, config)
    index = data.index(split)
    self.source = source  # the split's records (`plan.clips` index them)
    self.plan = pipeline.eval_plan(
        source, num_frames=len(offsets), num_classes=config.num_classes,
        clips_per_video=clips, views=views, frame_offsets=offsets, index=index,
        max_videos=max_videos)
    self.batches = pipeline.EvalBatches(
        source, self.plan, crop_size=config.model.input_size, batch_size=config.eval_batch_size,
        mean=config.data.mean, process_index=jax.process_index(),
        process_count=jax.process_count(),
        worker_count=0 if frame_cache.is_cached(source) else config.data.worker_count)
    self.groups = class_groups(data.hierarchy, config.num_classes)
    self._predict = jit_predict(models.build(config), mesh)
    self.protocol = {
        "split": split, "clips_per_video": clips, "views": views,
        "view_set": ", ".join(transforms.view_names(views)) +
                    f" (crop {config.model.input_size} of {data.frame_size})",
        "aggregation": "video = mean softmax over clips × views; clip = mean over its views",
        "num_videos": self.plan.num_videos, "batch_size": config.eval_batch_size,
        "data_fingerprint": data.fingerprint}

  def run(self, params, step: int = -1) -> dict:
    """The metrics of `params` on the split (`metrics.VideoAccumulator.result`, + group_mean_ap
    with a class tree), at `step`."""
    return self.result(self.accumulate(params), step)

  def accumulate(self, params) -> metrics.VideoAccumulator:
    """Every clip × view of the plan through the network, into per-video sums: the accumulator
    (its `video_predictions()` are the videos' probabilities, in `plan.video_ids` order)."""
    plan = self.plan
    acc = metrics.VideoAccumulator(plan.video_labels > 0, plan.views, plan.first_labels)

    def add(k, probs):
      first = k * self.batch_size // plan.views  # the batch's first clip
      n = min(len(probs) // plan.views, len(plan.clips) - first)  # the rest is padding
      videos = np.repeat(plan.clips[first:first + n, 0], plan.views)
      acc.add(np.asarray(probs)[:n * plan.views], videos)

    pending = None  # dispatch batch k+1 before fetching batch k's result
    for k, batch in enumerate(self.batches):
      out = self._predict(params, parallel.to_global({"video": batch["video"]}, self.mesh)["video"])
      if pending is not None:
        add(*pending)
      pending = (k, out)
    if pending is not None:
      add(*pending)
    return acc

  def result(self, acc: metrics.VideoAccumulator, step: int = -1) -> dict:
    """The metrics of an accumulator filled by `accumulate`, at `step`."""
    try:
      result = acc.result()
    except ValueError as e:
      raise ValueError(f"{self.split}: {e}") from e
    if self.groups:
      result["group_mean_ap"] = metrics.group_mean_ap(result["per_class_ap"], self.groups)
    result["step"] = int(step)
    return result


def class_groups(hierarchy, num_classes: int) -> dict:
  """Leaf ids under each internal node of a class hierarchy (Table 4's per-group mean AP)."""
  if not hierarchy:
    return {}
  from stcnn.models.heads import Hierarchy
  h = Hierarchy.from_json(hierarchy)
  path = h.path_matrix()  # (leaves, nodes)
  names = list(h.names) or [f"node{i}" for i in range(len(h.parents))]
  return {names[n]: np.flatnonzero(path[:, n]).tolist()
          for n in range(h.num_leaves, len(h.parents)) if path[:num_classes, n].any()}


def scalars(result: dict) -> dict:
  """The single-number metrics of a result (for metrics.jsonl / TensorBoard)."""
  return {k: float(v) for k, v in result.items()
          if isinstance(v, (int, float, np.floating)) and k != "step"}


def _json_safe(x):
  if isinstance(x, float) and math.isnan(x):
    return None
  if isinstance(x, (list, tuple)):
    return [_json_safe(v) for v in x]
  if isinstance(x, dict):
    return {k: _json_safe(v) for k, v in x.items()}
  return x


def save_result(workdir: str, split: str, step: int, result: dict, protocol: dict) -> str:
  """Writes eval_<split>_<step>.json (metrics + per-class AP + confusion + protocol); a result of
  another protocol (clips, views) than one already there goes to eval_<split>_<step>_<C>x<V>.json
  instead, so the training's own result is never overwritten by a different evaluation."""
  path = os.path.join(workdir, f"eval_{split}_{step}.json")
  if os.path.exists(path):
    with open(path) as f:
      old = json.load(f).get("protocol", {})
    keys = ("clips_per_video", "views", "num_videos", "data_fingerprint")
    if any(old.get(k) != protocol.get(k) for k in keys):
      path = os.path.join(
          workdir, f"eval_{split}_{step}_{protocol['clips_per_video']}x{protocol['views']}.json")
  if jax.process_index() == 0:
    fileio.write_json(path, _json_safe({"step": step, "split": split, "protocol": protocol,
                                        "metrics": result}), indent=None)
  return path


def check_same_data(workdir: str, data) -> None:
  """Refuses to evaluate a workdir on another data set than the one it trained on."""
  path = os.path.join(workdir, "data_fingerprint.txt")
  if not os.path.exists(path):
    return  # a workdir written before fingerprints were recorded
  with open(path) as f:
    trained = f.read().strip()
  if trained != data.fingerprint:
    raise ValueError(f"{workdir} was trained on data set {trained[:12]}… ({path}) but "
                     f"config.data now resolves to {data.builder_dir} ({data.fingerprint[:12]}…): "
                     "another or re-prepared data set; refusing to evaluate on it")


def load_workdir_config(workdir: str) -> ml_collections.ConfigDict:
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path}: not a stcnn workdir (no config.json)")
  with open(path) as f:
    return ml_collections.ConfigDict(json.load(f))


# ---------------------------------------------------------------------------------------------- CLI
FLAGS = flags.FLAGS


def define_flags():
  checkpoint_reader.define_workdir_flags()
  flags.DEFINE_string("split", "test", "Which split to evaluate.")
  flags.DEFINE_integer("clips_per_video", 0, "Clips a video (0: the config's; paper 20, UCF 50).")
  flags.DEFINE_integer("views", 0, "Views a clip (0: the config's; paper 4).")
  flags.mark_flags_as_required(["workdir"])


def main(argv):
  console.quiet_libraries()
  del argv
  from stcnn import config_check
  from stcnn.data import datasets
  from stcnn.writers import MetricWriter
  workdir = os.path.abspath(FLAGS.workdir)
  config = load_workdir_config(workdir)
  config_check.check(config, partial=True)  # config.json of another version: its keys as they are
  # large freed blocks reused, not re-faulted each step (before jax starts its threads)
  host_memory.keep_freed_memory(one_arena=host_memory.one_arena_pays([config]))
  data = datasets.load(config)
  check_same_data(workdir, data)
  mesh = parallel.make_mesh()
  params, step = checkpoint_reader.load_params(workdir, FLAGS.checkpoint)
  evaluator = Evaluator(config, data, mesh, FLAGS.split,
                        clips_per_video=FLAGS.clips_per_video or None, views=FLAGS.views or None)
  params = jax.device_put(params, parallel.replicated(mesh))
  result = evaluator.run(params, step)
  path = save_result(workdir, FLAGS.split, step, result, evaluator.protocol)
  writer = MetricWriter(workdir, active=jax.process_index() == 0)
  writer.write(step, FLAGS.split, scalars(result))
  writer.close()
  if jax.process_index() == 0:
    print(f"{FLAGS.split} @ step {step} ({result['num_videos']} videos, "
          f"{evaluator.protocol['clips_per_video']} clips × {evaluator.protocol['views']} views):")
    for k, v in scalars(result).items():
      print(f"  {k:22s} {v:.4f}" if isinstance(v, float) else f"  {k:22s} {v}")
    print(f"written: {path}")
  logging.info("done")


if __name__ == "__main__":
  define_flags()
  app.run(main)
