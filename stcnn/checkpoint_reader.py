"""Reading a finished run's checkpoints: its parameters (latest, best, a step), or a new model's
start from them (`config.init_from`, transfer learning).

For `stcnn.evaluate`, `stcnn.predictor` (and so `stcnn.predict`, `stcnn.export`), `stcnn.repro`
and `stcnn.train`'s `init_from`. Nothing here writes: the checkpoints, what they hold and the
resume are `stcnn.checkpointing`'s (see its docstring).
"""
from __future__ import annotations

import os

from absl import flags
import grain
import jax
import numpy as np
import orbax.checkpoint as ocp


def define_workdir_flags() -> None:
  """--workdir and --checkpoint=best|latest|STEP: the flags of every CLI that reads a finished
  run (evaluate, predict, export, visualize)."""
  flags.DEFINE_string("workdir", None, "A training workdir (holds config.json, checkpoints/).")
  flags.DEFINE_string("checkpoint", "best", "best | latest | a step number.")
  flags.register_validator(
      "checkpoint", lambda v: v in ("best", "latest") or v.isdigit(),
      message="--checkpoint must be best, latest or a step number (e.g. --checkpoint=1500)")


NOT_VALIDATED = {"val_error": float("inf")}  # a checkpoint saved between validations: never best


def val_error(metrics) -> float:
  """The metric that picks the best checkpoint (the lowest): the writer's and the reader's."""
  return metrics["val_error"]


def open_manager(path: str) -> ocp.CheckpointManager:
  """Read-only manager of a workdir or its checkpoints/ dir (else FileNotFoundError); close it."""
  path = os.path.abspath(os.path.expanduser(path))
  if os.path.isdir(os.path.join(path, "checkpoints")):
    path = os.path.join(path, "checkpoints")
  if not os.path.isdir(path):
    raise FileNotFoundError(f"{path}: no such workdir or checkpoint directory")
  return ocp.CheckpointManager(
      path, options=ocp.CheckpointManagerOptions(read_only=True, create=False, best_fn=val_error,
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
