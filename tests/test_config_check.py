"""stcnn.config_check: every key's bad values refused naming the key, every config file's defaults
accepted, the cross-key rules, and the CLI's one-line errors (unknown key, config file anywhere)."""
import copy
import glob
import math
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from stcnn import config_check, models
from stcnn.config_check import KEYS
from stcnn.models.fusion import VideoNet
from tests.helpers import ROOT, load_config

CONFIGS = sorted(p for p in glob.glob(os.path.join(ROOT, "configs", "*.py"))
                 if os.path.basename(p) not in ("__init__.py", "common.py"))

# Out-of-range values of every key ([]: any value of its type is allowed).
BAD = {
    "seed": [-1, 2**63],
    "variant": ["huge"],
    "num_classes": [0],
    "model.fusion": ["medium"],
    "model.streams": ["both"],
    "model.width": [0.0, -0.5],
    "model.dropout": [1.0, -0.1],
    "model.head": ["deep"],
    "model.hierarchy": [],
    "model.dtype": ["float16"],
    "model.input_size": [0, -3],
    "model.early_frames": [0],
    "model.late_gap": [0],
    "data.name": ["folder"],
    "data.preset": ["huge"],
    "data.synthetic_seed": [-1],
    "data.path": [],
    "data.cache_dir": [""],
    "data.frame_size": [0],
    "data.mean": [],
    "data.train_split": [""],
    "data.eval_split": [""],
    "data.test_split": [""],
    "data.worker_count": [-1],
    "data.read_threads": [-1],
    "data.cache_frames": [],
    "data.clips_per_video": [0],
    "data.views": [0, 11],
    "data.max_eval_videos": [-1],
    "data.ucf_split": [0, 4],
    "batch_size": [0],
    "eval_batch_size": [0],
    "optimizer.lr": [0.0, -1.0],
    "optimizer.momentum": [5.0, 1.0, -0.1],
    "optimizer.weight_decay": [-1.0],
    "optimizer.plateau_factor": [0.0, 1.0, 2.0],
    "optimizer.plateau_patience": [0],
    "optimizer.grad_clip": [-1.0],
    "optimizer.schedule": ["cosine_restarts", ""],
    "optimizer.warmup_steps": [-1],
    "total_steps": [0],
    "log_every": [0],
    "eval_every": [0],
    "checkpoint_every": [0],
    "keep_checkpoints": [0],
    "init_from": [],
    "finetune": ["top5"],
}
# Values of the wrong type for every key of a type (NaN and ±inf for floats).
WRONG_TYPE = {int: ["3", 2.5, True, None], float: ["0.1", True, math.nan, math.inf, -math.inf],
              str: [3, None], bool: [1, "yes"]}


@pytest.fixture(scope="module")
def tiny():
  """configs/single_frame.py:tiny as a plain nested dict (any value can be put in)."""
  return load_config(os.path.join(ROOT, "configs", "single_frame.py"), "tiny").to_dict()


def with_value(config: dict, key: str, value) -> dict:
  config = copy.deepcopy(config)
  *path, last = key.split(".")
  node = config
  for p in path:
    node = node[p]
  node[last] = value
  return config


def test_the_table_lists_exactly_the_configs_keys(tiny):
  assert set(config_check.flatten(tiny)) == set(KEYS)
  assert set(BAD) == set(KEYS)  # a new key gets its bad values here


@pytest.mark.parametrize("key,value", [(k, v) for k in KEYS
                                       for v in BAD[k] + WRONG_TYPE[KEYS[k].type]])
def test_bad_value_is_refused_naming_key_value_and_what_is_allowed(tiny, key, value):
  with pytest.raises(ValueError) as e:
    config_check.check(with_value(tiny, key, value))
  message = str(e.value)
  assert message.startswith(f"config.{key} = ") and "expected" in message, message
  assert "\n" not in message


