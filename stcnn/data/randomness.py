"""The training examples' random draws: the one home of the randomness contract's streams.

Contract (docs/design.md, "Randomness"):
  * example g (= step · global batch + position) draws four uniforms in [0, 1), in the order of
    `DRAWS` (clip position, crop top, crop left, flip coin): row g mod BLOCK of
    `np.random.default_rng([seed, EXAMPLE_STREAM, g // BLOCK]).random((BLOCK, len(DRAWS)))`.
    So they are a function of (seed, g) only: not of the batch size, the process count or who
    computes the batch; and one generator serves BLOCK examples (its construction, ~20 µs, was a
    third of an example's input time when every example had its own).
  * the video order is grain's index shuffle seeded by SeedSequence([seed, SHUFFLE_STREAM]) plus
    the epoch (`shuffle_seed`, `stcnn.data.order`).
The streams never share entropy: SeedSequence pads with zeros, and [seed, 1] (the shuffle) differs
from every [seed, 2, k] in its second word.

An integer uniform over [0, n) is `uniform_index(u, n)` = floor(u · n) (bias below n · 2⁻⁵³).
"""
from __future__ import annotations

import numpy as np

SHUFFLE_STREAM = 1  # SeedSequence([seed, 1]): the video order (grain adds the epoch).
EXAMPLE_STREAM = 2  # default_rng([seed, 2, k]): the draws of examples [k·BLOCK, (k+1)·BLOCK).
BLOCK = 64  # examples per generator
DRAWS = ("position", "top", "left", "flip")  # the columns of `example_uniforms`, in draw order


def check_seed(seed) -> int:
  if not isinstance(seed, (int, np.integer)) or seed < 0:
    raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
  return int(seed)


def shuffle_seed(seed: int) -> int:
  """The seed of grain's video shuffle: SeedSequence([seed, 1]), never an example's stream."""
  return int(np.random.SeedSequence([check_seed(seed), SHUFFLE_STREAM]).generate_state(1)[0])


def example_uniforms(seed: int, first: int, count: int) -> np.ndarray:
  """float64 (count, len(DRAWS)): the uniforms of examples first … first + count - 1."""
  if first < 0 or count < 0:
    raise ValueError(f"examples {first} … {first + count - 1}: need first >= 0 and count >= 0")
  if count == 0:
    return np.empty((0, len(DRAWS)))
  lo, hi = first // BLOCK, (first + count - 1) // BLOCK
  rows = np.concatenate([
      np.random.default_rng([check_seed(seed), EXAMPLE_STREAM, k]).random((BLOCK, len(DRAWS)))
      for k in range(lo, hi + 1)])
  return rows[first - lo * BLOCK:first - lo * BLOCK + count]


def uniform_index(u: float, n: int) -> int:
  """floor(u · n): an integer uniform over [0, n) for u uniform in [0, 1) (n >= 1)."""
  return min(int(u * n), n - 1)  # u · n can round up to n when u is within 2⁻⁵³ of 1
