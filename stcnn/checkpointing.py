"""Orbax checkpoints of a run: train state + Grain iterator state + meta (config, data fingerprint).

One `CheckpointManager` under `<workdir>/checkpoints`, items:
  state  the TrainState pytree (step, params, optimiser state, rng, plateau state)
  data   the Grain iterator state (one JSON file per process), so a resume sees the same batches
  meta   {config, data fingerprint, step}: a resume with another data set or model is refused
Preserved: the last `keep` checkpoints and the best one by validation error.
"""
from __future__ import annotations

import json
import os

import grain
import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging
from orbax.checkpoint import checkpoint_managers as cm

from stcnn import fileio

# Keys that decide the parameters' shapes (a resume must match them exactly).
MODEL_KEYS = ("fusion", "streams", "width", "head", "input_size", "early_frames", "late_gap")


def _val_error(metrics) -> float:
  return metrics["val_error"]


def model_signature(config) -> dict:
  return {"num_classes": config.num_classes,
          **{k: config.model.get(k) for k in MODEL_KEYS}}


class Checkpointer:

  def __init__(self, workdir: str, config, fingerprint: str, keep: int = 3):
    self.workdir = workdir
    self.directory = os.path.join(workdir, "checkpoints")
    self.config = config
    self.fingerprint = fingerprint
    policy = cm.AnyPreservationPolicy([
        cm.LatestN(keep),
        cm.BestN(get_metric_fn=_val_error, reverse=True, n=1,  # keeps the lowest error
                 keep_checkpoints_without_metrics=False)])
    self.mgr = ocp.CheckpointManager(
        self.directory, item_names=("state", "data", "meta"),
        options=ocp.CheckpointManagerOptions(
            preservation_policy=policy, create=True,
            best_fn=_val_error, best_mode="min"))  # best_fn: metrics are written to disk

  def latest_step(self):
    return self.mgr.latest_step()

  def reached_preemption(self, step: int) -> bool:
    return self.mgr.reached_preemption(step)

  def write_config(self) -> None:
    if jax.process_index() == 0:
      fileio.write_text(os.path.join(self.workdir, "config.json"),
                        self.config.to_json_best_effort(indent=2) + "\n")
      fileio.write_text(os.path.join(self.workdir, "data_fingerprint.txt"), self.fingerprint + "\n")

  def save(self, step: int, state, iterator, metrics: dict | None = None) -> None:
    meta = {"step": int(step), "fingerprint": self.fingerprint,
            "model": model_signature(self.config), "input_layout": self.input_layout(),
            "config": json.loads(
                self.config.to_json_best_effort())}
    self.mgr.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), data=grain.checkpoint.CheckpointSave(iterator),
        meta=ocp.args.JsonSave(meta)), metrics=metrics, force=True)

  def input_layout(self) -> dict:
    """What the saved Grain iterator state depends on (besides the data and the seed)."""
    return {"worker_count": self.config.data.worker_count, "process_count": jax.process_count()}

  def restore(self, state, iterator, rebuild, step: int | None = None):
    """(state, iterator) at `step` (default latest), after checking data set and model match.

    The Grain iterator state is restored when the input layout (worker and process counts) is
    the one it was saved with; otherwise `rebuild(start_step)` makes a new iterator at the
    checkpoint's step, which yields the same batches (they are a function of (seed, step)).
    """
    step = self.latest_step() if step is None else step
    meta = self.mgr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
    where = os.path.join(self.directory, str(step))
    if meta["fingerprint"] != self.fingerprint:
      raise ValueError(
          f"{where} was trained on a data set with fingerprint {meta['fingerprint']}, this run's "
          f"data has {self.fingerprint}: refusing to resume. Use a new --workdir, or the same "
          "config.data as before.")
    if meta["model"] != model_signature(self.config):
      raise ValueError(f"{where} holds a model {meta['model']}; this config asks for "
                       f"{model_signature(self.config)}: refusing to resume. Use a new --workdir.")
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
    same_layout = meta.get("input_layout") == self.input_layout()
    items = {"state": ocp.args.StandardRestore(abstract)}
    if same_layout:
      items["data"] = grain.checkpoint.CheckpointRestore(iterator)
    restored = self.mgr.restore(step, args=ocp.args.Composite(**items))
    if same_layout:
      return restored["state"], restored["data"]
    logging.warning("input layout %s differs from the checkpoint's %s: restarting the input "
                    "pipeline at step %d", self.input_layout(), meta.get("input_layout"), step)
    getattr(iterator, "close", lambda: None)()
    return restored["state"], rebuild(int(restored["state"].step))

  def wait(self) -> None:
    self.mgr.wait_until_finished()

  def close(self) -> None:
    self.mgr.wait_until_finished()
    self.mgr.close()


def open_manager(path: str) -> ocp.CheckpointManager:
  """Read-only manager of a workdir or its checkpoints/ dir (else FileNotFoundError); close it."""
  path = os.path.abspath(os.path.expanduser(path))
  if os.path.isdir(os.path.join(path, "checkpoints")):
    path = os.path.join(path, "checkpoints")
  if not os.path.isdir(path):
    raise FileNotFoundError(f"{path}: no such workdir or checkpoint directory")
  return ocp.CheckpointManager(
      path, options=ocp.CheckpointManagerOptions(read_only=True, best_fn=_val_error,
                                                 best_mode="min"),
      item_handlers={"state": ocp.StandardCheckpointHandler(),
                     "meta": ocp.JsonCheckpointHandler(),
                     "data": grain.checkpoint.CheckpointHandler()})


def load_params(path: str, which: str = "latest"):
  """Params (numpy pytree) and step of a workdir's checkpoint: which = latest | best | <step>."""
  mgr = open_manager(path)
  step = {"latest": mgr.latest_step, "best": mgr.best_step}.get(which, lambda: int(which))()
  if step is None and which == "best":
    step = mgr.latest_step()
  if step is None:
    raise FileNotFoundError(f"{mgr.directory}: no checkpoint")
  # Restore onto this process's first device, whatever topology the run that saved it had.
  meta = mgr.item_metadata(step)["state"]
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  abstract = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device), meta)
  state = mgr.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(abstract)))["state"]
  mgr.close()
  return state["params"], step


def load_pretrained(path: str, target_params, reinit=("head",)):
  """`target_params` with every top-level layer except `reinit` taken from `path`'s checkpoint
  (transfer learning, Table 3: the new classifier starts from scratch)."""
  source, step = load_params(path, "best")
  out = dict(target_params)
  for name, tree in target_params.items():
    if name in reinit:
      continue
    if name not in source:
      raise ValueError(f"config.init_from={path}: checkpoint step {step} has no layer {name!r} "
                       f"(it has {sorted(source)})")
    want = jax.tree.map(np.shape, tree)
    got = jax.tree.map(np.shape, source[name])
    if want != got:
      raise ValueError(f"config.init_from={path}: layer {name!r} has shapes {got} in the "
                       f"checkpoint but {want} in this model (same fusion/streams/width needed)")
    out[name] = jax.tree.map(lambda t, s: jax.device_put(np.asarray(s, t.dtype), t.sharding),
                             tree, source[name])
  return out
