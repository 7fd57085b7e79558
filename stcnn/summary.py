r"""Layer table of a config's network: output shape (with time), parameters, forward FLOPs per clip.

  python -m stcnn.summary --config=configs/slow_fusion.py [--config.num_classes=487]

FLOPs count multiply and add separately (2 × MACs) for convs and FC layers, per clip (batch 1);
LRN, pooling and ReLU are not counted. Nothing is computed: shapes come from `jax.eval_shape`.
"""
from __future__ import annotations

import io

from absl import app, flags
import jax
import jax.numpy as jnp
from ml_collections import config_flags
import numpy as np
from rich.console import Console
from rich.table import Table

from stcnn import console, models

CONV_ROWS = ("conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5", "pool5")


def summarize(config):
  """[(name, output shape without batch, params, flops)], total params, total flops."""
  model = models.build(config)
  size = config.model.input_size
  video = jax.ShapeDtypeStruct((1, model.num_frames, size, size, 3), jnp.float32)

  def init_and_run(v):
    params = model.init(jax.random.key(0), v)["params"]
    _, inter = model.apply({"params": params}, v, capture_intermediates=True,
                           mutable=["intermediates"])
    return params, inter["intermediates"]
  params, inter = jax.eval_shape(init_and_run, video)

  def out_shape(node):
    leaf = node["__call__"][0] if isinstance(node, dict) else node[0]
    return tuple(leaf.shape[1:])

  rows = []
  towers = [n for n in ("tower", "fovea", "context") if n in params]
  for tower in towers:
    for layer in CONV_ROWS:
      if layer not in inter[tower]:
        continue
      shape = out_shape(inter[tower][layer])
      n_params, flops = 0, 0
      if layer.startswith("conv"):
        kernel = params[tower][layer]["conv"]["kernel"].shape  # (f, f, kt·C, d)
        n_params = int(np.prod(kernel)) + kernel[-1]
        flops = 2 * int(np.prod(shape)) * int(np.prod(kernel[:3]))
      rows.append((f"{tower}/{layer}", shape, n_params, flops))
  for name in ("fc1", "fc2", "head"):
    p = params[name]["classifier"] if name == "head" else params[name]
    n_params = int(np.prod(p["kernel"].shape)) + p["bias"].shape[0]
    rows.append((name, out_shape(inter[name]), n_params, 2 * int(np.prod(p["kernel"].shape))))
  total_params = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params))
  return rows, total_params, sum(r[3] for r in rows)


def render(config, rows, total_params, total_flops) -> str:
  m = config.model
  table = Table(title=f"{m.fusion} fusion, {m.streams} streams, width {m.width}, "
                      f"input {models.num_frames(config)}×{m.input_size}×{m.input_size}×3, "
                      f"{config.num_classes} classes, head {m.head}")
  for col, justify in (("layer", "left"), ("output (T, H, W, C)", "left"), ("params", "right"),
                       ("GFLOPs", "right")):
    table.add_column(col, justify=justify)
  for name, shape, n_params, flops in rows:
    table.add_row(name, str(shape), f"{n_params:,}" if n_params else "", f"{flops / 1e9:.3f}")
  console = Console(width=100, record=True, file=io.StringIO(), color_system=None)
  console.print(table)
  return (console.export_text() +
          f"total params {total_params:,}, forward GFLOPs {total_flops / 1e9:.2f}")


def main(argv):
  console.quiet_libraries()
  del argv
  config = flags.FLAGS.config
  print(render(config, *summarize(config)))


if __name__ == "__main__":
  config_flags.DEFINE_config_file("config", None, "Config file (configs/X.py[:arg]).",
                                  lock_config=True)
  flags.mark_flags_as_required(["config"])
  app.run(main)
