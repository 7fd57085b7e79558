"""The `model` benchmark: each network's training step and evaluation forward at each size.

The networks (MODELS) are the project's configs (configs/*.py) at a size preset (SIZES); the step
is the trainer's own (trainer_step, shared with the `train` benchmark). See stcnn.bench.
"""
from __future__ import annotations

import importlib
import os
import sys

from absl import app, flags

from stcnn.bench.timing import Table, matmul_peak_gflops, median_rate, note, stepper

FLAGS = flags.FLAGS
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # configs/
MODELS = {  # network → (configs/ file, its config arg)
    "single": ("single_frame", ""), "early": ("early_fusion", ""), "late": ("late_fusion", ""),
    "slow": ("slow_fusion", ""), "multires": ("multires", ""),
    "multires_slow": ("multires", "fusion=slow")}
SIZES = ("cpu", "paper", "tiny")  # configs/common.py VARIANTS


def define_network_flags() -> None:
  """--models, --sizes, --size, --width: which networks at which sizes (every CLI timing them)."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  flags.DEFINE_list("models", list(MODELS), f"Networks, of {list(MODELS)}.")
  flags.DEFINE_list("sizes", ["cpu", "paper"], f"Size presets, of {list(SIZES)}.")
  flags.DEFINE_integer("size", None, "Crop size for every network (default: the preset's).")
  flags.DEFINE_float("width", None, "Width multiplier for every network (default: the preset's).")


def model_config(name: str, size_preset: str = "cpu", *, size: int | None = None,
                 width: float | None = None, batch: int | None = None):
  """The project's config (configs/*.py) of network `name` (a MODELS key) at preset cpu | paper |
  tiny, with its crop, width and batch replaced when given."""
  if name not in MODELS or size_preset not in SIZES:
    raise ValueError(f"unknown network {name!r} or size {size_preset!r}; expected one of "
                     f"{list(MODELS)} and of {list(SIZES)}")
  if ROOT not in sys.path:
    sys.path.insert(0, ROOT)  # configs/*.py import configs.common
  file, arg = MODELS[name]
  preset = "" if size_preset == "paper" else size_preset
  config = importlib.import_module(f"configs.{file}").get_config(
      ",".join(a for a in (preset, arg) if a))
  config.model.input_size = size or config.model.input_size
  config.model.width = width or config.model.width
  config.batch_size = batch or config.batch_size
  return config


def network_configs(batch: int) -> list[tuple[str, str, object]]:
  """(size preset, network, config) of every network of --models at every size of --sizes (with
  --size, --width and `batch`), presets outermost: what `model` and benchmarks/compare_torch time.
  Raises app.UsageError naming an unknown network or size."""
  bad = [m for m in FLAGS.models if m not in MODELS] + [s for s in FLAGS.sizes if s not in SIZES]
  if bad:
    raise app.UsageError(f"unknown {bad}: --models of {list(MODELS)}, --sizes of {list(SIZES)}")
  return [(preset, name, model_config(name, preset, size=FLAGS.size, width=FLAGS.width,
                                      batch=batch))
          for preset in FLAGS.sizes for name in FLAGS.models]


def params_and_gflop(config) -> tuple[int, float]:
  """Parameters, and forward GFLOP per clip (stcnn.summary: convs and FC layers, 2 × MACs)."""
  from stcnn import summary  # pylint: disable=g-import-not-at-top
  _, n_params, flops = summary.summarize(config)
  return n_params, flops / 1e9


def trainer_step(config, model, clip: tuple[int, ...], mesh):
  """(state, step) made and jitted as train.py does (its shardings over `mesh`, state donated).
  `clip`: one example's video shape."""
  import jax  # pylint: disable=g-import-not-at-top

  from stcnn import parallel, train  # pylint: disable=g-import-not-at-top
  abstract = jax.eval_shape(
      lambda: model.init(jax.random.key(0), jax.numpy.zeros((1,) + clip))["params"])
  tx, plateau = train.make_optimizer(config, abstract), train.make_plateau(config)
  state = train.initial_state(config, model, tx, plateau, (1,) + clip, parallel.replicated(mesh))
  return state, train.jit_train_step(config, model, tx, model.hierarchy, mesh)


def _xla_flops(compiled) -> float:
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float((cost or {}).get("flops", float("nan")))


