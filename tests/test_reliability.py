"""What a run does when things go wrong: divergence, damaged checkpoints, a failed save, Ctrl-C,
and a resume with another config (stcnn/checkpointing.py's promises, the trainer's loop)."""
import errno
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from stcnn import checkpoint_reader, checkpointing, train
from tests.helpers import ROOT, params_hash, tiny_config, wait_past_checkpoint

# The diverging run: lr 0.3 on the tiny config, checkpoints and logs every 2 steps.
DIVERGING = {"optimizer.lr": 0.3, "checkpoint_every": 2, "log_every": 2}


def history(workdir):
  return [json.loads(line) for line in open(os.path.join(workdir, "config_history.jsonl"))]


def finite_params(workdir, which="latest"):
  params, step = checkpoint_reader.load_params(str(workdir), which)
  return all(np.isfinite(x).all() for x in jax.tree.leaves(params)), step


class _Iterator:  # a stand-in for a Grain DataLoader iterator (its state is bytes)
  state = b"{}"

  def get_state(self):
    return self.state

  def set_state(self, state):
    self.state = state

  def start_prefetch(self):
    pass


def warnings_of(caplog):
  return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


# ----------------------------------------------------------------------------------- divergence
def test_a_diverging_run_saves_only_finite_checkpoints_and_a_rerun_recovers(tmp_path, cache_dir):
  work = str(tmp_path / "w")
  with pytest.raises(checkpointing.NonFiniteError, match=r"at step \d+") as e:
    train.train_and_evaluate(tiny_config(cache_dir, **DIVERGING), work)
  mgr = checkpoint_reader.open_manager(work)
  steps, last = sorted(mgr.all_steps()), mgr.latest_step()
  assert steps, "the diverging run saved no checkpoint before the non-finite step"
  for step in steps:  # every checkpoint restores and is finite
    assert finite_params(work, str(step)) == (True, step)
  assert f"The last checkpoint, step {last} in " in str(e.value)
  assert "\n" not in str(e.value)

  # A sane lr (with gradient clipping, which the message suggests) resumes it and finishes: from
  # the named checkpoint, or, where that one is a dead end (finite parameters whose next loss is
  # not), from the latest one before it, the dead ends set aside.
  cfg = tiny_config(cache_dir, **{**DIVERGING, "optimizer.lr": 1e-3, "optimizer.grad_clip": 1.0})
  result = train.train_and_evaluate(cfg, work)
  assert result["num_videos"] == 16
  aside = tmp_path / "w" / "skipped_checkpoints"
  dead = sorted(int(d) for d in os.listdir(aside) if d.isdigit()) if aside.exists() else []
  resumed = history(work)[-1]["step"]
  assert resumed == max(s for s in steps if s not in dead) and all(d > resumed for d in dead)
  assert finite_params(work) == (True, 20)


def test_a_run_that_diverges_before_its_first_checkpoint_says_so(tmp_path, cache_dir):
  work = str(tmp_path / "w")
  with pytest.raises(checkpointing.NonFiniteError, match="There is no checkpoint in .*: a rerun "
                                                         "starts from step 0"):
    train.train_and_evaluate(tiny_config(cache_dir, **{**DIVERGING, "checkpoint_every": 100,
                                                       "eval_every": 100}), work)
  assert checkpoint_reader.open_manager(work).latest_step() is None
  result = train.train_and_evaluate(tiny_config(cache_dir, total_steps=4, eval_every=4), work)
  assert result["num_videos"] == 16 and history(work)[-1]["step"] == 0


