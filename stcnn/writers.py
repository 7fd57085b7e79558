"""Where numbers go: metrics.jsonl (one JSON object a line), TensorBoard events, the log, and a
progress bar. Only process 0 writes; CLIs read the workdir, never the trainer's memory."""
from __future__ import annotations

import json
import math
import os
import time

from absl import logging
from tensorboardX import SummaryWriter
import tqdm

from stcnn import fileio


def _complete_rows(path: str) -> tuple[list[str], bool]:
  """The lines of metrics.jsonl that parse as JSON objects, and whether any line did not (a row
  half-written by a crash)."""
  rows, damaged = [], False
  with open(path) as f:
    for line in f:
      try:
        row = json.loads(line)
        ok = isinstance(row, dict) and line.endswith("\n")
      except json.JSONDecodeError:
        ok = False
      if ok:
        rows.append(line)
      elif line.strip():
        damaged = True
  return rows, damaged


def repair_metrics(workdir: str, resume_step: int | None = None) -> None:
  """Makes metrics.jsonl one parseable row a line: drops a row half-written by a crash and, given
  the step a run resumes from, the rows of later steps (the crashed segment's, about to be
  written again), so every (step, split) has one row. Rewritten atomically, only when needed."""
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.exists(path):
    return
  rows, damaged = _complete_rows(path)
  kept = [r for r in rows if resume_step is None or json.loads(r).get("step", 0) <= resume_step]
  if damaged or len(kept) != len(rows):
    logging.warning("%s: dropped %d half-written row(s) and %d row(s) after step %s (redone now)",
                    path, int(damaged), len(rows) - len(kept), resume_step)
    fileio.write_text(path, "".join(kept))


class MetricWriter:
  """`write(step, split, {name: float})` → metrics.jsonl + TensorBoard (`split/name`) + log.

  `resume_step`: the step the run (re)starts from; see `repair_metrics`.
  """

  def __init__(self, workdir: str, active: bool = True, resume_step: int | None = None):
    self.active = active
    if not active:
      return
    os.makedirs(workdir, exist_ok=True)
    repair_metrics(workdir, resume_step)
    self._jsonl = open(os.path.join(workdir, "metrics.jsonl"), "a")
    self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"))

  def write(self, step: int, split: str, values: dict) -> None:
    if not self.active or not values:
      return
    row = {"step": int(step), "split": split, "time": time.time(), **values}
    self._jsonl.write(json.dumps(row, allow_nan=True) + "\n")
    self._jsonl.flush()
    for k, v in values.items():
      if isinstance(v, (int, float)) and math.isfinite(v):
        self._tb.add_scalar(f"{split}/{k.replace('@', '_at_')}", v, step)
    self._tb.flush()
    logging.info("[%d] %s %s", step, split, ", ".join(
        f"{k}={v:.4g}" for k, v in values.items() if isinstance(v, (int, float))))

  def close(self) -> None:
    if self.active:
      self._jsonl.close()
      self._tb.close()


class progress:  # noqa: N801 (reads as a function)
  """A tqdm bar over training steps showing loss and clips/s (tqdm gives the ETA)."""

  def __init__(self, total: int, initial: int, active: bool = True):
    self.bar = tqdm.tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True,
                         disable=not active, smoothing=0.1)

  def update(self, step: int, summary: dict) -> None:
    self.bar.update(step - self.bar.n)
    self.bar.set_postfix(loss=f"{summary.get('loss', float('nan')):.3f}",
                         clips_s=f"{summary.get('clips_per_sec', 0):.0f}",
                         input_idle=f"{summary.get('input_idle_fraction', 0):.0%}")

  def close(self) -> None:
    self.bar.close()
