"""Running cells: train (resuming), one test pass that keeps per-video outputs, a result file.

A training cell runs `stcnn.train.train_and_evaluate` in its own workdir (a rerun resumes from the
workdir's checkpoint); its test metrics are the trainer's own final test pass. The members of the
CNN average (single, early, late, slow: Table 1) are evaluated once more on the test split, with
the trainer's protocol and aggregation (`stcnn.evaluate.Evaluator`'s plan and batches,
`stcnn.metrics.VideoAccumulator`; checked equal to the trainer's), to keep the per-video and
per-clip probabilities (the evaluator returns only metrics). Results go to `<key>.json` (schema in
stcnn.repro's docstring) and `<key>.npz` (arrays). A cell whose result file exists with the same
identity (config, overrides, and a fine-tuned cell's source cell) is finished and skipped; a
longer budget of a cell continues its workdir (`extends`).
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import time

import numpy as np

from stcnn import fileio
from stcnn.repro import analysis
from stcnn.repro import cells as cells_lib

SCHEMA = 1
MARKER = "repro_cell.json"  # in a workdir: which cell (config + overrides) it trains
MAX_CONFUSION = 100  # keep the whole confusion matrix up to this many classes
MAX_CLIP_VALUES = 20_000_000  # keep per-clip probabilities up to this many numbers


def result_path(results_dir: str, key: str, ext: str = "json") -> str:
  return os.path.join(results_dir, f"{key}.{ext}")


def load_result(results_dir: str, key: str) -> dict | None:
  path = result_path(results_dir, key)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def _jsonable(x):
  return json.loads(json.dumps(x))


def finished(cell: cells_lib.Cell, results_dir: str) -> bool:
  """The cell's result exists (with its arrays) for the same identity: config, overrides and
  (fine-tuned cells) the source cell's."""
  result = load_result(results_dir, cell.key)
  if result is None or result.get("schema") != SCHEMA:
    return False
  identity = _jsonable(cell.identity())
  if {k: result.get(k) for k in identity} != identity:
    return False
  return cell.table == "speed" or os.path.exists(result_path(results_dir, cell.key, "npz"))


def machine() -> dict:
  import jax
  devices = jax.devices()
  return {"platform": platform.platform(), "python": platform.python_version(),
          "cpu_count": os.cpu_count(), "jax": jax.__version__, "backend": jax.default_backend(),
          "devices": f"{len(devices)} × {devices[0].device_kind}", "host": platform.node()}


def _now() -> str:
  return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


# ------------------------------------------------------------------------------------- the plan
class Interrupted(RuntimeError):
  """The trainer stopped on SIGTERM / SIGINT after checkpointing: the study stops too."""


def run_plan(plan: list[cells_lib.Cell], paths: cells_lib.Paths, preset: str, log=print) -> dict:
  """Runs every unfinished cell of `plan` in order; {key: "skipped" | "ran" | "failed: ..."}. A
  failing cell is logged and the next one runs (what depends on it then fails too); an
  interrupted one (SIGTERM, Ctrl-C) stops the study."""
  os.makedirs(paths.results, exist_ok=True)
  done = {}
  for i, cell in enumerate(plan):
    cmds = cells_lib.commands(cell, paths, preset)
    if finished(cell, paths.results):
      log(f"[{i + 1}/{len(plan)}] {cell.key}: finished, skipped "
          f"({result_path(paths.results, cell.key)})")
      done[cell.key] = "skipped"
      continue
    log(f"[{i + 1}/{len(plan)}] {cell.key}: {cmds.get('train', cmds['cell'])}")
    try:
      result = run_speed(cell) if cell.table == "speed" else run_training_cell(cell, paths)
    except Interrupted:
      raise
    except Exception as e:  # the other cells still run; the failures are raised at the end
      log(f"  {cell.key}: FAILED: {type(e).__name__}: {e}")
      done[cell.key] = f"failed: {type(e).__name__}: {e}"
      continue
    result.update(schema=SCHEMA, key=cell.key, table=cell.table, network=cell.network,
                  seed=cell.seed, split=cell.split, preset=preset, depends_on=cell.depends_on,
                  commands=cmds, machine=machine(), date=_now(), **cell.identity())
    fileio.write_json(result_path(paths.results, cell.key), json_safe(result), indent=1)
    log(f"  {cell.key}: done in {result['wall_time_s']:.0f} s → "
        f"{result_path(paths.results, cell.key)}")
    done[cell.key] = "ran"
  return done


