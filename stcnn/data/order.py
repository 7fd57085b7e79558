"""The training order of videos: a whole epoch of grain's global shuffle at once.

`grain.MapDataset.range(V).shuffle(seed=s).repeat()[g]` is video `epoch_order(s, g // V, V)[g % V]`
(the randomness contract in `stcnn.data.pipeline`). Grain computes each index alone: a 4-round
Simon cipher on a block of B = max(16, ⌈log2(V - 1)⌉ rounded up to even) bits, cycle-walked until it
lands in [0, V), with round keys from C++'s `std::seed_seq{(s + epoch) mod 2^32}`. For a thousand
videos a walk is ~2^16 / V ≈ 70 encryptions, ~50 µs an index, a fifth of a training example's input
time. Here the same permutation is computed for all V indices at once in NumPy (a few ms an epoch).
`tests/test_pipeline.py` pins it against grain index by index.
"""
from __future__ import annotations

import math

import numpy as np

_ROUNDS = 4  # grain's ShuffleMapDataset
_MIN_BLOCK_BITS = 16
_MASK32 = 0xFFFFFFFF
_TABLE_BITS = 16  # the minimum block: walks of V << 2^16 are long, the table (512 KiB) is not


def _seed_seq(seed: int, n: int) -> list[int]:
  """`std::seed_seq{seed}.generate` of n 32-bit words (the C++ standard's algorithm)."""
  words, seeds = [0x8B8B8B8B] * n, [seed & _MASK32]
  s = len(seeds)
  t = 11 if n >= 623 else 7 if n >= 68 else 5 if n >= 39 else 3 if n >= 7 else (n - 1) // 2
  p, q, m = (n - t) // 2, (n - t) // 2 + t, max(s + 1, n)

  def mix(x):
    return x ^ (x >> 27)
  for k in range(m):
    r1 = 1664525 * mix(words[k % n] ^ words[(k + p) % n] ^ words[(k - 1) % n]) & _MASK32
    r2 = (r1 + (s if k == 0 else k % n + seeds[k - 1] if k <= s else k % n)) & _MASK32
    words[(k + p) % n] = (words[(k + p) % n] + r1) & _MASK32
    words[(k + q) % n] = (words[(k + q) % n] + r2) & _MASK32
    words[k % n] = r2
  for k in range(m, m + n):
    r3 = 1566083941 * mix((words[k % n] + words[(k + p) % n] + words[(k - 1) % n]) & _MASK32)
    r3 &= _MASK32
    r4 = (r3 - k % n) & _MASK32
    words[(k + p) % n] ^= r3
    words[(k + q) % n] ^= r4
    words[k % n] = r4
  return words


def _block_bits(max_index: int) -> int:
  bits = math.ceil(math.log2(max_index))
  return max(bits + bits % 2, _MIN_BLOCK_BITS)


def _encrypt(x: np.ndarray, keys: list[int], w: int) -> np.ndarray:
  """Simon on 2w-bit blocks (uint64 array), as grain's `simon_encrypt`."""
  mask = np.uint64((1 << w) - 1)

  def rotl(v, r):
    return ((v << np.uint64(r)) | (v >> np.uint64(w - r))) & mask

  def f(v):
    return (rotl(v, 1) & rotl(v, 8)) ^ rotl(v, 2)
  left, right = (x >> np.uint64(w)) & mask, x & mask
  for k1, k2 in zip(keys[::2], keys[1::2]):
    left = left ^ f(right) ^ np.uint64(k1 & ((1 << w) - 1))
    right = right ^ f(left) ^ np.uint64(k2 & ((1 << w) - 1))
  return (left << np.uint64(w)) | right


def epoch_order(seed: int, epoch: int, num_videos: int) -> np.ndarray:
  """int64 (num_videos,): the videos of epoch `epoch` in order, for grain shuffle seed `seed`."""
  if num_videos < 1:
    raise ValueError(f"num_videos must be >= 1, got {num_videos}")
  max_index = num_videos - 1
  if max_index == 0:
    return np.zeros(1, np.int64)
  bits = _block_bits(max_index)
  keys = _seed_seq((seed + epoch) % 2**32, _ROUNDS)
  # V = 4^j + 1 (j >= 8): index V - 1 does not fit the block, and grain encrypts its truncated
  # bits (those of index 0), as the walk below does: the same order, not a permutation.
  if bits <= _TABLE_BITS and max_index < 1 << bits:
    return _walk_by_table(_encrypt(np.arange(1 << bits, dtype=np.uint64), keys, bits // 2),
                          max_index)
  out = np.arange(num_videos, dtype=np.uint64)  # V > 2^(bits - 2): walks average < 4 steps
  walking = np.arange(num_videos)  # positions whose walk has not landed in [0, V) yet
  while walking.size:
    out[walking] = _encrypt(out[walking], keys, bits // 2)
    walking = walking[out[walking] > max_index]
  return out.astype(np.int64)


def _walk_by_table(cipher: np.ndarray, max_index: int) -> np.ndarray:
  """Cycle walks of 0..max_index through the cipher's whole table, by pointer jumping: `to[x]` is
  a point on x's walk and every point between them lies outside [0, max_index]; `landed[x]` once
  `to[x]` is the walk's end. Each round doubles the steps covered: ~log2(longest walk) rounds."""
  to = cipher.astype(np.int64)
  landed = to <= max_index
  n = max_index + 1
  while not landed[:n].all():
    to, landed = np.where(landed, to, to[to]), landed | landed[to]
  return to[:n]
