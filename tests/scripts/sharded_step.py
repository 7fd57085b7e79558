"""Three train steps on 1 device and on 4: prints `MAXDIFF <params> LOSS <1 device> <4 devices>`.

Run from the repository root as `python -m tests.scripts.sharded_step`, with
XLA_FLAGS=--xla_force_host_platform_device_count=4 and JAX_PLATFORMS=cpu.
"""
import os

import jax
import numpy as np

from stcnn import models, parallel, train
from tests.helpers import ROOT, load_config


def main():
  cfg = load_config(os.path.join(ROOT, "configs", "slow_fusion.py"), "tiny")
  cfg.model.dropout = 0.5
  model = models.build(cfg)
  rng = np.random.default_rng(0)
  batch = {"video": rng.normal(0, 50, (8, 10, 28, 28, 3)).astype(np.float32),
           "target": np.eye(8, dtype=np.float32)[rng.integers(0, 8, 8)]}
  batch["label"] = batch["target"].argmax(-1).astype(np.int32)
  out = []
  for devices in (jax.devices()[:1], jax.devices()):
    mesh = parallel.make_mesh(devices)
    repl = parallel.replicated(mesh)
    tx, plateau = train.make_optimizer(cfg, None), train.make_plateau(cfg)
    init = lambda: train.init_state(cfg, model, tx, plateau, (1, 10, 28, 28, 3))  # noqa: E731
    state = jax.jit(init, out_shardings=repl)()
    step = jax.jit(train.make_train_step(cfg, model, tx, None),
                   in_shardings=(repl, parallel.data_sharding(mesh)), out_shardings=(repl, repl))
    for _ in range(3):
      state, m = step(state, parallel.to_global(batch, mesh))
    out.append((jax.device_get(state.params), float(m["loss"])))
  assert len(jax.devices()) == 4
  diffs = jax.tree.leaves(jax.tree.map(lambda a, b: float(np.abs(a - b).max()),
                                       out[0][0], out[1][0]))
  print("MAXDIFF", max(diffs), "LOSS", out[0][1], out[1][1])


if __name__ == "__main__":
  main()
