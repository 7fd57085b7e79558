r"""Train and evaluate one of the paper's networks.

  python -m stcnn.main --config=configs/multires.py:cpu [--workdir=DIR] [--config.key=value ...]

With no data flags the embedded synthetic data set is used (generated and prepared on first use,
cached under config.data.cache_dir). A rerun with the same workdir resumes from its last
checkpoint. Multi-host: pass --coordinator=HOST:PORT --num_processes=N --process_id=I (or set
JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID) and start one process per host.
"""
import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

config_flags.DEFINE_config_file("config", None, "Config file: configs/X.py[:arg].",
                                lock_config=True)
flags.DEFINE_string("workdir", None, "Where checkpoints, metrics and events go "
                    "(default /tmp/stcnn/<config name>).")
flags.DEFINE_string("coordinator", "", "Multi-host: coordinator address host:port.")
flags.DEFINE_integer("num_processes", 0, "Multi-host: number of processes.")
flags.DEFINE_integer("process_id", -1, "Multi-host: this process's id.")
FLAGS = flags.FLAGS


class _QuietLibraries(logging.logging.Filter):
  """Keeps Orbax's and TFDS's per-save INFO chatter out of the run's log (warnings still show)."""

  def filter(self, record):
    noisy = "/orbax/" in record.pathname or "/tensorflow_datasets/" in record.pathname
    return record.levelno >= logging.logging.WARNING or not noisy


def main(argv):
  del argv
  logging.get_absl_handler().addFilter(_QuietLibraries())
  from stcnn import parallel, train  # after flag parsing: jax reads XLA_FLAGS at import
  parallel.initialize(FLAGS.coordinator, FLAGS.num_processes, FLAGS.process_id)
  workdir = FLAGS.workdir or os.path.join(
      "/tmp/stcnn", os.path.splitext(os.path.basename(FLAGS["config"].config_filename))[0])
  logging.info("workdir: %s", workdir)
  result = train.train_and_evaluate(FLAGS.config, workdir)
  if result:
    print("final " + ", ".join(f"{k}={result[k]:.4f}" for k in
                               ("clip_hit@1", "video_hit@1", "video_hit@5", "mean_class_accuracy")
                               if k in result) + f" (workdir {workdir})")


def run():
  flags.mark_flags_as_required(["config"])
  app.run(main)


if __name__ == "__main__":
  sys.exit(run())