def test_save_refuses_a_non_finite_state_and_names_the_last_finite_checkpoint(tmp_path):
  ckpt = checkpointing.Checkpointer(str(tmp_path), tiny_config(tmp_path), "fp",
                                    nonfinite_hint="Lower the lr.")
  with pytest.raises(checkpointing.NonFiniteError, match="There is no checkpoint"):
    ckpt.save(1, {"params": {"w": np.array([np.inf], np.float32)}}, _Iterator())
  # The plateau state's best value starts at inf: only params and optimiser state are checked.
  finite = {"params": {"w": np.zeros(3, np.float32)}, "opt_state": {"m": np.ones(3, np.float32)},
            "plateau": {"best_value": np.array(np.inf, np.float32)}}
  ckpt.save(2, finite, _Iterator())
  nan_opt = {**finite, "opt_state": {"m": np.array([0, np.nan, 0], np.float32)}}
  with pytest.raises(checkpointing.NonFiniteError,
                     match=r"not finite \(NaN/inf\) at step 3; .*The last checkpoint, step 2 in "
                           r".* Lower the lr\.$"):
    ckpt.save(3, nan_opt, _Iterator())
  ckpt.close()
  assert checkpoint_reader.open_manager(str(tmp_path)).all_steps() == [2]


def test_a_dead_end_or_non_finite_checkpoint_is_set_aside_by_the_rerun(tmp_path):
  cfg = tiny_config(tmp_path)
  state = {"params": {"w": np.zeros(3, np.float32)}}
  restore = lambda c: c.restore(state, _Iterator(), lambda step: _Iterator())  # noqa: E731
  ckpt = checkpointing.Checkpointer(str(tmp_path), cfg, "fp")
  for step in (2, 4):
    ckpt.save(step, state, _Iterator())
  # Step 5's gradient is computed from checkpoint 4's state and batch, whatever the lr.
  note = ckpt.nonfinite_step(5, "grad_norm is inf")
  assert re.search(r"step 4 in .* is finite but a dead end: .* sets it aside and resumes from "
                   r"step 2\.$", note), note
  ckpt.close()
  assert checkpoint_reader.open_manager(str(tmp_path)).all_steps() == [2, 4]  # nothing moves yet

  other = checkpointing.Checkpointer(str(tmp_path), tiny_config(tmp_path, batch_size=16), "fp")
  restore(other)  # other batches: step 5's batch differs, so checkpoint 4 is tried, and used
  assert other.resumed_step == 4 and other.skipped == {}
  other.close()

  same = checkpointing.Checkpointer(str(tmp_path), cfg, "fp")
  restore(same)
  assert same.resumed_step == 2 and "dead end" in same.skipped[4]
  # A new checkpoint of step 4 is no dead end; one with NaN parameters (as an older version of
  # the trainer saved) is set aside.
  same.save(4, state, _Iterator())
  same.mgr.wait_until_finished()
  nan = {"params": {"w": np.full(3, np.nan, np.float32)}}
  same.mgr.save(6, args=ocp.args.Composite(
      state=ocp.args.StandardSave(nan), data=checkpointing.grain.checkpoint.CheckpointSave(
          _Iterator()), meta=ocp.args.JsonSave(same._meta(4))), force=True)
  same.close()
  again = checkpointing.Checkpointer(str(tmp_path), cfg, "fp")
  restore(again)
  assert again.resumed_step == 4 and "not finite" in again.skipped[6]
  again.close()
  assert checkpoint_reader.open_manager(str(tmp_path)).all_steps() == [2, 4]
  assert sorted(os.listdir(tmp_path / "skipped_checkpoints")) == ["4", "6", "skipped.jsonl"]
  rows = [json.loads(line) for line in open(tmp_path / "skipped_checkpoints" / "skipped.jsonl")]
  assert [r["step"] for r in rows] == [4, 6]


# -------------------------------------------------------------------------- damaged checkpoints
STEPS = {"total_steps": 6, "checkpoint_every": 2, "log_every": 2, "eval_every": 100}


@pytest.fixture(scope="module")
def runs(cache_dir, tmp_path_factory):
  """A workdir with checkpoints 2, 4, 6 (total_steps 6), and the same run continued to step 8."""
  root = tmp_path_factory.mktemp("runs")
  train.train_and_evaluate(tiny_config(cache_dir, **STEPS), str(root / "six"))
  shutil.copytree(root / "six", root / "eight")
  train.train_and_evaluate(tiny_config(cache_dir, **{**STEPS, "total_steps": 8}),
                           str(root / "eight"))
  return root


