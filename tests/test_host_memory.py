"""host_memory.keep_freed_memory: a jitted step's large buffers reuse memory instead of faulting in
new pages every call (measured by the kernel's page-fault count, not by time)."""
import os
import subprocess
import sys

import pytest

from stcnn import host_memory

_PROGRAM = """
import resource, sys
from stcnn import host_memory
print(host_memory.keep_freed_memory())
import jax, jax.numpy as jnp
step = jax.jit(lambda x: x * 2 + 1)  # a fresh 48 MB output each call, freed after
x = jnp.ones(12 * 2**20)
for _ in range(20):  # warm-up: compiled, the heap grown to its steady state (fragmentation)
  step(x).block_until_ready()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(4):
  step(x).block_until_ready()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _page_faults(keep: str) -> tuple[str, int]:
  out = subprocess.run([sys.executable, "-c", _PROGRAM], check=True, capture_output=True,
                       text=True, env={**os.environ, host_memory.ENV: keep,
                                       "JAX_PLATFORMS": "cpu"}).stdout.split()
  return out[0], int(out[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_freed_memory_is_reused_without_page_faults():
  applied, kept = _page_faults("1")
  assert applied == "True"
  # 4 calls × 48 MB = 49,152 pages of 4 KB when each call maps fresh memory (glibc maps any
  # block above 32 MB); ~none when reused.
  assert kept < 2_000
  applied, default = _page_faults("0")
  assert applied == "False"
  assert default > 25_000


def test_opt_out(monkeypatch):
  monkeypatch.setenv(host_memory.ENV, "0")
  assert host_memory.keep_freed_memory() is False


_THREAD_PROGRAM = """
import ctypes, resource, sys, threading
from stcnn import host_memory
host_memory.keep_freed_memory(one_arena=sys.argv[1] == "1")
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
faults = []

def work():  # as XLA's threads do: one block above a thread heap (64 MB) a step, freed after
  for i in range(6):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = libc.malloc(100 * 2**20)
    ctypes.memset(block, 1, 100 * 2**20)  # every page touched
    libc.free(block)
    if i >= 2:
      faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)

t = threading.Thread(target=work)
t.start()
t.join()
print(sum(faults))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_one_arena_reuses_a_threads_blocks_above_its_heap():
  def faults(one_arena):
    return int(subprocess.run([sys.executable, "-c", _THREAD_PROGRAM, one_arena], check=True,
                              capture_output=True, text=True).stdout)
  # 4 × 100 MB = 102,400 pages of 4 KB when each block is mapped afresh in the thread's arena
  assert faults("0") > 80_000
  assert faults("1") < 2_000


def test_one_arena_pays_for_paper_sized_networks_only():
  from tests.helpers import ROOT, load_config
  single = os.path.join(ROOT, "configs", "single_frame.py")
  paper, cpu = load_config(single, ""), load_config(single, "cpu")
  assert host_memory.one_arena_pays([paper])  # fc1: 9,216 × 4,096 float32 = 151 MB
  assert not host_memory.one_arena_pays([cpu])
  assert not host_memory.one_arena_pays([paper, cpu])  # the `cpu` steps would lose
  assert not host_memory.one_arena_pays([])
