r"""Train and evaluate one of the paper's networks.

  python -m stcnn.main --config=configs/multires.py:cpu [--workdir=DIR] [--config.key=value ...]

With no data flags the embedded synthetic data set is used (generated and prepared on first use,
cached under config.data.cache_dir). A rerun with the same workdir resumes from its last
checkpoint. Multi-host: pass --coordinator=HOST:PORT --num_processes=N --process_id=I (or set
JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID) and start one process per host.

Config files may live anywhere (`--config=/abs/path/my_config.py`): the repository's `configs`
package, which they import (`from configs import common`), is made importable from any directory.
A bad value, an unknown `--config.key` or a config file that cannot be found is told in one line
(stcnn.config_check names the key and what is allowed) before any work.
"""
import importlib.util
import os
import re
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from stcnn import console, host_memory

config_flags.DEFINE_config_file("config", None, "Config file: configs/X.py[:arg].",
                                lock_config=True)
flags.DEFINE_string("workdir", None, "Where checkpoints, metrics and events go "
                    "(default /tmp/stcnn/<config name>).")
flags.DEFINE_string("coordinator", "", "Multi-host: coordinator address host:port.")
flags.DEFINE_integer("num_processes", 0, "Multi-host: number of processes.")
flags.DEFINE_integer("process_id", -1, "Multi-host: this process's id.")
FLAGS = flags.FLAGS


def make_configs_importable() -> None:
  """configs/*.py do `from configs import common`: unless a `configs` package is importable already
  (installed, or in the working directory), import the one next to this package (a source checkout
  or an editable install), so that a config file works wherever it lives and wherever the command
  runs."""
  spec = importlib.util.find_spec("configs")
  if spec is not None and spec.origin not in (None, "namespace"):
    return
  here = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
  init = os.path.join(here, "configs", "__init__.py")
  if not os.path.exists(init):
    return
  spec = importlib.util.spec_from_file_location("configs", init,
                                                submodule_search_locations=[os.path.dirname(init)])
  module = importlib.util.module_from_spec(spec)
  sys.modules["configs"] = module
  spec.loader.exec_module(module)


def _config_path(argv) -> str | None:
  for i, arg in enumerate(argv):
    if re.fullmatch(r"--?config", arg) and i + 1 < len(argv):
      return argv[i + 1]
    if re.match(r"--?config=", arg):
      return arg.split("=", 1)[1]
  return None


def _unknown_override(argv) -> str | None:
  """The one-line message for the first `--config.KEY=...` whose KEY the config does not have, or
  None when they all exist (or the config cannot be loaded)."""
  from stcnn import config_check
  path = _config_path(argv)
  if not path:
    return None
  try:
    config = FLAGS["config"].parser.parse(path)  # loaded as --config loads it
    known = config_check.flatten(config)
  except Exception:  # pylint: disable=broad-except  (the caller re-raises the original error)
    return None
  groups = {k.rsplit(".", i)[0] for k in known for i in range(1, k.count(".") + 1)}
  for arg in argv:
    match = re.match(r"--?(?:no)?config\.([^=]+)", arg)
    if match and match.group(1) not in known and match.group(1) not in groups:
      return config_check.unknown_key_message(match.group(1), known, prefix="--config.")
  return None


def parse_flags(argv):
  """absl's flag parsing (`app.run`'s default), with an unknown `--config.KEY` or a config file
  that cannot be loaded told in one line and exit status 1 (ml_collections raises tracebacks)."""
  try:
    rest = app.parse_flags_with_usage(argv)
    FLAGS.config.keys()  # ml_collections defers a missing file's error to the first access
  except OSError as e:
    reason = [line.strip() for line in str(e).splitlines() if line.strip()][-1]
    sys.exit(f"--config={_config_path(argv)}: cannot load the config file: {reason}")
  except (AttributeError, KeyError):  # ml_collections: an override of a key the config lacks
    message = _unknown_override(argv)
    if message is None:
      raise
    sys.exit(message)
  return rest


def main(argv):
  del argv
  console.quiet_libraries()
  from stcnn import config_check
  try:
    config_check.check(FLAGS.config)  # before any work
  except ValueError as e:
    sys.exit(str(e))
  # large freed blocks reused, not re-faulted each step (before jax starts its threads)
  host_memory.keep_freed_memory(one_arena=host_memory.one_arena_pays([FLAGS.config]))
  from stcnn import checkpointing, parallel, train  # after flag parsing: jax reads XLA_FLAGS
  parallel.initialize(FLAGS.coordinator, FLAGS.num_processes, FLAGS.process_id)
  workdir = FLAGS.workdir or os.path.join(
      "/tmp/stcnn", os.path.splitext(os.path.basename(FLAGS["config"].config_filename))[0])
  logging.info("workdir: %s", workdir)
  try:
    result = train.train_and_evaluate(FLAGS.config, workdir)
  except checkpointing.RunStopped as e:  # a stated cause, checkpoints intact: one line, no trace
    sys.exit(str(e))
  if result:
    print("final " + ", ".join(f"{k}={result[k]:.4f}" for k in
                               ("clip_hit@1", "video_hit@1", "video_hit@5", "mean_class_accuracy")
                               if k in result) + f" (workdir {workdir})")


def run():
  flags.mark_flags_as_required(["config"])
  make_configs_importable()
  app.run(main, flags_parser=parse_flags)


if __name__ == "__main__":
  sys.exit(run())
