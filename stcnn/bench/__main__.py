"""The program `python -m stcnn.bench model|data|train [--flags] [--json]` (see stcnn.bench).

Its flags are defined only when it runs (in _define_flags), so importing stcnn.bench defines none.
"""
from __future__ import annotations

import os
import sys
from typing import Callable

from absl import app, flags

from stcnn import console, host_memory
import stcnn.bench
from stcnn.bench.data import bench_data
from stcnn.bench.model import ROOT, bench_model, define_network_flags, network_configs
from stcnn.bench.train import bench_train

__doc__ = stcnn.bench.__doc__  # what --help prints (absl: the __main__ module's docstring)
FLAGS = flags.FLAGS


def _define_flags():
  """Defined only when run as a program, so importing this module never clashes with other CLIs."""
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top
  if ROOT not in sys.path:
    sys.path.insert(0, ROOT)  # configs/*.py import configs.common
  flags.DEFINE_bool("json", False, "One JSON object a line instead of a table.")
  flags.DEFINE_integer("steps", None, "Timed steps (default: model 10, data 20, train 30).")
  flags.DEFINE_integer("warmup", None, "Untimed steps first (default: model 2, data 3, train 5).")
  flags.DEFINE_integer("rounds", 3, "train: rounds of --steps end to end, then --steps alone.")
  flags.DEFINE_integer("batch_size", 32, "Global batch size (clips).")
  flags.DEFINE_alias("batch", "batch_size")
  config_flags.DEFINE_config_file("config", os.path.join(ROOT, "configs/slow_fusion.py") + ":cpu",
                                  "train, data --prepared: configs/X.py[:arg].", lock_config=True)
  # model
  define_network_flags()
  flags.DEFINE_integer("eval_batch", 128, "Evaluation forward batch (views).")
  flags.DEFINE_integer("eval_steps", 5, "Timed evaluation batches (0: no evaluation timing).")
  flags.DEFINE_integer("peak_n", 2048, "Side of the fp32 matmul timed for the peak.")
  # data
  flags.DEFINE_string("data", None, "A prepared data set (builder dir) instead of the synthetic "
                      "in-memory source.")
  flags.DEFINE_bool("prepared", False, "Read --config's prepared data set at every network's clip.")
  flags.DEFINE_string("split", "train", "--data, --prepared: the split to read.")
  flags.DEFINE_bool("stages", True, "Also time the stages of one example.")
  flags.DEFINE_integer("frame_size", 200, "Stored frame size of the synthetic records.")
  flags.DEFINE_integer("crop_size", None, "Crop (default: crop_size_for(frame_size)).")
  flags.DEFINE_list("workers", ["0", "1", "2"], "Worker process counts (0: in-process).")
  flags.DEFINE_list("num_frames", ["1", "10"], "Clip lengths.")
  flags.DEFINE_integer("read_threads", 2, "Reader threads per process (one batch each).")
  flags.DEFINE_integer("records", 16, "Synthetic records (segments) in the source.")
  flags.DEFINE_integer("record_frames", 40, "Frames per synthetic record.")


SUBCOMMANDS: dict[str, Callable[[list[str]], None]] = {
    "model": bench_model, "data": bench_data, "train": bench_train}
STEPS = {"model": (10, 2), "data": (20, 3), "train": (30, 5)}  # default --steps, --warmup


def step_configs(subcommand: str) -> list:
  """The configs whose steps `subcommand` runs (`model`: every network at every size)."""
  if subcommand == "model":
    return [config for *_, config in network_configs(FLAGS.batch_size)]
  return [FLAGS.config] if subcommand == "train" else []


def main(argv):
  console.quiet_libraries()
  if len(argv) < 2 or argv[1] not in SUBCOMMANDS:
    raise app.UsageError(f"usage: python -m stcnn.bench {{{','.join(SUBCOMMANDS)}}} [--flags]; "
                         f"got {argv[1:]}")
  # large freed blocks reused, not re-faulted each step; one arena where every network timed is
  # paper-sized (`--sizes=paper`), as the trainer does (before jax starts its threads)
  host_memory.keep_freed_memory(
      one_arena=host_memory.one_arena_pays(step_configs(argv[1])))
  steps, warmup = STEPS.get(argv[1], (20, 3))
  FLAGS.steps, FLAGS.warmup = FLAGS.steps or steps, warmup if FLAGS.warmup is None else FLAGS.warmup
  SUBCOMMANDS[argv[1]](argv[2:])


if __name__ == "__main__":
  _define_flags()
  app.run(main)
