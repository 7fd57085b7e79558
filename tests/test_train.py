"""The trainer: exact resume after SIGKILL, sharded == unsharded, two hosts, fine-tuning."""
import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from stcnn import checkpoint_reader, checkpointing, models, parallel, train
from tests.helpers import ROOT, load_config, params_hash, tiny_config, wait_past_checkpoint


def flags_of(**overrides):
  return [f"--config.{k}={v}" for k, v in overrides.items()]


def run_main(workdir, cache_dir, *extra, wait=True, env=None):
  cmd = [sys.executable, "-m", "stcnn.main", "--config=configs/single_frame.py:tiny",
         f"--workdir={workdir}", f"--config.data.cache_dir={cache_dir}",
         "--config.data.clips_per_video=2", "--config.data.views=2",
         "--config.eval_batch_size=16", *extra]
  env = {**os.environ, "JAX_PLATFORMS": "cpu", **(env or {})}
  if not wait:
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
  return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)


def test_sigkill_then_resume_is_bit_identical(tmp_path, cache_dir):
  steps = flags_of(total_steps=40, checkpoint_every=5, eval_every=20, log_every=5)
  full = run_main(tmp_path / "full", cache_dir, *steps)
  assert full.returncode == 0, full.stdout + full.stderr

  proc = run_main(tmp_path / "killed", cache_dir, *steps, wait=False)
  ckpt = tmp_path / "killed" / "checkpoints" / "10"
  deadline = time.time() + 300
  while not (ckpt / "_CHECKPOINT_METADATA").exists() and proc.poll() is None:
    assert time.time() < deadline
    time.sleep(0.005)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
  killed_at = checkpoint_reader.open_manager(str(tmp_path / "killed")).latest_step()
  assert 10 <= killed_at < 40

  resumed = run_main(tmp_path / "killed", cache_dir, *steps)
  assert resumed.returncode == 0, resumed.stdout + resumed.stderr
  assert params_hash(tmp_path / "killed") == params_hash(tmp_path / "full")
  evals = [json.load(open(d / "eval_test_40.json"))["metrics"]
           for d in (tmp_path / "full", tmp_path / "killed")]
  assert evals[0] == evals[1]
  rows = [r for r in map(json.loads, open(tmp_path / "killed" / "metrics.jsonl"))
          if r["split"] == "val" and r["step"] == 40]
  full_rows = [r for r in map(json.loads, open(tmp_path / "full" / "metrics.jsonl"))
               if r["split"] == "val" and r["step"] == 40]
  drop_time = lambda r: {k: v for k, v in r.items() if k != "time"}  # noqa: E731
  assert [drop_time(r) for r in rows] == [drop_time(r) for r in full_rows]


def test_sigterm_checkpoints_the_current_step_and_exits(tmp_path, cache_dir):
  proc = run_main(tmp_path, cache_dir, *flags_of(total_steps=400, checkpoint_every=5,
                                                 eval_every=1000, log_every=5), wait=False)
  wait_past_checkpoint(proc, tmp_path, 5)
  proc.send_signal(signal.SIGTERM)
  out, _ = proc.communicate(timeout=300)
  assert proc.returncode == 0, out
  assert "SIGTERM: checkpointed step" in out
  stopped = int(out.split("SIGTERM: checkpointed step ")[1].split()[0].rstrip(","))
  assert 5 <= stopped < 400
  assert checkpoint_reader.open_manager(str(tmp_path)).latest_step() == stopped


def test_evaluate_cli_reproduces_the_trainers_test_metrics(tmp_path, cache_dir):
  train.train_and_evaluate(tiny_config(cache_dir, total_steps=3, eval_every=3), str(tmp_path))
  r = subprocess.run([sys.executable, "-m", "stcnn.evaluate", f"--workdir={tmp_path}",
                      "--split=test", "--checkpoint=latest"], cwd=ROOT, capture_output=True,
                     text=True, env={**os.environ, "JAX_PLATFORMS": "cpu"})
  assert r.returncode == 0, r.stderr
  assert "video_hit@1" in r.stdout
  result = json.load(open(tmp_path / "eval_test_3.json"))
  assert result["protocol"]["clips_per_video"] == 2 and result["protocol"]["views"] == 2
  assert result["protocol"]["view_set"].startswith("centre, centre flipped")
  rows = [r for r in map(json.loads, open(tmp_path / "metrics.jsonl")) if r["split"] == "test"]
  assert len(rows) == 2  # the trainer's and the CLI's, identical numbers
  assert {k: v for k, v in rows[0].items() if k != "time"} == \
      {k: v for k, v in rows[1].items() if k != "time"}


