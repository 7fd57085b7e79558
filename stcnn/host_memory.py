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

Not covered: a thread's own arena grows by heaps of at most 64 MB and maps any larger block
afresh whatever the settings, and XLA:CPU allocates all of a step's temporaries as one block.
The `cpu` steps stay below that (16-58 MB since conv1 uses XLA's convolution, `conv_impl_for`;
before, late fusion's 64.2 MB took 16,500 faults and 35 ms of system time a step); every
paper-size step does not (~660 MB: ~170,000 faults a step for single-frame and multires). One
arena for all threads (`glibc.malloc.arena_max=1`) covers those too (measured before that conv1
change: late fusion 438, 560 → 663, 598 clips/s; multires slow fusion 300, 293 → 370, 334;
paper-size single-frame 22.7 → 24.5, multires 28.0 → 29.6) but every thread then shares one
lock: the training input's reader threads in the same process and PyTorch beside it in
`benchmarks/compare_torch.py` slowed (`bench train` end to end / step alone fell to 0.83-0.84
for early fusion, fovea and context; the PyTorch peer's single-frame step 1,082-1,282 → 806-854
clips/s), so it is left to the environment: `GLIBC_TUNABLES=glibc.malloc.arena_max=1` before
the process starts, for a paper-size CPU run.
Transparent huge pages (`glibc.malloc.hugetlb=1`) cut the faults 160× but still spend 10 ms
(single-frame `cpu`) and 96 ms (multires paper) of system time a step.

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
