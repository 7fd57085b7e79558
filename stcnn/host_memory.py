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
glibc.malloc.trim_threshold=2147483647` set before the process starts): no `mmap` for large
blocks, and freed memory kept for reuse (not returned to the system below 2 GB free at the top of
the heap). The process's resident memory then stays at its peak instead of falling between steps,
which is what a training process does anyway.

Not covered: a block larger than a thread arena's 64 MB heap is still mapped afresh (glibc), as at
paper size (full width, 170-178²): ~170,000 page faults a step for single-frame and multires, most
of them in blocks of 100-400 MB. Also keeping those (`glibc.malloc.arena_max=1`: every thread
allocates from the main heap) removed them all (multires paper-size step 1.45 → 1.20 s) but made
the small steps pay for the shared lock (multires `cpu` 1,578-1,573 against 1,806-2,020 clips/s),
so it is left to the environment: `GLIBC_TUNABLES=glibc.malloc.arena_max=1` before a paper-size
CPU run. Transparent huge pages (`glibc.malloc.hugetlb=1`) cut the faults 160× but still spend
10 ms (single-frame `cpu`) and 96 ms (multires paper) of system time a step.

Set `STCNN_KEEP_FREED_MEMORY=0` to leave the allocator as it is. Elsewhere than glibc (macOS, musl)
nothing changes.
"""
import ctypes
import os
import sys

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # glibc <malloc.h>
_SETTINGS = ((_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 2**31 - 1))
ENV = "STCNN_KEEP_FREED_MEMORY"


def keep_freed_memory() -> bool:
  """Makes glibc keep and reuse freed memory (see the module docstring); True when it did, False
  where it cannot (not glibc) or `STCNN_KEEP_FREED_MEMORY=0`. Idempotent."""
  if os.environ.get(ENV, "1") == "0" or not sys.platform.startswith("linux"):
    return False
  try:
    libc = ctypes.CDLL("libc.so.6")
    mallopt = libc.mallopt
  except (OSError, AttributeError):  # not glibc
    return False
  return all(mallopt(option, value) == 1 for option, value in _SETTINGS)