def test_resume_with_another_worker_count_sees_the_same_batches(tmp_path, cache_dir):
  steps = dict(total_steps=8, checkpoint_every=4, eval_every=100, log_every=4)
  train.train_and_evaluate(tiny_config(cache_dir, **steps), str(tmp_path / "full"))
  train.train_and_evaluate(tiny_config(cache_dir, **{**steps, "total_steps": 4}),
                           str(tmp_path / "resumed"))
  train.train_and_evaluate(tiny_config(cache_dir, **steps, **{"data.worker_count": 2}),
                           str(tmp_path / "resumed"))  # grain state of 0 workers is not reused
  assert params_hash(tmp_path / "resumed") == params_hash(tmp_path / "full")


def test_resume_refuses_another_model_or_data(tmp_path, cache_dir):
  r = run_main(tmp_path / "w", cache_dir, *flags_of(total_steps=2, eval_every=2))
  assert r.returncode == 0, r.stderr
  r = run_main(tmp_path / "w", cache_dir, *flags_of(total_steps=4, eval_every=2),
               "--config.model.width=0.125")
  assert r.returncode != 0 and "refusing to resume" in r.stderr and "model" in r.stderr
  r = run_main(tmp_path / "w", cache_dir, *flags_of(total_steps=4, eval_every=2),
               "--config.data.synthetic_seed=1")
  assert r.returncode != 0 and "refusing to resume" in r.stderr and "fingerprint" in r.stderr
  assert checkpoint_reader.open_manager(str(tmp_path / "w")).latest_step() == 2  # nothing lost


def test_checkpoints_keep_the_last_n_and_the_best(tmp_path, caplog):
  """A save between validations ranks last for `best` (val_error inf), so Orbax has nothing to
  warn about; with no validation at all, `best` is the latest."""
  cfg = tiny_config(tmp_path)
  ckpt = checkpointing.Checkpointer(str(tmp_path), cfg, "fp", keep=2)

  class Iterator:  # a stand-in for a Grain DataLoader iterator (its state is bytes)
    def get_state(self):
      return b"{}"
  state = {"params": {"w": np.zeros(3, np.float32)}}
  errors = {2: 0.5, 4: 0.2, 6: 0.9, 8: 0.7}  # evaluated steps; the best is step 4
  for step in range(1, 10):
    ckpt.save(step, state, Iterator(), metrics={"val_error": errors[step]} if step in errors
              else None)
  ckpt.close()
  assert sorted(checkpoint_reader.open_manager(str(tmp_path)).all_steps()) == [4, 8, 9]
  assert checkpoint_reader.load_params(str(tmp_path), "best")[1] == 4
  assert checkpoint_reader.load_params(str(tmp_path), "latest")[1] == 9
  resumed = checkpointing.Checkpointer(str(tmp_path), cfg, "fp", keep=2)  # a later run
  for step in (10, 11):
    resumed.save(step, state, Iterator())
  resumed.close()
  assert sorted(checkpoint_reader.open_manager(str(tmp_path)).all_steps()) == [4, 10, 11]
  assert "tracked_metric" not in caplog.text
  unvalidated = checkpointing.Checkpointer(str(tmp_path / "u"), cfg, "fp", keep=2)
  for step in (1, 2, 3):
    unvalidated.save(step, state, Iterator())
  unvalidated.close()
  assert checkpoint_reader.load_params(str(tmp_path / "u"), "best")[1] == 3


