"""How the process's host memory is reused: `keep_freed_memory()`, called first thing by every
command that runs jitted steps (train, evaluate, predict, bench, repro).

XLA:CPU allocates each step's buffers (activations, gradients, temporaries) with `malloc` and frees
them when the step ends. glibc serves a large allocation with a fresh `mmap` (always above 32 MB,
and from any thread's own arena above 64 MB) and unmaps it on `free`, so the next step touches new
pages again: every 4 KB page costs a page fault and the kernel zeroes it. Measured on the `cpu`
training steps (2 cores, batch 32, `resource.getrusage` around one step): the single-frame net
took 9,000 page faults a step (35 MB), 20-24 ms of system time beside 48-51 ms of user time; slow
fusion 14,700 (58 MB, ~36 ms beside ~240-285); at paper size single-frame and multires 166,000 and
173,000 (~660 MB) a step. With the settings below the same steps take none and the system time
falls to 0.

The settings (glibc `mallopt`; the same as `GLIBC_TUNABLES=glibc.malloc.arena_max=1:
glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=2147483647` set before the process starts):
one malloc arena for all threads (a thread arena would still `mmap` what exceeds its 64 MB heap),
no `mmap` for large blocks, and freed memory kept (not returned to the system below 2 GB free at the
top of the heap). The process's resident memory then stays at its peak instead of falling between
steps, which is what a training process does anyway. Peak resident memory measured alike: paper-size
multires training 3.07 GB against 3.10, `bench train` of single-frame `cpu` 1.06-1.13 GB against
1.03-1.05. A program that frees and reallocates one large buffer per call holds a few spare copies
once fragmented (a 64 MB output: 0.74 GB resident against 0.28).

Alternatives measured: `mmap_max=0` alone leaves the paper-size steps' blocks above 64 MB mapped
afresh (172,000 faults a multires step, 0.43 s of system time); glibc's transparent huge pages
(`glibc.malloc.hugetlb=1`, only settable before the process starts) cut the faults 160× but still
spend 10 ms (single-frame `cpu`) and 96 ms (multires paper) of system time a step.

Set `STCNN_KEEP_FREED_MEMORY=0` to leave the allocator as it is. Elsewhere than glibc (macOS, musl)
nothing changes. It must run before XLA starts its threads (before the first jax computation): a
thread that already has its own arena keeps it.
"""
import ctypes
import os
import sys

_M_TRIM_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -4, -8  # glibc <malloc.h>
_SETTINGS = ((_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 2**31 - 1))
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