def _truncate_state_data(step_dir):
  files = [os.path.join(d, f) for d, _, fs in os.walk(step_dir / "state") for f in fs]
  biggest = max(files, key=os.path.getsize)  # an array's data file
  with open(biggest, "r+b") as f:
    f.truncate(os.path.getsize(biggest) // 2)


def _delete_state_item(step_dir):
  shutil.rmtree(step_dir / "state")


def _empty_grain_state(step_dir):
  name = [n for n in os.listdir(step_dir / "data") if n.startswith("process_")][0]
  open(step_dir / "data" / name, "w").close()


@pytest.mark.parametrize("damage", [_truncate_state_data, _delete_state_item, _empty_grain_state],
                         ids=["truncated_state_file", "deleted_item_folder", "empty_grain_state"])
def test_a_damaged_newest_checkpoint_is_skipped_and_kept(tmp_path, cache_dir, runs, damage,
                                                         caplog):
  work = tmp_path / "w"
  shutil.copytree(runs / "six", work)
  damage(work / "checkpoints" / "6")
  caplog.set_level(logging.WARNING)
  train.train_and_evaluate(tiny_config(cache_dir, **{**STEPS, "total_steps": 8}), str(work))

  skipped = [m for m in warnings_of(caplog) if re.search(r"checkpoint step 6 .* skipped: ", m)]
  assert len(skipped) == 1, warnings_of(caplog)
  assert history(work)[-1]["step"] == 4 and list(history(work)[-1]["skipped"]) == ["6"]
  assert os.path.isdir(work / "skipped_checkpoints" / "6")  # moved aside, never deleted
  assert params_hash(work) == params_hash(runs / "eight")  # resumed at 4: the same run
  assert params_hash(work)[1] == 8


def test_when_no_checkpoint_restores_the_resume_is_refused_and_nothing_moves(tmp_path, cache_dir,
                                                                            runs):
  work = tmp_path / "w"
  shutil.copytree(runs / "six", work)
  steps = sorted(os.listdir(work / "checkpoints"))
  for step in steps:
    _empty_grain_state(work / "checkpoints" / step)
  with pytest.raises(checkpointing.ResumeRefused, match="no checkpoint in .* restores"):
    train.train_and_evaluate(tiny_config(cache_dir, **{**STEPS, "total_steps": 8}), str(work))
  assert sorted(os.listdir(work / "checkpoints")) == steps
  assert not (work / "skipped_checkpoints").exists()


# --------------------------------------------------------------------------------- failed saves
def _failing_json_save(step):
  """A JsonCheckpointHandler._save_fn that fails with ENOSPC for step `step` (in the background
  commit of an asynchronous save, as a full disk would)."""
  real = ocp.JsonCheckpointHandler._save_fn

  async def save_fn(self, x, directory):
    if os.path.basename(os.path.dirname(str(directory))).startswith(f"{step}."):
      raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(directory / "metadata"))
    return await real(self, x, directory)
  return save_fn


def test_a_failed_asynchronous_save_stops_the_run_at_once_in_one_line(tmp_path, cache_dir,
                                                                       monkeypatch):
  monkeypatch.setattr(ocp.JsonCheckpointHandler, "_save_fn", _failing_json_save(6))
  work = tmp_path / "w"
  with pytest.raises(checkpointing.SaveError) as e:
    train.train_and_evaluate(tiny_config(cache_dir, total_steps=20, checkpoint_every=2,
                                         log_every=5, eval_every=100), str(work))
  message = str(e.value)
  assert "\n" not in message
  assert f"checkpoint of step 6 could not be saved to {work / 'checkpoints' / '6'}" in message
  assert "No space left on device" in message
  assert "the previous checkpoint (step 4) is intact" in message
  # Surfaced before the next save was issued, and the previous checkpoint restores.
  assert not [n for n in os.listdir(work / "checkpoints") if n.startswith("8")]
  assert finite_params(work) == (True, 4)


