"""What the trainer reports about speed, measured on executed work (JAX dispatches asynchronously).

  clips_per_sec        executed steps × global batch / wall time of the interval, read after
                       blocking on the interval's last step; evaluation time is left out (`paused`).
  input_idle_fraction  the fraction of that wall time the host spent blocked on the input iterator
                       while no step was queued (the last dispatched step had already finished when
                       the wait began, so the devices were idle for all of it). A wait that begins
                       while a step still runs counts as compute-bound, so this is a lower bound on
                       the time the devices starved.
"""
from __future__ import annotations

import contextlib
import time
from typing import Any, Iterator

import jax


class Throughput:
  """Meters one logging interval at a time: `next_batch`, `paused` and `read` (which resets)."""

  def __init__(self, batch_size: int, step: int, clock=time.perf_counter):
    self.batch_size = batch_size
    self._clock = clock
    self._reset(step)

  def _reset(self, step: int) -> None:
    self._step, self._start, self._idle, self._paused = step, self._clock(), 0.0, 0.0

  def next_batch(self, iterator: Iterator, in_flight: Any = None):
    """next(iterator), timing the wait as idle when `in_flight` (the last step's output, or None
    before the first step) is already computed."""
    idle = in_flight is None or all(x.is_ready() for x in jax.tree.leaves(in_flight))
    t0 = self._clock()
    batch = next(iterator)
    if idle:
      self._idle += self._clock() - t0
    return batch

  @contextlib.contextmanager
  def paused(self):
    """Time inside (evaluation) is not training time."""
    t0 = self._clock()
    try:
      yield
    finally:
      self._paused += self._clock() - t0

  def read(self, step: int, done: Any) -> dict[str, float]:
    """Blocks on `done` (the output of step `step`) and returns the interval's rates."""
    jax.block_until_ready(done)
    wall = max(self._clock() - self._start - self._paused, 1e-9)
    out = {"clips_per_sec": (step - self._step) * self.batch_size / wall,
           "input_idle_fraction": min(self._idle / wall, 1.0)}
    self._reset(step)
    return out
