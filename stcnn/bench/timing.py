"""What the benchmarks share: timing (median_rate, the fp32 matmul peak) and their output.

Output is a table a person reads, or with --json one JSON object a line; notes for people then go
to stderr (`note`, `load_dataset`), so stdout stays JSON lines.
"""
from __future__ import annotations

import contextlib
import json
import resource
import sys
import time
from typing import Callable, Sequence

from absl import flags
import numpy as np

FLAGS = flags.FLAGS


def median_rate(fn: Callable[[], object], steps: int, warmup: int,
                usage: dict | None = None) -> float:
  """Calls a second: 1 / the median wall time of `steps` calls of fn() after `warmup` untimed ones.

  Every call's result is blocked on (jax.block_until_ready) before the clock is read. With a dict
  `usage`, also what the timed calls cost the process besides computing, per call (getrusage):
  `sys_ms` (kernel time: page faults, thread wake-ups) and `page_faults` (minor faults: memory
  touched for the first time, see stcnn/host_memory.py).
  """
  import jax  # pylint: disable=g-import-not-at-top
  for _ in range(warmup):
    jax.block_until_ready(fn())
  times, n = [], max(steps, 1)
  before = resource.getrusage(resource.RUSAGE_SELF)
  for _ in range(n):
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - t0)
  if usage is not None:
    after = resource.getrusage(resource.RUSAGE_SELF)
    usage.update(sys_ms=1e3 * (after.ru_stime - before.ru_stime) / n,
                 page_faults=(after.ru_minflt - before.ru_minflt) / n)
  return 1.0 / float(np.median(times))


def matmul_peak_gflops(n: int = 2048, steps: int = 10) -> float:
  """This machine's fp32 matmul rate: 2·n³ / the median time of an n×n `jnp.dot`."""
  import jax  # pylint: disable=g-import-not-at-top
  a, b = jax.random.normal(jax.random.key(0), (2, n, n), "float32")
  dot = jax.jit(jax.numpy.dot)
  return 2 * n ** 3 * median_rate(lambda: dot(a, b), steps, 2) / 1e9


def stepper(step, state, batch):
  """fn() for median_rate: one training step on a fixed batch, the (donated) state carried along."""
  def one():
    nonlocal state
    state, metrics = step(state, batch)
    return state, metrics
  return one


class Table:
  """Rows as aligned columns a person reads, or (as_json) one JSON object a line with every key."""

  def __init__(self, columns: Sequence[tuple[str, str, str]], as_json: bool):
    self.columns, self.as_json, self.rows = columns, as_json, 0  # (key, header, format spec)

  def add(self, row: dict) -> None:
    if self.as_json:
      print(json.dumps(row), flush=True)
      return
    cells = [format(row[k], f) if k in row else "-" for k, _, f in self.columns]
    just = [str.ljust if isinstance(row.get(k), str) else str.rjust for k, _, _ in self.columns]
    if not self.rows:
      self.widths = [max(len(h), len(c) + 2) for (_, h, _), c in zip(self.columns, cells)]
      header = " ".join(j(h, w) for (_, h, _), w, j in zip(self.columns, self.widths, just))
      print(f"{header}\n{'-' * len(header)}")
    print(" ".join(j(c, w) for c, w, j in zip(cells, self.widths, just)), flush=True)
    self.rows += 1


def note(text: str) -> None:
  """A line for people: stdout, or stderr when stdout is JSON lines."""
  print(text, file=sys.stderr if FLAGS.json else sys.stdout, flush=True)


def load_dataset(datasets, config):
  """datasets.load(config), its progress lines kept out of JSON output."""
  with contextlib.redirect_stdout(sys.stderr if FLAGS.json else sys.stdout):
    return datasets.load(config)
