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
