"""Orbax checkpoints of a run: train state + Grain iterator state + meta (config, data fingerprint).

One `CheckpointManager` under `<workdir>/checkpoints`, items:
  state  the TrainState pytree (step, params, optimiser state, rng, plateau state)
  data   the Grain iterator state (one JSON file per process), so a resume sees the same batches
  meta   {config, data fingerprint, model signature, input layout, step, saved_at}: a resume with
         another data set or model is refused
Preserved: the last `keep` checkpoints and the best one by validation error. This is the writing
and resuming side; reading a finished run's checkpoints (params, `init_from`) is
`stcnn.checkpoint_reader`'s.

What a checkpoint promises, and what happens when something goes wrong:
  finite   `save` refuses (NonFiniteError) a state whose params or optimiser state hold a NaN or
           inf: one jitted all-finite reduction, one scalar fetched. So every checkpoint holds
           finite numbers; the error names the newest (a rerun resumes it) or says there is none.
           A NaN/inf loss or gradient at step s is computed from the state after s - 1 and step
           s's batch (a function of seed and step), whatever the lr: a checkpoint of s - 1 is a
           dead end. The stop records it in `<workdir>/nonfinite.jsonl` (with the checkpoint's
           `saved_at` and the seed and batch size) and says so; a rerun with the same batches sets
           it aside and resumes the one before (or starts from step 0).
  resume   `restore` takes the newest checkpoint that restores completely (meta, state, Grain
           state), is finite and is no recorded dead end. Each newer one it skips is logged (one
           line: step and why) and moved, untouched, to `<workdir>/skipped_checkpoints/<step>[.n]/`
           (reasons in `skipped_checkpoints/skipped.jsonl`): out of Orbax's directory, so its
           preservation policy never deletes it and the step can be saved again. If none is
           usable and some did not restore, the resume is refused (ResumeRefused) and nothing
           moves, rather than starting over checkpoints this code cannot read; if all were merely
           unusable (non-finite, dead ends), they are moved and the run starts from step 0.
  saves    are asynchronous; `check_saves` (each step boundary, each save, the end) surfaces a
           failed save (disk full, permissions) as one SaveError line naming the step, path and
           cause. The failed save leaves only an Orbax temporary folder; older checkpoints are
           intact (Orbax deletes old steps only after a save commits).
  history  `write_config(start_step)` writes `config.json` (the config of the latest segment; the
           `stcnn.evaluate` CLI reads it) and appends one line per run segment to
           `config_history.jsonl`: {"step": first step, "time", "changed": {key: [old, new]}
           against the resumed checkpoint's config, "skipped": {step: reason}, "config": the
           full config}. A resume with changed keys (batch_size, lr, ...) logs one warning line.
RunStopped (NonFiniteError, SaveError, ResumeRefused) is a stop for a stated cause; no checkpoint
is ever deleted by these mechanisms (only moved aside): `stcnn.main` prints the message as one
line, without a traceback.
"""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import threading
import time

from absl import logging
import grain
import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as cm

from stcnn import checkpoint_reader, fileio, parallel

# Keys that decide the parameters' shapes (a resume must match them exactly).
MODEL_KEYS = ("fusion", "streams", "width", "head", "input_size", "early_frames", "late_gap")
SKIPPED_DIR = "skipped_checkpoints"
HISTORY_FILE = "config_history.jsonl"
NONFINITE_FILE = "nonfinite.jsonl"


class RunStopped(Exception):
  """The run stopped for the stated cause; every checkpoint already written is kept."""


class NonFiniteError(RunStopped, FloatingPointError):
  """A NaN/inf loss, gradient norm or train state: nothing non-finite is saved."""


class SaveError(RunStopped):
  """An (asynchronous) checkpoint save failed: its step, path and cause."""


class ResumeRefused(RunStopped, ValueError):
  """The workdir's checkpoints cannot be resumed by this config (or none restores)."""


def model_signature(config) -> dict:
  return {"num_classes": config.num_classes,
          **{k: config.model.get(k) for k in MODEL_KEYS}}


def _one_line(error: BaseException, limit: int = 300) -> str:
  text = " ".join(str(error).split()) or "(no message)"
  text = text if len(text) <= limit else text[:limit] + "…"
  return f"{type(error).__name__}: {text}"


