"""The trainer's speed figures are measured on executed steps, and input waits are told apart."""
import time

import jax
import jax.numpy as jnp
import numpy as np

from stcnn import throughput

BATCH = 8
DELAY = 0.05  # seconds: the slow side of each case


def _slow_iterator():
  while True:
    time.sleep(DELAY)
    yield np.ones((BATCH, 4), np.float32)


def _fast_iterator():
  while True:
    yield np.ones((BATCH, 4), np.float32)


@jax.jit
def _slow_step(state, batch):
  """~0.1 s of XLA work whose dispatch returns at once (JAX dispatches asynchronously)."""
  m = jnp.full((256, 256), 1e-3) + state[0]
  m = jax.lax.fori_loop(0, 150, lambda i, m: jnp.tanh(m @ m), m)
  return state + batch.sum() + m[0, :4], m.sum()


@jax.jit
def _fast_step(state, batch):
  return state + batch.sum(), state.sum()


def _run(iterator, step_fn, steps=12):
  """The trainer's loop: next_batch with the last output in flight, step, read at the end."""
  state, out = jnp.zeros((4,)), None
  meter = throughput.Throughput(BATCH, 0)
  state, out = step_fn(state, meter.next_batch(iterator, in_flight=out))  # compile, warm up
  meter.read(1, state)
  for step in range(2, steps + 2):
    state, out = step_fn(state, meter.next_batch(iterator, in_flight=out))
  return meter.read(steps + 1, state)


def test_slow_input_is_input_bound():
  r = _run(_slow_iterator(), _fast_step)
  assert 0.6 * BATCH / DELAY < r["clips_per_sec"] < 1.05 * BATCH / DELAY, r
  assert r["input_idle_fraction"] > 0.8, r


def test_slow_step_is_compute_bound_and_counted_when_executed():
  state, batch = jnp.zeros((4,)), np.ones((BATCH, 4), np.float32)
  jax.block_until_ready(_slow_step(state, batch))
  times = []
  for _ in range(5):  # one blocked step at a time; the fastest is the least disturbed by other work
    t0 = time.perf_counter()
    state, _ = jax.block_until_ready(_slow_step(state, batch))
    times.append(time.perf_counter() - t0)
  best = BATCH / min(times)  # clips/s the machine can execute at best
  t0 = time.perf_counter()
  for _ in range(3):
    state, _ = _slow_step(state, batch)
  dispatched = 3 * BATCH / (time.perf_counter() - t0)
  jax.block_until_ready(state)
  assert dispatched > 5 * best  # what a timer around the dispatch alone would report
  r = _run(_fast_iterator(), _slow_step)
  # Executed work cannot beat the best blocked step; a shared CI machine may make it slower.
  assert 0.3 * best < r["clips_per_sec"] < 1.2 * best, (r, best, times)
  assert r["input_idle_fraction"] < 0.2, r


def test_paused_time_is_not_training_time():
  meter = throughput.Throughput(BATCH, 0)
  with meter.paused():
    time.sleep(0.2)
  time.sleep(0.05)
  r = meter.read(1, jnp.zeros(()))
  assert BATCH / 0.1 < r["clips_per_sec"] < BATCH / 0.045, r