@pytest.mark.parametrize("config", ["slow_fusion.py:tiny", "multires.py:tiny,fusion=late"])
def test_initial_state_equals_the_plain_jit_bit_for_bit(config):
  """`initial_state` compiles at a lower optimisation level: the same numbers."""
  path, _, arg = config.partition(":")
  cfg = load_config(os.path.join(ROOT, "configs", path), arg)
  model = models.build(cfg)
  shape = (1, model.num_frames, cfg.model.input_size, cfg.model.input_size, 3)
  tx, plateau = train.make_optimizer(cfg, None), train.make_plateau(cfg)
  got = train.initial_state(cfg, model, tx, plateau, shape,
                            parallel.replicated(parallel.make_mesh()))
  want = jax.jit(lambda: train.init_state(cfg, model, tx, plateau, shape))()
  leaves = jax.tree.leaves(want)
  assert len(leaves) > 30 and len(jax.tree.leaves(got)) == len(leaves)
  for g, w in zip(jax.tree.leaves(got), leaves):
    np.testing.assert_array_equal(g, w)


def test_frozen_layers_get_no_optimizer_state():
  cfg = load_config(os.path.join(ROOT, "configs", "single_frame.py"), "tiny")
  params = {"tower": {"w": np.zeros(100)}, "fc1": {"w": np.zeros(10)}, "fc2": {"w": np.zeros(5)},
            "head": {"w": np.zeros(3)}}
  for finetune, size in (("top", 3), ("top3", 18), ("all", 118)):
    cfg.finetune = finetune
    state = train.make_optimizer(cfg, params).init(params)
    assert sum(np.size(x) for x in jax.tree.leaves(state)) == size, finetune  # momentum only


def test_four_device_step_equals_one_device_step():
  env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
         "JAX_PLATFORMS": "cpu"}
  r = subprocess.run([sys.executable, "-m", "tests.scripts.sharded_step"], env=env,
                     capture_output=True, text=True, cwd=ROOT)
  assert r.returncode == 0, r.stderr
  line = [ln for ln in r.stdout.splitlines() if ln.startswith("MAXDIFF")][0].split()
  assert float(line[1]) < 1e-5
  assert abs(float(line[3]) - float(line[4])) < 1e-5


def test_two_processes_train_together(tmp_path, cache_dir):
  import portpicker
  port = portpicker.pick_unused_port()
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  procs = [subprocess.Popen([sys.executable, "-m", "tests.scripts.multihost", str(i), str(port),
                             str(cache_dir), str(tmp_path / "mh")], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
           for i in range(2)]
  outs = [p.communicate(timeout=600) for p in procs]
  for p, (out, err) in zip(procs, outs):
    assert p.returncode == 0, err[-3000:]
  hashes = [ln.split()[2] for out, _ in outs for ln in out.splitlines() if ln.startswith("HASH")]
  assert len(hashes) == 2 and hashes[0] == hashes[1]
  # The same global batches on one process give the same parameters (to float tolerance).
  train.train_and_evaluate(tiny_config(cache_dir, total_steps=4, eval_every=4,
                                       checkpoint_every=2, log_every=2), str(tmp_path / "one"))
  two, _ = checkpoint_reader.load_params(str(tmp_path / "mh"))
  one, _ = checkpoint_reader.load_params(str(tmp_path / "one"))
  for a, b in zip(jax.tree.leaves(one), jax.tree.leaves(two)):
    np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.fixture(scope="module")
def finetune_source(tmp_path_factory, cache_dir):
  """A tiny run trained 2 steps, the pre-trained network of every fine-tuning case."""
  src = tmp_path_factory.mktemp("finetune") / "src"
  train.train_and_evaluate(tiny_config(cache_dir, total_steps=2, eval_every=2), str(src))
  return src


@pytest.mark.parametrize("finetune,trained", [("top", {"head"}), ("top3", {"fc1", "fc2", "head"}),
                                              ("all", None)])
def test_finetune_changes_only_its_layers(tmp_path, cache_dir, finetune_source, finetune,
                                          trained):
  src = finetune_source
  pre, _ = checkpoint_reader.load_params(str(src))
  cfg = tiny_config(cache_dir, total_steps=3, eval_every=3, init_from=str(src),
                    finetune=finetune)
  cfg.model.dropout = 0.9  # [paper] fine-tuning kept 10% of units
  train.train_and_evaluate(cfg, str(tmp_path / finetune))
  post, _ = checkpoint_reader.load_params(str(tmp_path / finetune))
  for layer in post:
    same = all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(pre[layer]),
                                                   jax.tree.leaves(post[layer])))
    if trained is None:
      assert not same, layer
    else:
      assert same == (layer not in trained), layer