# ------------------------------------------------------------------------------------ finiteness
@jax.jit
def _finite_flag(tree) -> jax.Array:
  leaves = [jnp.isfinite(x).all() for x in jax.tree.leaves(tree)
            if jnp.issubdtype(jnp.result_type(x), jnp.inexact)]
  return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


def guarded_part(state):
  """What must be finite for a state to be saved: params and optimiser state (the plateau state
  legitimately holds inf, its best value before the first evaluation)."""
  get = state.get if isinstance(state, dict) else lambda k: getattr(state, k, None)
  return {"params": get("params"), "opt_state": get("opt_state")}


def all_finite(state) -> bool:
  """Whether `guarded_part(state)` is all finite: one reduction on device, one scalar fetched."""
  flag = _finite_flag(guarded_part(state))
  return bool(np.asarray(flag.addressable_data(0)))


def _every_process(ok: bool) -> bool:
  """`ok` on every process (a multi-process run decides together)."""
  if jax.process_count() == 1:
    return ok
  from jax.experimental import multihost_utils
  return bool(np.all(multihost_utils.process_allgather(np.asarray(ok))))


# ----------------------------------------------------------------------------- orbax error lines
class _OrbaxOSErrorsInOneLine(logging.logging.Filter):
  """Orbax logs a failed background save with a traceback (twice); when the cause is an OSError
  (disk full, permissions) the SaveError line says it all, so its records keep only their line."""

  def filter(self, record):
    exc = record.exc_info[1] if record.exc_info else None
    if "/orbax/" in record.pathname and isinstance(exc, OSError):
      cause = _one_line(exc)
      record.msg = f"{record.msg} ({cause.replace('%', '%%') if record.args else cause})"
      record.exc_info, record.exc_text = None, None
    return True


_ORBAX_FILTER = _OrbaxOSErrorsInOneLine()


