r"""`python -m stcnn.repro`: the reproduction study of the paper's Tables 1–4 and speed.

  python -m stcnn.repro --table=1|2|3|4|speed|all [--preset=cpu|paper|tiny] [--seeds=3]
      [--workdir=DIR] [--results=DIR] [--models=slow,single,...] [--cells=t1-slow-*]
      [--data=PREPARED] [--transfer_data=PREPARED_{split}] [--cache_dir=DIR]
      [--study=experiments/study.py[:steps=3000]] [--report=PATH] [--plots=DIR]
      [--dry_run] [--report_only]

Each cell (table, network, seed, split) trains in its own workdir under --workdir and writes
<key>.json + <key>.npz under --results; a finished cell is skipped, an interrupted one resumes.
The report (experiments/RESULTS.md for cpu, RESULTS-<preset>.md otherwise) is rebuilt from the
result files alone at the end of every invocation. See stcnn.repro.
"""
from __future__ import annotations

from absl import app, flags

from stcnn import console, host_memory

FLAGS = flags.FLAGS


def _define_flags():
  """Defined only when run as a program, so importing stcnn.repro defines no flags."""
  from stcnn.repro import cells
  flags.DEFINE_list("table", ["all"], f"Tables to run: some of {list(cells.TABLES)}, or all.")
  flags.DEFINE_enum("preset", "cpu", ["cpu", "paper", "tiny"], "The study recipe's preset.")
  flags.DEFINE_integer("seeds", 0, "Seeds per cell (0: the recipe's, 3 for cpu).")
  flags.DEFINE_string("study", cells.DEFAULT_STUDY, "The recipe file[:key=value,...].")
  flags.DEFINE_string("workdir", "", "Root of the cells' workdirs (/tmp/stcnn-repro/<preset>).")
  flags.DEFINE_string("results", "", "Result files (experiments/results/<preset>).")
  flags.DEFINE_string("report", "", "The report (experiments/RESULTS[-<preset>].md).")
  flags.DEFINE_string("plots", "", "Its figures (experiments/plots/<preset>).")
  flags.DEFINE_list("models", [], "Only these Table 1 networks / transfer modes (and what they "
                    f"need): of {list(cells.T1_NETWORKS)} and {list(cells.TRANSFER_MODES)}.")
  flags.DEFINE_list("cells", [], "Only cells whose key matches one of these globs (t1-slow-s0).")
  flags.DEFINE_string("data", "", "A prepared data set for Table 1 (default: the synthetic one).")
  flags.DEFINE_string("transfer_data", "", "Prepared UCF-101-layout sets for Tables 3/4, "
                      "'{split}' replaced by 1..3 (default: the synthetic `transfer` preset).")
  flags.DEFINE_string("cache_dir", "", "config.data.cache_dir (default: the configs').")
  flags.DEFINE_bool("dry_run", False, "List the cells, their state and commands; run nothing.")
  flags.DEFINE_bool("report_only", False, "Only rebuild the report from the result files.")


def main(argv):
  console.quiet_libraries()
  host_memory.keep_freed_memory()  # large freed blocks reused, not re-faulted each step
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}")
  from stcnn.repro import study
  paths = study.default_paths(FLAGS.preset, FLAGS.workdir, FLAGS.results,
                              cache_dir=FLAGS.cache_dir, data=FLAGS.data,
                              transfer_data=FLAGS.transfer_data)
  study.run_study(FLAGS.table, FLAGS.preset, paths, study=FLAGS.study, seeds=FLAGS.seeds,
                  models=FLAGS.models, only=FLAGS.cells, report_path=FLAGS.report,
                  plots_dir=FLAGS.plots, dry_run=FLAGS.dry_run, report_only=FLAGS.report_only)


if __name__ == "__main__":
  _define_flags()
  app.run(main)
