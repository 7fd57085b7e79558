"""How the process's host memory is reused: `keep_freed_memory()`, called first thing by every
command that runs jitted steps (train, evaluate, predict, bench, repro).

XLA:CPU allocates each step's buffers (activations, gradients, temporaries) with `malloc` and frees
them when the step ends. glibc serves a block above its mmap threshold (which adapts, up to 32 MB)
with a fresh `mmap` and unmaps it on `free`, so the next step touches new pages again: every 4 KB
page costs a page fault and the kernel zeroes it. Measured on the `cpu` training steps (2 cores,
batch 32, `resource.getrusage` around one step): the single-frame net took 9,000 page faults a
step (35 MB), 20-24 ms of system time beside 48-51 ms of user time; slow fusion 14,700 (58 MB,
~36 ms beside ~240-285). With the settings below the same steps take none and their system time
falls to 0 (`bench model`, `cpu` size, same minutes: single-frame training 1,212-1,265 clips/s
against 1,056-1,126, evaluation 4,432-5,783 views/s against 3,557-3,859; multires, which took no
faults, unchanged).

The settings (glibc `mallopt`; the same as `GLIBC_TUNABLES=glibc.malloc.mmap_max=0:
glibc.malloc.trim_threshold=18446744073709551615` set before the process starts): no `mmap` for
large blocks, and freed memory kept for reuse, never returned to the system (a threshold of 2 GB
left paper-size slow fusion, whose step frees more than that, re-faulting 330,000 pages a step:
13.7 against 11.3 clips/s). The process's resident memory then stays at its peak instead of
falling between steps, which is what a training process does anyway.

A thread's own arena grows by heaps of at most 64 MB and maps any larger block afresh whatever
the settings, and XLA:CPU allocates all of a step's temporaries as one block on its own threads.
The `cpu` steps stay below that (16-58 MB since conv1 uses XLA's convolution, `conv_impl_for`;
before, late fusion's 64.2 MB took 16,500 faults and 35 ms of system time a step); paper-size
steps do not (~630 MB, `strace`: one `mmap` and `munmap` of it a step on XLA's threads).
`keep_freed_memory(one_arena=True)` then puts every thread on the main arena (glibc's
`M_ARENA_MAX` = 1, the same as `GLIBC_TUNABLES=glibc.malloc.arena_max=1`), where the block is
reused. `one_arena_pays(configs)` says when: every network run has a layer whose float32
parameters outgrow a 64 MB heap (its gradient alone then does; the paper-size networks' fc1),
which the commands that run steps ask before jax starts its threads (train, evaluate, bench).
Measured 2026-12-07 (`bench model`'s `time_model`, paper size, 2 cores, batch 32): single-frame
training 35.5 → 42.4 clips/s (137,700 → 3,400 faults, 277 → 52 ms of system time a step),
multires 49.4 → 67.9 (154,800 → 0), their evaluation forwards 113 → 125 and 139 → 233 views/s.
Not at the `cpu` size: there the one arena's lock slows XLA's own threads and the input threads
of the training process (`bench model --sizes=cpu`: multires 3,256 and 4,371 → 2,629 and 3,432
clips/s; `bench train` end to end: fovea 5,394 and 4,917 → 4,794 and 4,339).
Transparent huge pages (`glibc.malloc.hugetlb=1`) cut the faults 160× but still spend 10 ms
(single-frame `cpu`) and 96 ms (multires paper) of system time a step.

Set `STCNN_KEEP_FREED_MEMORY=0` to leave the allocator as it is. Elsewhere than glibc (macOS, musl)
nothing changes.
"""
import ctypes
import os
import sys

_M_TRIM_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -4, -8  # glibc <malloc.h>
_SETTINGS = ((_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, -1))  # -1: never trim
ENV = "STCNN_KEEP_FREED_MEMORY"
THREAD_HEAP_BYTES = 64 * 2**20  # glibc's largest heap of a thread's arena (64-bit)


def keep_freed_memory(one_arena: bool = False) -> bool:
  """Makes glibc keep and reuse freed memory, with `one_arena` every thread's blocks in the main
  arena (see the module docstring: call it before jax starts its threads); True when it did, False
  where it cannot (not glibc) or `STCNN_KEEP_FREED_MEMORY=0`. Idempotent."""
  if os.environ.get(ENV, "1") == "0" or not sys.platform.startswith("linux"):
    return False
  try:
    libc = ctypes.CDLL("libc.so.6")
    mallopt = libc.mallopt
  except (OSError, AttributeError):  # not glibc
    return False
  settings = _SETTINGS + (((_M_ARENA_MAX, 1),) if one_arena else ())
  return all(mallopt(option, value) == 1 for option, value in settings)


def one_arena_pays(configs) -> bool:
  """Whether the networks of `configs` (all run by this process) are all big enough for
  `keep_freed_memory(one_arena=True)`: each has a layer with more than THREAD_HEAP_BYTES of float32
  parameters (`stcnn.summary`, shapes only: jax starts no thread). False for none, and for a
  config the summary cannot build (the command then reports what is wrong with it)."""
  from stcnn import summary  # pylint: disable=g-import-not-at-top
  configs = list(configs)
  try:
    return bool(configs) and all(
        4 * max(row[2] for row in summary.summarize(c)[0]) > THREAD_HEAP_BYTES for c in configs)
  except Exception:  # pylint: disable=broad-except  (a bad config is refused by its command)
    return False