class Checkpointer:

  def __init__(self, workdir: str, config, fingerprint: str, keep: int = 3,
               nonfinite_hint: str = ""):
    self.workdir = workdir
    self.directory = os.path.join(workdir, "checkpoints")
    self.config = config
    self.fingerprint = fingerprint
    self.nonfinite_hint = nonfinite_hint  # what to do, appended to a NonFiniteError
    self.resumed_step = None  # the step `restore` resumed (None: none, start from scratch)
    self.resumed_config = None  # that checkpoint's config (JSON)
    self.skipped: dict[int, str] = {}  # steps `restore` set aside: why
    self._saving = None  # (step, previous latest step) of the save in flight
    self._save_threads = []  # the threads that save started
    if _ORBAX_FILTER not in logging.get_absl_logger().filters:
      logging.get_absl_logger().addFilter(_ORBAX_FILTER)
    policy = cm.AnyPreservationPolicy([
        cm.LatestN(keep),
        cm.BestN(get_metric_fn=checkpoint_reader.val_error, reverse=True,  # keeps the lowest
                 n=1, keep_checkpoints_without_metrics=False)])
    self.mgr = ocp.CheckpointManager(
        self.directory, item_names=("state", "data", "meta"),
        options=ocp.CheckpointManagerOptions(  # best_fn: metrics are written to disk
            preservation_policy=policy, create=True,
            best_fn=checkpoint_reader.val_error, best_mode="min"))

  def latest_step(self):
    return self.mgr.latest_step()

  def reached_preemption(self, step: int) -> bool:
    return self.mgr.reached_preemption(step)

  # ---------------------------------------------------------------------------------- config
  def write_config(self, start_step: int = 0) -> None:
    """config.json (this segment's), data_fingerprint.txt, and this segment's line of
    config_history.jsonl; warns (one line) when a resume changed config keys."""
    if jax.process_index() != 0:
      return
    current = json.loads(self.config.to_json_best_effort())
    changed = {}
    if self.resumed_config is not None:
      old, new = _flatten(self.resumed_config), _flatten(current)
      changed = {k: [old.get(k), new.get(k)] for k in sorted(set(old) | set(new))
                 if old.get(k) != new.get(k)}
    history = os.path.join(self.workdir, HISTORY_FILE)
    if changed:
      logging.warning("resuming step %d with a changed config: %s (the history of each run "
                      "segment's config is in %s)", start_step,
                      "; ".join(f"{k} {_short(a)} → {_short(b)}" for k, (a, b) in changed.items()),
                      history)
    fileio.write_text(os.path.join(self.workdir, "config.json"),
                      self.config.to_json_best_effort(indent=2) + "\n")
    fileio.write_text(os.path.join(self.workdir, "data_fingerprint.txt"), self.fingerprint + "\n")
    _append_line(history, {"step": int(start_step), "time": time.time(), "changed": changed,
                           "skipped": {str(k): v for k, v in self.skipped.items()},
                           "config": current})

  # ----------------------------------------------------------------------------------- saving
  def save(self, step: int, state, iterator, metrics: dict | None = None) -> None:
    """Starts an asynchronous save of a finite `state` (else NonFiniteError, nothing saved);
    first surfaces a failure of the previous save (SaveError). `metrics` carries the validation
    error that ranks checkpoints for `best`; without one (a save between validations) the
    checkpoint ranks last (checkpoint_reader.NOT_VALIDATED)."""
    metrics = checkpoint_reader.NOT_VALIDATED if metrics is None else metrics
    self.check_saves(block=True)
    self.ensure_finite(step, state)
    meta = {"step": int(step), "fingerprint": self.fingerprint,
            "model": model_signature(self.config), "input_layout": self.input_layout(),
            "config": json.loads(self.config.to_json_best_effort()),
            "saved_at": time.time_ns()}  # tells this checkpoint from a later one of its step
    self._saving = (int(step), self.mgr.latest_step())
    before = set(threading.enumerate())
    try:
      self.mgr.save(step, args=ocp.args.Composite(
          state=ocp.args.StandardSave(state), data=grain.checkpoint.CheckpointSave(iterator),
          meta=ocp.args.JsonSave(meta)), metrics=metrics, force=True)
    except OSError as e:  # the blocking part of the save (e.g. its temporary folder) failed
      raise SaveError(self._failure(e)) from None
    finally:
      self._save_threads = [t for t in threading.enumerate() if t not in before]

  def ensure_finite(self, step: int, state) -> None:
    """NonFiniteError naming `step` and the checkpoint a rerun would resume, unless the params
    and optimiser state after `step` are all finite."""
    if not all_finite(state):
      what = "the parameters or optimiser state are not finite (NaN/inf)"
      self._record_nonfinite(step, what, dead_end=None)
      raise NonFiniteError(f"{what} at step {step}; stopping without saving them. "
                           f"{self.kept_note()} {self.nonfinite_hint}".rstrip())

  def nonfinite_step(self, step: int, what: str) -> str:
    """After a NaN/inf loss or gradient (`what`) at `step`: records it in nonfinite.jsonl and
    returns what a rerun resumes from, in one or two sentences.

    That loss and gradient are computed from the state after step - 1 and step's batch, whatever
    the lr: a checkpoint of step - 1 is a dead end for a rerun with the same batches (seed, batch
    size), and `restore` sets it aside then. It stays in place until that rerun decides.
    """
    self._wait_quietly()
    steps = sorted(self.mgr.all_steps())
    if step - 1 not in steps:
      self._record_nonfinite(step, what, dead_end=None)
      return self.kept_note()
    try:
      saved_at = self._meta(step - 1).get("saved_at")
    except Exception:  # noqa: BLE001 - unreadable: `restore` will skip it anyway
      saved_at = None
    self._record_nonfinite(step, what, dead_end={"step": step - 1, "saved_at": saved_at})
    older = [s for s in steps if s < step - 1]
    then = f"resumes from step {older[-1]}" if older else "starts from step 0"
    return (f"The last checkpoint, step {step - 1} in {self.directory}, is finite but a dead end: "
            f"step {step} is computed from it and the same batch, whatever the lr. A rerun with "
            f"the same seed and batch size sets it aside and {then}.")

  def kept_note(self) -> str:
    """Which checkpoint a rerun resumes from (every saved one is finite), in one sentence."""
    self._wait_quietly()
    last = self.mgr.latest_step()
    if last is None:
      return f"There is no checkpoint in {self.directory}: a rerun starts from step 0."
    return (f"The last checkpoint, step {last} in {self.directory}, is finite and kept: a rerun "
            "resumes from it.")

  def _record_nonfinite(self, step: int, what: str, dead_end: dict | None) -> None:
    if jax.process_index() == 0:
      _append_line(os.path.join(self.workdir, NONFINITE_FILE),
                   {"step": int(step), "time": time.time(), "what": what, "dead_end": dead_end,
                    "batches": self._batches()})

  def _batches(self) -> dict:
    """What, besides the data set (the fingerprint is checked), decides step s's batch."""
    return {"seed": self.config.seed, "batch_size": self.config.batch_size}

  def _meta(self, step: int) -> dict:
    return self.mgr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]

  def _wait_quietly(self) -> None:
    try:
      self.check_saves(block=True, agree=False)
    except SaveError as e:
      logging.error("%s", e)

  def check_saves(self, block: bool = False, agree: bool = True) -> None:
    """SaveError if the last asynchronous save failed. block=False returns at once while a save
    is still running; agree: several processes raise together (one small all-gather: every
    process must call it at the same point)."""
    failure = None
    if self._saving is not None and (block or not self.mgr.is_saving_in_progress()):
      try:
        self.mgr.wait_until_finished()
        self._saving = None
      except Exception as e:  # noqa: BLE001 - whatever failed, the save did not commit
        failure = self._failure(e)
    if agree and not _every_process(failure is None):
      raise SaveError(failure or f"a checkpoint save failed on another process (step "
                      f"{self._saving and self._saving[0]}, {self.directory}); stopping")
    if failure:
      raise SaveError(failure)

  def _failure(self, error: BaseException) -> str:
    step, previous = self._saving or (None, None)
    self._saving = None
    for t in self._save_threads:  # Orbax stops waiting at the first failed write: let the
      t.join(timeout=60)  # others end now, not at interpreter exit (tracebacks from closed loops)
    kept = ("no earlier checkpoint exists" if previous is None else
            f"the previous checkpoint (step {previous}) is intact and a rerun resumes from it")
    return (f"checkpoint of step {step} could not be saved to "
            f"{os.path.join(self.directory, str(step))}: {_one_line(error)}; stopping ({kept}).")

  def input_layout(self) -> dict:
    """What the saved Grain iterator state depends on (besides the data and the seed)."""
    return {"worker_count": self.config.data.worker_count, "process_count": jax.process_count()}

  # -------------------------------------------------------------------------------- restoring
  def restore(self, state, iterator, rebuild):
    """(state, iterator) of the newest usable checkpoint, after checking that its data set and
    model match (ResumeRefused otherwise); `resumed_step` says which (None: none).

    Usable: it restores completely (meta, state, Grain state), it is finite, and it is not a dead
    end recorded in nonfinite.jsonl for this config's batches. Newer ones are logged and moved to
    skipped_checkpoints/. If none is usable: when some did not restore (damage, or a reader that
    does not match them), ResumeRefused and nothing moves; when all were found unusable (not
    finite, dead ends), they are moved and the run starts from `state` at step 0.
    The Grain iterator state is restored when the input layout (worker and process counts) is
    the one it was saved with; otherwise `rebuild(start_step)` makes a new iterator at the
    checkpoint's step, which yields the same batches (they are a function of (seed, step)).
    """
    self.skipped, self.resumed_step, self.resumed_config = {}, None, None
    dead_ends = self._dead_ends()
    unreadable = False
    for step in sorted(self.mgr.all_steps(), reverse=True):
      reason, restored_iter, broken = None, None, False
      try:
        restored, restored_iter, meta = self._restore_step(step, state, iterator, rebuild)
        if (step, meta.get("saved_at")) in dead_ends:
          reason = f"a dead end: {dead_ends[step, meta.get('saved_at')]}"
        elif not all_finite(restored):
          reason = "its parameters or optimiser state are not finite"
      except ResumeRefused:
        raise
      except Exception as e:  # noqa: BLE001 - any failure to read it: damaged
        reason, broken = f"it does not restore ({_one_line(e)})", True
      if _every_process(reason is None):
        self._set_aside(self.skipped)
        self.resumed_step, self.resumed_config = step, meta.get("config")
        return restored, restored_iter
      unreadable |= broken or reason is None  # None here: it failed on another process
      reason = reason or "it does not restore on another process"
      logging.warning("checkpoint step %d in %s skipped: %s", step, self.directory, reason)
      self.skipped[step] = reason
      for it in {id(i): i for i in (iterator, restored_iter) if i is not None}.values():
        getattr(it, "close", lambda: None)()  # it may hold part of the skipped state
      iterator = rebuild(0)
    if unreadable:
      raise ResumeRefused(
          f"no checkpoint in {self.directory} restores ("
          + "; ".join(f"step {s}: {r}" for s, r in self.skipped.items())
          + "): refusing to start over them. Move the directory away to start from scratch.")
    logging.warning("no usable checkpoint in %s: starting from step 0", self.directory)
    self._set_aside(self.skipped)
    return state, iterator

  def _dead_ends(self) -> dict:
    """{(step, saved_at): why} of the checkpoints nonfinite.jsonl names as dead ends for this
    config's batches."""
    path = os.path.join(self.workdir, NONFINITE_FILE)
    out = {}
    for row in _read_lines(path):
      end = row.get("dead_end")
      if end and row.get("batches") == self._batches():
        out[end["step"], end.get("saved_at")] = (
            f"at the next step ({row['step']}), computed from its state and batch: {row['what']}")
    return out

  def _restore_step(self, step, state, iterator, rebuild):
    meta = self._meta(step)
    where = os.path.join(self.directory, str(step))
    if meta["fingerprint"] != self.fingerprint:
      raise ResumeRefused(
          f"{where} was trained on a data set with fingerprint {meta['fingerprint']}, this run's "
          f"data has {self.fingerprint}: refusing to resume. Use a new --workdir, or the same "
          "config.data as before.")
    if meta["model"] != model_signature(self.config):
      raise ResumeRefused(f"{where} holds a model {meta['model']}; this config asks for "
                          f"{model_signature(self.config)}: refusing to resume. Use a new "
                          "--workdir.")
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
    same_layout = meta.get("input_layout") == self.input_layout()
    items = {"state": ocp.args.StandardRestore(abstract)}
    if same_layout:
      items["data"] = grain.checkpoint.CheckpointRestore(iterator)
    restored = self.mgr.restore(step, args=ocp.args.Composite(**items))
    if same_layout:
      return restored["state"], restored["data"], meta
    logging.warning("input layout %s differs from the checkpoint's %s: restarting the input "
                    "pipeline at step %d", self.input_layout(), meta.get("input_layout"), step)
    getattr(iterator, "close", lambda: None)()
    return restored["state"], rebuild(int(restored["state"].step)), meta

  def _set_aside(self, skipped: dict) -> None:
    """Moves the skipped checkpoints out of Orbax's directory (never deletes them)."""
    if not skipped:
      return
    if jax.process_index() == 0:
      root = os.path.join(self.workdir, SKIPPED_DIR)
      os.makedirs(root, exist_ok=True)
      for step, reason in skipped.items():
        target, n = os.path.join(root, str(step)), 0
        while os.path.exists(target):
          n += 1
          target = os.path.join(root, f"{step}.{n}")
        shutil.move(os.path.join(self.directory, str(step)), target)
        logging.warning("moved the skipped checkpoint step %d to %s", step, target)
        _append_line(os.path.join(root, "skipped.jsonl"),
                     {"step": step, "time": time.time(), "reason": reason, "moved_to": target})
    parallel.sync("skipped checkpoints moved")
    self.mgr.reload()

  def close(self, report: bool = True) -> None:
    """Waits for the pending save; its failure raises SaveError (report=False: logs it)."""
    try:
      self.check_saves(block=True, agree=False)  # no collective: another process may be gone
    except SaveError as e:
      if report:
        raise
      logging.error("%s", e)
    finally:
      self.mgr.close()