def test_nan_loss_stops_naming_the_step_and_keeps_checkpoint(tmp_path, cache_dir):
  cfg = tiny_config(cache_dir, total_steps=50, eval_every=100, checkpoint_every=1, log_every=1)
  cfg.optimizer.lr = 1e6
  with pytest.raises(FloatingPointError, match=r"at step \d+") as e:
    train.train_and_evaluate(cfg, str(tmp_path / "nan"))
  last = checkpoint_reader.open_manager(str(tmp_path / "nan")).latest_step()
  assert last is not None and f"step {last}" in str(e.value)
  params, _ = checkpoint_reader.load_params(str(tmp_path / "nan"))
  assert all(np.isfinite(x).all() for x in jax.tree.leaves(params))


@pytest.mark.parametrize("key,value,match", [
    ("model.fusion", "medium", "config.model.fusion"),
    ("model.input_size", 64, "config.model.input_size"),
    ("model.late_gap", 200, "config.model.fusion"),
    ("finetune", "top", "config.init_from"),
    ("num_classes", 9, "config.num_classes")])
def test_bad_config_refused_naming_the_key(tmp_path, cache_dir, key, value, match):
  cfg = tiny_config(cache_dir, **{key: value})
  if key == "model.late_gap":
    cfg.model.fusion = "late"
  with pytest.raises(ValueError, match=match):
    train.train_and_evaluate(cfg, str(tmp_path / "bad"))
  assert not (tmp_path / "bad" / "checkpoints").exists()


def test_batch_not_divisible_by_devices_is_refused():
  from stcnn import parallel

  class FourDevices:
    devices = np.zeros(4)
  with pytest.raises(ValueError, match="config.batch_size = 6 must be divisible by the device "
                                       "count 4"):
    parallel.check_batch(6, FourDevices())


def test_transfer_config_trains_on_the_synthetic_ucf101_layout(tmp_path, cache_dir):
  cfg = load_config(os.path.join(ROOT, "configs", "transfer_ucf101.py"),
                    "tiny,finetune=scratch,split=2")
  cfg.data.cache_dir = str(cache_dir)
  cfg.total_steps, cfg.eval_every, cfg.data.clips_per_video = 2, 2, 3
  result = train.train_and_evaluate(cfg, str(tmp_path))
  assert result["num_videos"] == 18 * 2 * 2  # split 2 tests groups 3 and 4, 2 clips each
  assert (cfg.model.dropout, cfg.num_classes) == (0.5, 18)
  from stcnn.data import datasets
  meta = datasets.load(cfg).metadata
  assert (meta["builder"], meta["config"]) == ("ucf101_clips", "split2")


@pytest.mark.parametrize("config", ["late_fusion.py", "multires.py:tiny,fusion=slow"])
def test_other_networks_train_end_to_end(tmp_path, cache_dir, config):
  name, _, arg = config.partition(":")
  cfg = load_config(os.path.join(ROOT, "configs", name), arg or "tiny")
  cfg.data.cache_dir, cfg.data.clips_per_video, cfg.data.views = str(cache_dir), 2, 2
  cfg.total_steps, cfg.eval_every, cfg.eval_batch_size = 2, 2, 16
  result = train.train_and_evaluate(cfg, str(tmp_path))
  assert result["num_clips"] == 16 * 2 and 0 <= result["video_hit@1"] <= 1


@pytest.mark.parametrize("schedule,warmup,expected", [
    ("constant", 0, {0: 1e-2, 60: 1e-2, 110: 1e-2}),  # [paper]
    ("constant", 10, {0: 0.0, 5: 5e-3, 10: 1e-2, 110: 1e-2}),
    ("cosine", 10, {0: 0.0, 5: 5e-3, 10: 1e-2, 60: 5e-3, 110: 0.0})])
def test_learning_rate_schedules(schedule, warmup, expected):
  config = tiny_config("/unused")
  config.optimizer.lr, config.total_steps = 1e-2, 110
  config.optimizer.schedule, config.optimizer.warmup_steps = schedule, warmup
  for step, lr in expected.items():
    state = train.TrainState(step=np.int32(step), params=None, opt_state=None, rng=None,
                             plateau=type("Plateau", (), {"scale": 0.5})())
    assert float(train.learning_rate(config, state)) == pytest.approx(0.5 * lr, abs=1e-9), step