@pytest.mark.parametrize("key,value,shown,allowed", [
    ("optimizer.grad_clip", -1.0, "-1.0", "0 (off) or a positive float"),
    ("optimizer.lr", math.nan, "nan", "a float > 0"),
    ("optimizer.momentum", np.float32(5), "5.0", "a float in [0, 1)"),
    ("data.views", 0, "0", "an int in 1..10"),
    ("model.input_size", 0, "0", "an int >= 1"),
    ("optimizer.plateau_factor", 0.0, "0.0", "a float in (0, 1)"),
    ("data.clips_per_video", 0, "0", "an int >= 1"),
    ("model.fusion", "medium", "'medium'", "one of ('single', 'early', 'late', 'slow')")])
def test_messages(tiny, key, value, shown, allowed):
  with pytest.raises(ValueError) as e:
    config_check.check(with_value(tiny, key, value))
  assert str(e.value) == f"config.{key} = {shown}: expected {allowed}"


def test_ints_for_floats_and_numpy_scalars_are_fine(tiny):
  config = with_value(with_value(tiny, "optimizer.grad_clip", 1), "batch_size", np.int64(8))
  config_check.check(with_value(config, "optimizer.lr", np.float32(0.01)))


@pytest.mark.parametrize("path", CONFIGS, ids=os.path.basename)
@pytest.mark.parametrize("arg", ["", "cpu", "tiny"])
def test_every_config_files_defaults_pass(path, arg):
  config = load_config(path, arg)
  if config.finetune != "all":  # transfer_ucf101 fine-tunes: it needs --config.init_from
    with pytest.raises(ValueError, match="config.init_from"):
      config_check.check(config)
    config.init_from = "/some/sports1m/workdir"
  config_check.check(config)


def test_allowed_sets_kept_elsewhere_agree():
  from configs import common
  from stcnn import train
  assert set(config_check.FINETUNE) == set(train.FINETUNE)
  assert set(config_check.VARIANTS) == set(common.VARIANTS)


# ---------------------------------------------------------------------------- unknown, missing
def test_unknown_key_names_the_close_matches(tiny):
  config = copy.deepcopy(tiny)
  config["optimizer"]["lrr"] = 1.0
  with pytest.raises(ValueError, match=r"^config.optimizer.lrr: unknown key; did you mean "
                                       r"config.optimizer.lr\?$"):
    config_check.check(config)
  config = with_value(tiny, "optimizer", 0.1)
  with pytest.raises(ValueError, match=r"config.optimizer = 0.1: expected a group of keys"):
    config_check.check(config)


def test_missing_key_is_refused_but_partial_allows_missing_and_unknown(tiny):
  config = copy.deepcopy(tiny)
  del config["optimizer"]["momentum"]
  with pytest.raises(ValueError, match=r"config.optimizer.momentum is missing; expected a float"):
    config_check.check(config)
  config["optimizer"]["from_a_newer_version"] = 1
  config_check.check(config, partial=True)  # an older or newer workdir's config.json
  with pytest.raises(ValueError, match="config.optimizer.lr = -1.0"):
    config_check.check(with_value(config, "optimizer.lr", -1.0), partial=True)
  config = copy.deepcopy(tiny)
  del config["data"]["cache_frames"]  # optional: the code reads it with .get and a default
  config_check.check(config)


def test_only_checks_its_keys(tiny):
  config = with_value(tiny, "optimizer.lr", -1.0)
  config_check.check(config, only=("num_classes", "model"))
  with pytest.raises(ValueError, match="config.model.dropout"):
    config_check.check(with_value(config, "model.dropout", 1.5), only=("model",))


# -------------------------------------------------------------------------------- cross-key rules
def test_finetune_needs_init_from(tiny):
  with pytest.raises(ValueError, match="config.finetune='top3' needs config.init_from"):
    config_check.check(with_value(tiny, "finetune", "top3"))
  config_check.check(with_value(with_value(tiny, "finetune", "top3"), "init_from", "/w"))