def test_a_failed_save_is_one_line_from_the_command_line(tmp_path, cache_dir):
  script = (
      "import errno, os, sys\n"
      "import orbax.checkpoint as ocp\n"
      "from tests import test_reliability as t\n"
      "ocp.JsonCheckpointHandler._save_fn = t._failing_json_save(6)\n"
      "from stcnn import main\n"
      "sys.argv = ['stcnn.main'] + sys.argv[1:]\n"
      "main.run()\n")
  r = subprocess.run([sys.executable, "-c", script, "--config=configs/single_frame.py:tiny",
                      f"--workdir={tmp_path}", f"--config.data.cache_dir={cache_dir}",
                      "--config.total_steps=20", "--config.checkpoint_every=2",
                      "--config.log_every=5", "--config.eval_every=100"],
                     cwd=ROOT, capture_output=True, text=True,
                     env={**os.environ, "JAX_PLATFORMS": "cpu"})
  assert r.returncode == 1, r.stderr[-3000:]
  assert "Traceback" not in r.stderr, r.stderr[-3000:]
  lines = [line for line in r.stderr.splitlines() if "could not be saved" in line]
  assert len(lines) == 1 and "step 6" in lines[0] and "No space left on device" in lines[0]
  assert r.stderr.rstrip().endswith(lines[0])  # the last thing said
  assert checkpoint_reader.open_manager(str(tmp_path)).latest_step() == 4


# ----------------------------------------------------------------------------------------- Ctrl-C
def test_ctrl_c_checkpoints_the_current_step_and_exits_cleanly(tmp_path, cache_dir):
  cmd = [sys.executable, "-m", "stcnn.main", "--config=configs/single_frame.py:tiny",
         f"--workdir={tmp_path}", f"--config.data.cache_dir={cache_dir}",
         "--config.total_steps=400", "--config.checkpoint_every=5", "--config.log_every=5",
         "--config.eval_every=1000"]
  proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "JAX_PLATFORMS": "cpu"},
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  wait_past_checkpoint(proc, tmp_path, 5)
  proc.send_signal(signal.SIGINT)
  out, err = proc.communicate(timeout=300)
  assert proc.returncode == 0, err[-3000:]  # as SIGTERM
  assert "Traceback" not in err and "KeyboardInterrupt" not in err, err[-3000:]
  stopped = int(re.search(r"SIGINT: checkpointed step (\d+), exiting", err).group(1))
  assert 5 <= stopped < 400
  assert checkpoint_reader.open_manager(str(tmp_path)).latest_step() == stopped
  assert finite_params(tmp_path) == (True, stopped)


def test_a_second_ctrl_c_aborts_and_handlers_are_restored():
  before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
  preempted = train._Preempted()
  try:
    preempted._set(signal.SIGINT, None)
    assert preempted.signal == "SIGINT"
    with pytest.raises(KeyboardInterrupt):
      preempted._set(signal.SIGINT, None)
  finally:
    preempted.restore()
  assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


# --------------------------------------------------------------------------- config on resume
def test_a_resume_with_another_batch_size_warns_and_keeps_the_history(tmp_path, cache_dir,
                                                                       caplog):
  work = str(tmp_path / "w")
  steps = {"checkpoint_every": 2, "log_every": 2, "eval_every": 100}
  train.train_and_evaluate(tiny_config(cache_dir, total_steps=2, **steps), work)
  caplog.set_level(logging.WARNING)
  train.train_and_evaluate(tiny_config(cache_dir, total_steps=4, batch_size=16, **steps), work)

  warned = [m for m in warnings_of(caplog) if "changed config" in m]
  assert len(warned) == 1 and "batch_size 8 → 16" in warned[0], warnings_of(caplog)
  first, second = history(work)
  assert first["step"] == 0 and first["changed"] == {} and first["config"]["batch_size"] == 8
  assert second["step"] == 2 and second["changed"]["batch_size"] == [8, 16]
  assert second["changed"]["total_steps"] == [2, 4] and second["config"]["batch_size"] == 16
  assert json.load(open(os.path.join(work, "config.json")))["batch_size"] == 16  # the latest