def json_safe(x):
  """NaN/inf → None (strict JSON), numpy scalars → Python."""
  if isinstance(x, dict):
    return {k: json_safe(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [json_safe(v) for v in x]
  if isinstance(x, (np.floating, float)):
    return float(x) if np.isfinite(x) else None
  if isinstance(x, np.integer):
    return int(x)
  return x


# ------------------------------------------------------------------------------- training cells
def _read_marker(workdir: str) -> dict | None:
  marker = os.path.join(workdir, MARKER)
  if not os.path.exists(marker):
    return None
  with open(marker) as f:
    return json.load(f)


def extends(old: dict, new: dict, config) -> bool:
  """Whether a workdir that trained identity `old` continues into `new` exactly: the same cell
  with a larger `total_steps` and nothing else changed, an lr that does not depend on
  `total_steps` (not the cosine schedule), and the old end on a validation step (so the plateau
  saw the same validations). The trainer's resume is bit-identical, a shorter run continued
  included (tests/test_train.py, test_resume_with_another_worker_count_sees_the_same_batches), so
  the continued run equals a fresh run of the longer budget at the cost of the extra steps only."""
  o, n = dict(old), _jsonable(new)
  old_steps, new_steps = o["overrides"].get("total_steps"), n["overrides"].get("total_steps")
  o["overrides"] = {**o["overrides"], "total_steps": new_steps}
  return (o == n and isinstance(old_steps, int) and old_steps < new_steps and
          config.optimizer.schedule != "cosine" and old_steps % config.eval_every == 0)


def _claim_workdir(workdir: str, cell: cells_lib.Cell, config) -> int:
  """Marks `workdir` as this cell's, continuing a shorter budget of the same cell (`extends`) and
  refusing one of another config or overrides; returns the step it resumes from (0: fresh)."""
  old = _read_marker(workdir)
  if old is None:
    os.makedirs(workdir, exist_ok=True)
  elif extends(old, cell.identity(), config):
    print(f"{cell.key}: continuing {workdir}'s run of {old['overrides']['total_steps']} steps to "
          f"{config.total_steps}", flush=True)
  elif old != _jsonable(cell.identity()):
    raise ValueError(f"{workdir} holds a run of {old} but cell {cell.key} is now "
                     f"{cell.identity()} (the study recipe changed): delete the workdir or pass "
                     "another --workdir")
  fileio.write_json(os.path.join(workdir, MARKER), cell.identity(), indent=1)
  from stcnn import checkpoint_reader
  try:
    mgr = checkpoint_reader.open_manager(workdir)
  except FileNotFoundError:
    return 0
  step = mgr.latest_step()
  mgr.close()
  return int(step or 0)


def run_training_cell(cell: cells_lib.Cell, paths: cells_lib.Paths) -> dict:
  from stcnn import checkpoint_reader, metrics, train
  t0 = time.time()
  workdir = cells_lib.workdir_of(paths, cell.key)
  if cell.depends_on:
    source = cells_lib.workdir_of(paths, cell.depends_on)
    if not os.path.isdir(os.path.join(source, "checkpoints")):
      raise FileNotFoundError(
          f"{cell.key} fine-tunes from {cell.depends_on}'s workdir {source}, which has no "
          f"checkpoint (its result may come from another machine): rerun that cell here with "
          f"--cells={cell.depends_on} after deleting its result, or copy its workdir")
    held = _read_marker(source)
    if held != _jsonable(cell.source):
      raise ValueError(f"{cell.key} fine-tunes from {cell.depends_on} as {cell.source}, but "
                       f"{source} holds {held}: run that cell first")
  config = cells_lib.cell_config(cell, paths)
  resumed_from = _claim_workdir(workdir, cell, config)
  test = train.train_and_evaluate(config, workdir)  # resumes; ends with the test pass
  params, step = checkpoint_reader.load_params(workdir, "latest")
  if step < config.total_steps:
    raise Interrupted(f"{cell.key}: training stopped at step {step} of {config.total_steps} "
                      "(SIGTERM / Ctrl-C, checkpointed); rerun the study to continue")
  if not test:
    raise ValueError(f"{cell.key}: no test result: the data set has no split "
                     f"{config.data.test_split!r} (config.data.test_split)")
  protocol = _protocol(workdir, config, step)
  info = data_info(config)
  arrays = first_layer_filters(params)
  if cell.table == "1" and cell.network in cells_lib.AVERAGE:  # the CNN average needs outputs
    mine, outputs = predictions(config, params)
    if abs(mine["video_hit@1"] - test["video_hit@1"]) > 1e-6:
      raise RuntimeError(f"{cell.key}: the study's test pass gives video hit@1 "
                         f"{mine['video_hit@1']}, the trainer's {test['video_hit@1']}")
    arrays.update(outputs)
    if info["camera"]:
      arrays["camera"] = np.array([info["camera"].get(_stem(v), "") for v in outputs["video_ids"]])
  np.savez_compressed(result_path(paths.results, cell.key, "npz"), **arrays)
  test = dict(test)
  if info["siblings"]:
    test.update(analysis.look_motion_accuracy(test["confusion"], info["siblings"]))
  if "group_mean_ap" not in test and info["groups"]:
    test["group_mean_ap"] = metrics.group_mean_ap(test["per_class_ap"], info["groups"])
  test["top_confusions"] = analysis.top_confusions(test["confusion"], 20, info["siblings"])
  if config.num_classes > MAX_CONFUSION:
    del test["confusion"]
  curve, train_info = read_curve(workdir, config.data.eval_split)
  return {"test": test, "protocol": protocol, "curve": curve,
          "train": {"steps": step, "resumed_from_step": resumed_from, **train_info},
          "class_names": info["class_names"], "siblings": info["siblings"],
          "groups": info["groups"], "workdir": workdir, "wall_time_s": time.time() - t0}


def _stem(video_id: str) -> str:
  return os.path.splitext(os.path.basename(video_id))[0]


def _protocol(workdir: str, config, step: int) -> dict:
  """The protocol the trainer stored with its test result (eval_<split>_<step>[_CxV].json)."""
  split = config.data.test_split
  for name in (f"eval_{split}_{step}.json",
               f"eval_{split}_{step}_{config.data.clips_per_video}x{config.data.views}.json"):
    path = os.path.join(workdir, name)
    if os.path.exists(path):
      with open(path) as f:
        protocol = json.load(f).get("protocol", {})
      if (protocol.get("clips_per_video"), protocol.get("views")) == (
          config.data.clips_per_video, config.data.views):
        return protocol
  return {}


def data_info(config) -> dict:
  """What the study knows about the cell's data set: class names, the class tree's groups and,
  for the synthetic sets, the motion siblings and each video's camera (static / pan / zoom). The
  UCF-101 layout stores no class tree; the synthetic `transfer` preset's own is used then."""
  from stcnn.data import datasets
  data = datasets.load(datasets.with_resolved_paths(config))
  hierarchy, siblings, camera = data.hierarchy, None, {}
  if config.data.name == "synthetic":
    from stcnn.data import synthetic
    siblings = synthetic.motion_siblings(config.data.preset)
    hierarchy = hierarchy or synthetic.hierarchy(config.data.preset)
    camera = {s.video_id: s.camera
              for s in synthetic.plan(config.data.preset, config.data.synthetic_seed)}
  return {"class_names": list(data.class_names), "siblings": siblings, "camera": camera,
          "groups": analysis.groups_of(hierarchy, config.num_classes)}


def predictions(config, params):
  """(metrics, arrays): the test split evaluated as `stcnn.evaluate.Evaluator.run` does (its plan,
  batches and aggregation), keeping the per-video and per-clip probabilities (view-averaged)."""
  import jax

  from stcnn import evaluate, metrics, models, parallel
  from stcnn.data import datasets
  config = datasets.with_resolved_paths(config)
  data = datasets.load(config)
  mesh = parallel.make_mesh()
  ev = evaluate.Evaluator(config, data, mesh, split=config.data.test_split)
  plan, views, num_classes = ev.plan, ev.plan.views, config.num_classes
  model = models.build(config)
  predict = evaluate.jit_predict(model, mesh)
  params = jax.device_put(params, parallel.replicated(mesh))
  acc = metrics.VideoAccumulator(plan.video_labels > 0, views, plan.first_labels)
  keep_clips = len(plan.clips) * num_classes <= MAX_CLIP_VALUES
  clip_probs = np.zeros((len(plan.clips) if keep_clips else 0, num_classes), np.float32)
  for k, batch in enumerate(ev.batches):  # as Evaluator.run (padding at the end is dropped)
    out = np.asarray(predict(params, parallel.to_global({"video": batch["video"]}, mesh)["video"]))
    first = k * ev.batch_size // views
    n = min(len(out) // views, len(plan.clips) - first)
    acc.add(out[:n * views], np.repeat(plan.clips[first:first + n, 0], views))
    if keep_clips:
      clip_probs[first:first + n] = out[:n * views].reshape(n, views, -1).mean(1)
  arrays = {"video_probs": acc.video_predictions().astype(np.float32),
            "labels": plan.video_labels > 0, "first_labels": plan.first_labels,
            "video_ids": np.array(plan.video_ids), "clip_probs": clip_probs.astype(np.float16),
            "clip_video": plan.clips[:, 0] if keep_clips else np.zeros(0, np.int64)}
  return acc.result(), arrays


def first_layer_filters(params) -> dict:
  """conv1 kernels (h, w, 3·frames, filters) of each stream (`stcnn.models.conv1_kernels`) as
  {conv1_<stream>: kernel}, for the report's filter plot."""
  from stcnn import models
  return {f"conv1_{s}": k for s, k in models.conv1_kernels(params).items()}


def read_curve(workdir: str, eval_split: str) -> tuple[list[dict], dict]:
  """[{step, val_video_hit@1, train_loss}] at each evaluation (train loss: the last logged at or
  before that step) from the workdir's metrics.jsonl; and the mean training clips/s."""
  from stcnn import writers
  rows = (writers.read_metrics(workdir)
          if os.path.exists(os.path.join(workdir, "metrics.jsonl")) else [])
  train = sorted((r["step"], r) for r in rows if r.get("split") == "train")
  curve = []
  for r in sorted((r for r in rows if r.get("split") == eval_split and "video_hit@1" in r),
                  key=lambda r: r["step"]):
    before = [t for s, t in train if s <= r["step"]]
    curve.append({"step": r["step"], "val_video_hit@1": r["video_hit@1"],
                  "train_loss": before[-1].get("loss") if before else None})
  rates = [t["clips_per_sec"] for _, t in train if "clips_per_sec" in t]
  return curve, {"clips_per_sec": float(np.mean(rates)) if rates else None}


# ---------------------------------------------------------------------------------- speed cell
SPEED_PAIRS = (("single", "multires"), ("slow", "multires_slow"))


def run_speed(cell: cells_lib.Cell) -> dict:
  """Training clips/s of full frame vs multires, single-frame and slow fusion, in one process
  (`stcnn.bench.time_model`: the trainer's step on a fixed batch, median step time)."""
  from stcnn import bench
  t0 = time.time()
  s = cell.overrides
  cells_lib._import_configs()
  rows = {}
  for pair in SPEED_PAIRS:
    for name in pair:
      config = bench.model_config(name, s["size"], batch=s["batch"])
      rows[name] = bench.time_model(name, config, steps=s["steps"], warmup=s["warmup"],
                                    eval_steps=0)
  return {"rows": rows, "wall_time_s": time.time() - t0}