def test_input_size_fits_the_streams(tiny):
  multires = with_value(tiny, "model.streams", "multires")
  with pytest.raises(ValueError, match="config.model.input_size: multires/fovea/context streams "
                                       "need an even frame size"):
    config_check.check(with_value(multires, "model.input_size", 27))
  with pytest.raises(ValueError, match=r"config.model.input_size = 18: the multires network needs "
                                       r"crops of at least 20 pixels"):
    config_check.check(with_value(multires, "model.input_size", 18))
  with pytest.raises(ValueError, match=r"config.model.input_size = 21: the full network needs "
                                       r"crops of at least 22"):
    config_check.check(with_value(tiny, "model.input_size", 21))
  config_check.check(with_value(multires, "model.input_size", 20))
  config_check.check(with_value(tiny, "model.input_size", 22))


@pytest.mark.parametrize("streams", ["full", "multires"])
def test_min_input_size_is_the_smallest_that_builds(streams):
  size = config_check.min_input_size(streams)
  assert size == {"full": 22, "multires": 20}[streams]
  net = VideoNet(3, streams=streams, width=1 / 16)
  params = jax.eval_shape(net.init, jax.random.key(0), jnp.zeros((1, 1, size, size, 3)))["params"]
  assert params["fc1"]["kernel"].shape[0] > 0


def test_eval_batch_holds_the_views_of_a_clip(tiny):
  with pytest.raises(ValueError, match=r"config.eval_batch_size = 10 must be a multiple of "
                                       r"config.data.views \(4\)"):
    config_check.check(with_value(with_value(tiny, "eval_batch_size", 10), "data.views", 4))


def test_model_check_is_the_models_part(tiny):
  config = ml_collections.ConfigDict(with_value(tiny, "optimizer.lr", -1.0))
  models.check_model_config(config)  # the optimizer is not the model's business
  config.model.dropout = 1.0
  with pytest.raises(ValueError, match=r"config.model.dropout = 1.0: expected a float in \[0, 1\)"):
    models.build(config)


# ------------------------------------------------------------------------------------------- CLI
def run_main(*args, cwd=ROOT, env=None):
  return subprocess.run([sys.executable, "-m", "stcnn.main", *args], cwd=cwd, capture_output=True,
                        text=True, timeout=120, env={**os.environ, **(env or {})})


def test_cli_unknown_key_is_one_line_before_any_work(tmp_path):
  r = run_main("--config=configs/single_frame.py:tiny", "--config.optimizer.lrr=1",
               f"--config.data.cache_dir={tmp_path / 'cache'}", f"--workdir={tmp_path / 'w'}")
  assert r.returncode != 0
  assert r.stderr.strip() == ("--config.optimizer.lrr: unknown key; did you mean "
                              "--config.optimizer.lr?"), r.stderr
  assert not os.listdir(tmp_path)  # no data generated, no workdir


@pytest.mark.parametrize("which", ["own_file", "absolute_path"])
def test_cli_config_from_another_directory(tmp_path, which):
  """Run from elsewhere with only the stcnn package importable (not the repository root): a user's
  config that imports `configs.common`, or the repository's by absolute path, loads; the bad value
  is refused in one line before any work."""
  (tmp_path / "pkgs").mkdir()
  os.symlink(os.path.join(ROOT, "stcnn"), tmp_path / "pkgs" / "stcnn")
  (tmp_path / "my_config.py").write_text(
      "from configs import common\n\n\ndef get_config(arg=''):\n"
      "  c = common.get_config('tiny')\n  c.optimizer.grad_clip = -1.0\n  return c\n")
  config = ("my_config.py" if which == "own_file" else
            os.path.join(ROOT, "configs", "single_frame.py") + ":tiny")
  extra = [] if which == "own_file" else ["--config.optimizer.grad_clip=-1"]
  r = run_main(f"--config={config}", *extra, f"--config.data.cache_dir={tmp_path / 'cache'}",
               f"--workdir={tmp_path / 'w'}", cwd=tmp_path,
               env={"PYTHONPATH": str(tmp_path / "pkgs")})
  assert r.returncode != 0
  assert r.stderr.strip() == ("config.optimizer.grad_clip = -1.0: expected 0 (off) or a positive "
                              "float"), r.stderr
  assert sorted(os.listdir(tmp_path)) == ["my_config.py", "pkgs"]