def _read_lines(path: str) -> list[dict]:
  """The JSON objects of a .jsonl file (none if it is missing; a half-written line is ignored)."""
  if not os.path.exists(path):
    return []
  rows = []
  for line in pathlib.Path(path).read_text().splitlines():
    try:
      rows.append(json.loads(line))
    except json.JSONDecodeError:
      continue
  return [r for r in rows if isinstance(r, dict)]


def _append_line(path: str, row: dict) -> None:
  """Appends one JSON line to `path`, rewriting it atomically (a crash leaves the old file)."""
  before = pathlib.Path(path).read_text() if os.path.exists(path) else ""
  if before and not before.endswith("\n"):  # a line half-written by an old crash: keep it apart
    before += "\n"
  fileio.write_text(path, before + json.dumps(row) + "\n")


def _flatten(tree: dict, prefix: str = "") -> dict:
  """{'a.b': leaf} of a nested dict (config JSON)."""
  out = {}
  for k, v in tree.items():
    if isinstance(v, dict) and v:
      out.update(_flatten(v, f"{prefix}{k}."))
    else:
      out[f"{prefix}{k}"] = v
  return out


def _short(value, limit: int = 40) -> str:
  text = json.dumps(value)
  return text if len(text) <= limit else text[:limit] + "…"
