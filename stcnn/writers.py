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


def read_metrics(workdir: str) -> list[dict]:
  """metrics.jsonl's rows, by step: one a (step, split), the last written (a later evaluation of
  the same step replaces the earlier), without a row half-written by a crash or still being
  written. Reads only (`repair_metrics` mends the file); FileNotFoundError naming it if absent."""
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path}: no such file (the workdir has no metrics)")
  rows = {}
  for line in _complete_rows(path)[0]:
    row = json.loads(line)
    rows[(row.get("step"), row.get("split"))] = row
  return sorted(rows.values(), key=lambda r: r.get("step", 0))


class MetricWriter:
  """`write(step, split, {name: float})` → metrics.jsonl + TensorBoard (`split/name`); with
  `echo`, also one readable line (`format_row`) through `echo` (the progress bar's `say`).

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

  def write(self, step: int, split: str, values: dict, echo=None) -> None:
    if not self.active or not values:
      return
    row = {"step": int(step), "split": split, "time": time.time(), **values}
    self._jsonl.write(json.dumps(row, allow_nan=True) + "\n")
    self._jsonl.flush()
    for k, v in values.items():
      if isinstance(v, (int, float)) and math.isfinite(v):
        self._tb.add_scalar(f"{split}/{k.replace('@', '_at_')}", v, step)
    self._tb.flush()
    if echo is not None:
      echo(format_row(step, split, values))

  def close(self) -> None:
    if self.active:
      self._jsonl.close()
      self._tb.close()


def format_row(step: int, split: str, values: dict) -> str:
  """`step 500 · val: video_hit@1 0.1302, clip_hit@1 0.1289, ...` (numbers only, 4 digits)."""
  return f"step {step} · {split}: " + ", ".join(
      f"{k} {v:.4g}" for k, v in values.items() if isinstance(v, (int, float)))


class progress:  # noqa: N801 (reads as a function)
  """The run's console: one tqdm bar over training steps (step, loss, true clips/s, input idle
  share; tqdm gives the ETA) and `say(line)` for lines above it (evaluation results), printed
  through tqdm so that bar and lines never overwrite each other. Inactive (processes other than
  0): no bar, and `say` logs."""

  def __init__(self, total: int, initial: int, active: bool = True):
    self.active = active
    self.bar = tqdm.tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True,
                         disable=not active, smoothing=0.1)
    # Log lines (absl's handler) go above the bar too while it is open.
    self._handler = logging.get_absl_handler().python_handler
    self._stream = self._handler.stream
    if active:
      self._handler.stream = _AboveBar(self._stream)

  def say(self, line: str) -> None:
    if self.active:
      self.bar.write(line)
    else:
      logging.info("%s", line)

  def update(self, step: int, summary: dict) -> None:
    self.bar.set_postfix(loss=f"{summary.get('loss', float('nan')):.3f}",
                         clips_s=f"{summary.get('clips_per_sec', 0):.0f}",
                         input_idle=f"{summary.get('input_idle_fraction', 0):.0%}", refresh=False)
    self.bar.update(step - self.bar.n)  # one redraw with the new numbers

  def close(self) -> None:
    self.bar.close()
    self._handler.stream = self._stream


class _AboveBar:
  """A text stream that writes through `tqdm.write`: clear the bar, print, redraw it."""

  def __init__(self, stream):
    self.stream = stream

  def write(self, text: str) -> None:
    if text.strip():
      tqdm.tqdm.write(text.rstrip("\n"), file=self.stream)

  def flush(self) -> None:
    self.stream.flush()

  def __getattr__(self, name):  # the rest of the stream's interface (fileno, close, ...)
    return getattr(self.stream, name)