def time_model(name: str, config, *, steps: int = 10, warmup: int = 2, eval_batch: int = 128,
               eval_steps: int = 5, peak_gflops: float | None = None) -> dict:
  """One `model` row (see stcnn.bench's docstring) for network `name` with `config`."""
  import jax  # pylint: disable=g-import-not-at-top

  from stcnn import evaluate, models, parallel  # pylint: disable=g-import-not-at-top
  model, b, size = models.build(config), config.batch_size, config.model.input_size
  clip = (len(models.frame_offsets(config)), size, size, 3)  # the frames read, as fed by the data
  mesh = parallel.make_mesh(jax.devices()[:1])
  state, step = trainer_step(config, model, clip, mesh)
  k1, k2 = jax.random.split(jax.random.key(1))
  batch = {"video": 50 * jax.random.normal(k1, (b,) + clip),
           "target": jax.nn.one_hot(jax.random.randint(k2, (b,), 0, config.num_classes),
                                    config.num_classes)}
  if eval_steps > 0:  # first: the training steps donate (free) state.params
    predict = evaluate.jit_predict(model, mesh)
    video = 50 * jax.random.normal(k1, (eval_batch,) + clip)
    eval_rate = eval_batch * median_rate(lambda: predict(state.params, video), eval_steps, 1)
    del video
  step = step.lower(state, batch).compile()
  train_flops = _xla_flops(step)
  usage = {}
  rate = median_rate(stepper(step, state, batch), steps, warmup, usage)
  n_params, fwd_gflop = params_and_gflop(config)
  row = {"model": name, "size": size, "width": config.model.width, "batch": b, "params": n_params,
         "clips_per_s": b * rate, "step_ms": 1e3 / rate, "gflop_per_clip": fwd_gflop,
         "train_gflop_per_clip": train_flops / b / 1e9, "gflops_achieved": train_flops * rate / 1e9,
         "sys_ms_per_step": usage["sys_ms"], "page_faults_per_step": usage["page_faults"]}
  if peak_gflops:
    row.update(peak_gflops=peak_gflops, peak_fraction=row["gflops_achieved"] / peak_gflops)
  if eval_steps > 0:
    row.update(eval_batch=eval_batch, eval_views_per_s=eval_rate)
  return row


MODEL_COLUMNS = (
    ("model", "network", "13"), ("preset", "preset", ""), ("size", "crop", "d"),
    ("width", "width", ".4g"), ("batch", "batch", "d"), ("params", "params", ","),
    ("clips_per_s", "train clips/s", ".1f"),
    ("gflop_per_clip", "fwd GFLOP/clip", ".3f"),
    ("train_gflop_per_clip", "XLA train GFLOP/clip", ".3f"),
    ("gflops_achieved", "XLA GFLOP/s", ".1f"), ("peak_fraction", "of peak", ".1%"),
    ("sys_ms_per_step", "sys ms/step", ".1f"), ("page_faults_per_step", "faults/step", ",.0f"),
    ("eval_views_per_s", "eval views/s", ".1f"))


def bench_model(argv) -> None:
  """Training and evaluation speed of each network at each size (see stcnn.bench's docstring)."""
  del argv
  import jax  # pylint: disable=g-import-not-at-top
  configs = network_configs(FLAGS.batch_size)
  steps, warmup = FLAGS.steps, FLAGS.warmup
  peak = matmul_peak_gflops(FLAGS.peak_n)
  note(f"{jax.device_count()} × {jax.devices()[0].device_kind} ({os.cpu_count()} CPUs visible); "
       f"fp32 matmul peak {peak:.1f} GFLOP/s ({FLAGS.peak_n}² jnp.dot, median of 10); training "
       f"step: median of {steps} after {warmup}; eval: batch {FLAGS.eval_batch}, median of "
       f"{FLAGS.eval_steps}. GFLOP/s = XLA's count of the compiled training step / step time")
  table = Table(MODEL_COLUMNS, FLAGS.json)
  for preset, name, config in configs:
    row = time_model(name, config, steps=steps, warmup=warmup, eval_batch=FLAGS.eval_batch,
                     eval_steps=FLAGS.eval_steps, peak_gflops=peak)
    table.add({"preset": preset, **row})

