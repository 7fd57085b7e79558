"""Device mesh, shardings and multi-host set-up: the one home of parallelism.

Data parallel [choice, replacing the paper's asynchronous Downpour SGD]: one mesh axis "data" over
every device of every process; parameters and optimiser state are replicated, batches are split
along their first axis. Each process feeds its own slice of the global batch
(`jax.make_array_from_process_local_data`), as on TPU pods and GPU clusters.

Multi-host: `initialize()` calls `jax.distributed.initialize` when a coordinator is given (flags,
or the JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID environment, or a cluster that
JAX auto-detects such as TPU pods and SLURM); on CPU it selects gloo collectives.
"""
from __future__ import annotations

import os

import jax
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
import numpy as np

AXIS = "data"


def initialize(coordinator: str = "", num_processes: int = 0, process_id: int = -1) -> None:
  """Joins a multi-process run if one is configured; a no-op for a single process."""
  coordinator = coordinator or os.environ.get("JAX_COORDINATOR_ADDRESS", "")
  if not coordinator:
    return
  num_processes = num_processes or int(os.environ.get("JAX_NUM_PROCESSES", "0"))
  process_id = process_id if process_id >= 0 else int(os.environ.get("JAX_PROCESS_ID", "-1"))
  if jax.config.jax_platforms in (None, "", "cpu") or os.environ.get("JAX_PLATFORMS") == "cpu":
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(coordinator, num_processes or None,
                             process_id if process_id >= 0 else None)


def make_mesh(devices=None) -> Mesh:
  """A 1-D data-parallel mesh (Auto axes: jit propagates shardings) over all devices."""
  devices = jax.devices() if devices is None else devices
  return Mesh(np.asarray(devices), (AXIS,))


def data_sharding(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P(AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def check_batch(global_batch: int, mesh: Mesh, key: str = "config.batch_size") -> None:
  n = mesh.devices.size
  if global_batch % n or global_batch % jax.process_count():
    raise ValueError(f"{key} = {global_batch} must be divisible by the device count {n} and the "
                     f"process count {jax.process_count()}")


def to_global(local_batch: dict, mesh: Mesh) -> dict:
  """This process's slice of the global batch (numpy) → global jax.Arrays sharded over "data"."""
  sharding = data_sharding(mesh)
  return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, x), local_batch)


def sync(name: str) -> None:
  """A barrier across processes (no-op for one)."""
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices(name)
