"""Shared fixtures. Grain reads absl flags in its workers (google/grain#1355): parse them once.

Every compiled program is kept in JAX's persistent compilation cache, in a directory made for this
session, so the many tests (and their subprocesses, through the environment) that compile the same
step of the same tiny network compile it once. Set before JAX is imported; removed at exit.
"""
import atexit
import os
import shutil
import sys
import tempfile

from absl import flags
import pytest

if not flags.FLAGS.is_parsed():
  flags.FLAGS(sys.argv[:1])

if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
  _jax_cache = tempfile.mkdtemp(prefix="stcnn-test-jax-cache-")
  atexit.register(shutil.rmtree, _jax_cache, ignore_errors=True)
  os.environ.update(JAX_COMPILATION_CACHE_DIR=_jax_cache,
                    JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                    JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")

# Plain helpers live in tests/helpers.py; tests/scripts/ holds the subprocesses' scripts, not tests.
collect_ignore = ["scripts"]

UCF_CLASSES = ("ApplyEyeMakeup", "Basketball", "HandstandPushups")


def _write_ucf_lists(root, classes=UCF_CLASSES, groups=3):
  """UCF-101 list files under `root`: classInd + the 3 official splits (split k tests on group k).

  As released: CRLF line ends, and HandstandPushups' files spelt `v_HandStandPushups_*` in the lists
  (the archive has `v_HandstandPushups_*`).
  """
  lists = os.path.join(root, "ucfTrainTestlist")
  os.makedirs(lists, exist_ok=True)

  def write(name, lines):
    with open(os.path.join(lists, name), "w", newline="\r\n") as f:
      f.write("".join(line + "\n" for line in lines))

  write("classInd.txt", [f"{i + 1} {c}" for i, c in enumerate(classes)])
  for k in (1, 2, 3):
    train, test = [], []
    for i, c in enumerate(classes):
      stem = "HandStandPushups" if c == "HandstandPushups" else c
      for g in range(1, groups + 1):
        rel = f"{c}/v_{stem}_g{g:02d}_c01.avi"
        (test if g == k else train).append(rel if g == k else f"{rel} {i + 1}")
    write(f"trainlist0{k}.txt", train)
    write(f"testlist0{k}.txt", test)


@pytest.fixture(scope="session")
def write_ucf_lists():
  """`write_ucf_lists(root, classes=UCF_CLASSES, groups=3)` writes UCF-101's list files."""
  return _write_ucf_lists


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
  """The tiny synthetic data set (`tests.helpers.tiny_config`), generated and prepared once for the
  session."""
  from stcnn.data import datasets
  from tests.helpers import tiny_config
  d = tmp_path_factory.mktemp("cache")
  datasets.ensure_synthetic(tiny_config(d))
  return d


@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
  """A tiny late-fusion workdir trained 10 steps (`tests.helpers.trained_workdir`), made once;
  what the predict and export tests read."""
  from tests.helpers import trained_workdir
  return trained_workdir(tmp_path_factory)


@pytest.fixture(scope="session")
def predictor(workdir):
  """`stcnn.Predictor` of that workdir."""
  from stcnn.predictor import Predictor
  return Predictor.from_workdir(workdir)
