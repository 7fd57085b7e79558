"""The study as one call: plan the cells, run the unfinished ones, write the report."""
from __future__ import annotations

import os

from stcnn.repro import cells as cells_lib
from stcnn.repro import report, run

EXPERIMENTS = os.path.join(cells_lib.ROOT, "experiments")


def default_paths(preset: str, workdir: str = "", results: str = "", **more) -> cells_lib.Paths:
  """Workdirs under /tmp/stcnn-repro/<preset>, results in experiments/results/<preset>."""
  return cells_lib.Paths(workdir=workdir or cells_lib.default_workdir(preset),
                         results=results or cells_lib.default_results(preset), **more)


def _report_name(preset: str, results: str) -> str:
  """The results directory's name, or the preset's when it is the default one."""
  return os.path.basename(os.path.normpath(results)) if results else preset


def default_report(preset: str, results: str = "") -> str:
  """experiments/RESULTS.md for the cpu preset's results, RESULTS-<name>.md for any other results
  directory (another preset, or e.g. --results=experiments/results/cpu-12k): never overwritten by
  another study's report."""
  name = _report_name(preset, results)
  return os.path.join(EXPERIMENTS, "RESULTS.md" if name == "cpu" else f"RESULTS-{name}.md")


def default_plots(preset: str, results: str = "") -> str:
  return os.path.join(EXPERIMENTS, "plots", _report_name(preset, results))


def run_study(tables, preset: str, paths: cells_lib.Paths, *, study: str = cells_lib.DEFAULT_STUDY,
              seeds: int = 0, models=(), only=(), report_path: str = "", plots_dir: str = "",
              dry_run: bool = False, report_only: bool = False, log=print) -> dict:
  """Runs what `tables` need (finished cells skipped), then rebuilds the report from every result
  file in paths.results. Returns {"cells": {key: status}, "report": path}."""
  recipe = cells_lib.load_study(preset, study, seeds)
  plan = [] if report_only else cells_lib.plan(recipe, tables, models, only)
  status = {}
  if dry_run:
    for cell in plan:
      done = run.finished(cell, paths.results)
      cmds = cells_lib.commands(cell, paths, preset)
      log(f"{cell.key}: {'finished' if done else 'to run'}\n  {cmds.get('train', cmds['cell'])}")
      status[cell.key] = "finished" if done else "to run"
    return {"cells": status, "report": None}
  status = run.run_plan(plan, paths, preset, log)
  path = report.write_report(paths.results, report_path or default_report(preset, paths.results),
                             plots_dir or default_plots(preset, paths.results), preset)
  log(f"report: {path}")
  failed = {k: v for k, v in status.items() if v.startswith("failed")}
  if failed:
    raise RuntimeError(f"{len(failed)} cell(s) failed (the report has the others): " +
                       "; ".join(f"{k}: {v}" for k, v in failed.items()))
  return {"cells": status, "report": path}
