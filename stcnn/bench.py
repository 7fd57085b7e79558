r"""Benchmarks, one subcommand each: `python -m stcnn.bench model|data|train [--flags] [--json]`.

A table a person reads, or with --json one JSON object a line (notes then go to stderr).

  model  each network (--models: single, early, late, slow, multires, multires_slow) at each size
         (--sizes: cpu = crop 54 full / 56 multires, width 0.25; paper = 170 / 178, width 1;
         tiny), configs from configs/*.py, or --size=CROP / --width=W for all. The trainer's own
         step (stcnn.train.make_train_step, jitted, state donated) on a fixed random batch:
         training clips/s = --batch / median step time (--steps after --warmup, each blocked on);
         forward GFLOP/clip (stcnn.summary: convs + FCs, 2 × MACs); achieved GFLOP/s = XLA's cost
         analysis of the compiled training step (padding taps not counted) / median step time,
         and as a fraction of the fp32 matmul peak measured in the same run (--peak_n² jnp.dot);
         eval views/s of the evaluator's jitted forward at batch --eval_batch (0 eval_steps: off).
  data   training input pipeline throughput: clips/s and clips/s per worker process and per CPU
         core, for each clip length (--num_frames) and worker count (--workers), batch --batch;
         then where one example's time goes (--stages): record read, JPEG decode, crop + flip,
         float conversion, collate, worker transfer. The source is an in-memory synthetic one of
         JPEG records (nothing on disk, --frame_size), or with --data=PATH a prepared data set's
         --split (ArrayRecord reads and record parsing included; its index is used when it has
         one), or with --prepared --config's data set (default: the synthetic `cpu` one,
         generated and cached on first use) at every network's clip: frames 0, 0..9, (0, 15).
  train  --steps steps of --config with the loop's own pieces: datasets.load, train_iterator
         (config.data.worker_count workers), parallel.to_global, the step jitted as train.py does,
         timed by the trainer's throughput meter; beside the step alone on a fixed batch (median,
         blocked, workers stopped), their ratio and the share of wall time spent getting batches.

    python -m stcnn.bench model [--sizes=cpu,paper] [--models=single,slow] [--size=N --width=W]
        [--batch=32] [--steps=10] [--warmup=2] [--eval_batch=128] [--eval_steps=5] [--json]
    python -m stcnn.bench data [--frame_size=200] [--workers=0,1,2] [--num_frames=1,10] [--steps=20]
    python -m stcnn.bench data --data=PATH [--split=train] [--crop_size=54]
    python -m stcnn.bench data --prepared [--config=configs/slow_fusion.py:cpu] [--workers=2]
    python -m stcnn.bench train [--config=configs/slow_fusion.py:cpu] [--steps=30] [--warmup=5]

Add a benchmark by writing `bench_NAME(argv)` and registering it in SUBCOMMANDS.
"""
from __future__ import annotations

import contextlib
import functools
import importlib
import json
import multiprocessing
import os
import sys
import tempfile
import time
from typing import Callable, Sequence

from absl import app
from absl import flags
import numpy as np

FLAGS = flags.FLAGS
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # configs/ lives here
MODELS = {  # network → (configs/ file, its config arg)
    "single": ("single_frame", ""), "early": ("early_fusion", ""), "late": ("late_fusion", ""),
    "slow": ("slow_fusion", ""), "multires": ("multires", ""),
    "multires_slow": ("multires", "fusion=slow")}
SIZES = ("cpu", "paper", "tiny")  # configs/common.py VARIANTS


def _define_flags():
  """Defined only when run as a program, so importing this module never clashes with other CLIs."""
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top
  if ROOT not in sys.path:
    sys.path.insert(0, ROOT)  # configs/*.py import configs.common
  flags.DEFINE_bool("json", False, "One JSON object a line instead of a table.")
  flags.DEFINE_integer("steps", None, "Timed steps (default: model 10, data 20, train 30).")
  flags.DEFINE_integer("warmup", None, "Untimed steps first (default: model 2, data 3, train 5).")
  flags.DEFINE_integer("batch_size", 32, "Global batch size (clips).")
  flags.DEFINE_alias("batch", "batch_size")
  config_flags.DEFINE_config_file("config", os.path.join(ROOT, "configs/slow_fusion.py") + ":cpu",
                                  "train, data --prepared: configs/X.py[:arg].", lock_config=True)
  # model
  flags.DEFINE_list("models", list(MODELS), f"Networks, of {list(MODELS)}.")
  flags.DEFINE_list("sizes", ["cpu", "paper"], f"Size presets, of {list(SIZES)}.")
  flags.DEFINE_integer("size", None, "Crop size for every network (default: the preset's).")
  flags.DEFINE_float("width", None, "Width multiplier for every network (default: the preset's).")
  flags.DEFINE_integer("eval_batch", 128, "Evaluation forward batch (views).")
  flags.DEFINE_integer("eval_steps", 5, "Timed evaluation batches (0: no evaluation timing).")
  flags.DEFINE_integer("peak_n", 2048, "Side of the fp32 matmul timed for the peak.")
  # data
  flags.DEFINE_string("data", None, "A prepared data set (builder dir) instead of the synthetic "
                      "in-memory source.")
  flags.DEFINE_bool("prepared", False, "Read --config's prepared data set at every network's clip.")
  flags.DEFINE_string("split", "train", "--data, --prepared: the split to read.")
  flags.DEFINE_bool("stages", True, "Also time the stages of one example.")
  flags.DEFINE_integer("frame_size", 200, "Stored frame size of the synthetic records.")
  flags.DEFINE_integer("crop_size", None, "Crop (default: crop_size_for(frame_size)).")
  flags.DEFINE_list("workers", ["0", "1", "2"], "Worker process counts (0: in-process).")
  flags.DEFINE_list("num_frames", ["1", "10"], "Clip lengths.")
  flags.DEFINE_integer("read_threads", 2, "Reader threads per process (one batch each).")
  flags.DEFINE_integer("records", 16, "Synthetic records (segments) in the source.")
  flags.DEFINE_integer("record_frames", 40, "Frames per synthetic record.")


# ----------------------------------------------------------------------------------- shared helpers
def median_rate(fn: Callable[[], object], steps: int, warmup: int) -> float:
  """Calls a second: 1 / the median wall time of `steps` calls of fn() after `warmup` untimed ones.

  Every call's result is blocked on (jax.block_until_ready) before the clock is read.
  """
  import jax  # pylint: disable=g-import-not-at-top
  for _ in range(warmup):
    jax.block_until_ready(fn())
  times = []
  for _ in range(max(steps, 1)):
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - t0)
  return 1.0 / float(np.median(times))


class Table:
  """Rows as aligned columns a person reads, or (as_json) one JSON object a line with every key."""

  def __init__(self, columns: Sequence[tuple[str, str, str]], as_json: bool):
    self.columns, self.as_json, self.rows = columns, as_json, 0  # (key, header, format spec)

  def add(self, row: dict) -> None:
    if self.as_json:
      print(json.dumps(row), flush=True)
      return
    cells = [format(row[k], f) if k in row else "-" for k, _, f in self.columns]
    just = [str.ljust if isinstance(row.get(k), str) else str.rjust for k, _, _ in self.columns]
    if not self.rows:
      self.widths = [max(len(h), len(c) + 2) for (_, h, _), c in zip(self.columns, cells)]
      header = " ".join(j(h, w) for (_, h, _), w, j in zip(self.columns, self.widths, just))
      print(f"{header}\n{'-' * len(header)}")
    print(" ".join(j(c, w) for c, w, j in zip(cells, self.widths, just)), flush=True)
    self.rows += 1


def note(text: str) -> None:
  """A line for people: stdout, or stderr when stdout is JSON lines."""
  print(text, file=sys.stderr if FLAGS.json else sys.stdout, flush=True)


def _load(datasets, config):
  """datasets.load(config), its progress lines kept out of JSON output."""
  with contextlib.redirect_stdout(sys.stderr if FLAGS.json else sys.stdout):
    return datasets.load(config)


# -------------------------------------------------------------------------------------------- model
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


def params_and_gflop(config) -> tuple[int, float]:
  """Parameters, and forward GFLOP per clip (stcnn.summary: convs and FC layers, 2 × MACs)."""
  from stcnn import summary  # pylint: disable=g-import-not-at-top
  _, n_params, flops = summary.summarize(config)
  return n_params, flops / 1e9


def matmul_peak_gflops(n: int = 2048, steps: int = 10) -> float:
  """This machine's fp32 matmul rate: 2·n³ / the median time of an n×n `jnp.dot`."""
  import jax  # pylint: disable=g-import-not-at-top
  a, b = jax.random.normal(jax.random.key(0), (2, n, n), "float32")
  dot = jax.jit(jax.numpy.dot)
  return 2 * n ** 3 * median_rate(lambda: dot(a, b), steps, 2) / 1e9


def trainer_step(config, model, clip: tuple[int, ...], mesh):
  """(state, step) made and jitted as train.py does (its shardings over `mesh`, state donated).
  `clip`: one example's video shape."""
  import jax  # pylint: disable=g-import-not-at-top
  from stcnn import parallel, train  # pylint: disable=g-import-not-at-top
  abstract = jax.eval_shape(
      lambda: model.init(jax.random.key(0), jax.numpy.zeros((1,) + clip))["params"])
  tx, plateau = train.make_optimizer(config, abstract), train.make_plateau(config)
  repl = parallel.replicated(mesh)
  state = jax.jit(lambda: train.init_state(config, model, tx, plateau, (1,) + clip),
                  out_shardings=repl)()
  return state, jax.jit(train.make_train_step(config, model, tx, model.hierarchy),
                        in_shardings=(repl, parallel.data_sharding(mesh)),
                        out_shardings=(repl, repl), donate_argnums=0)


def _xla_flops(compiled) -> float:
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float((cost or {}).get("flops", float("nan")))


def _stepper(step, state, batch):
  """fn() for median_rate: one training step on a fixed batch, the (donated) state carried along."""
  def one():
    nonlocal state
    state, metrics = step(state, batch)
    return state, metrics
  return one


def time_model(name: str, config, *, steps: int = 10, warmup: int = 2, eval_batch: int = 128,
               eval_steps: int = 5, peak_gflops: float | None = None) -> dict:
  """One `model` row (see the module docstring) for network `name` with `config`."""
  import jax  # pylint: disable=g-import-not-at-top
  from stcnn import models, parallel  # pylint: disable=g-import-not-at-top
  model, b, size = models.build(config), config.batch_size, config.model.input_size
  clip = (len(models.frame_offsets(config)), size, size, 3)  # the frames read, as fed by the data
  state, step = trainer_step(config, model, clip, parallel.make_mesh(jax.devices()[:1]))
  k1, k2 = jax.random.split(jax.random.key(1))
  batch = {"video": 50 * jax.random.normal(k1, (b,) + clip),
           "target": jax.nn.one_hot(jax.random.randint(k2, (b,), 0, config.num_classes),
                                    config.num_classes)}
  if eval_steps > 0:  # first: the training steps donate (free) state.params
    predict = jax.jit(lambda p, v: jax.nn.softmax(model.apply({"params": p}, v, train=False)))
    video = 50 * jax.random.normal(k1, (eval_batch,) + clip)
    eval_rate = eval_batch * median_rate(lambda: predict(state.params, video), eval_steps, 1)
    del video
  step = step.lower(state, batch).compile()
  train_flops = _xla_flops(step)
  rate = median_rate(_stepper(step, state, batch), steps, warmup)
  n_params, fwd_gflop = params_and_gflop(config)
  row = {"model": name, "size": size, "width": config.model.width, "batch": b, "params": n_params,
         "clips_per_s": b * rate, "step_ms": 1e3 / rate, "gflop_per_clip": fwd_gflop,
         "train_gflop_per_clip": train_flops / b / 1e9, "gflops_achieved": train_flops * rate / 1e9}
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
    ("eval_views_per_s", "eval views/s", ".1f"))


def bench_model(argv) -> None:
  """Training and evaluation speed of each network at each size (see module docstring)."""
  del argv
  import jax  # pylint: disable=g-import-not-at-top
  bad = [m for m in FLAGS.models if m not in MODELS] + [s for s in FLAGS.sizes if s not in SIZES]
  if bad:
    raise app.UsageError(f"unknown {bad}: --models of {list(MODELS)}, --sizes of {list(SIZES)}")
  steps, warmup = FLAGS.steps, FLAGS.warmup
  peak = matmul_peak_gflops(FLAGS.peak_n)
  note(f"{jax.device_count()} × {jax.devices()[0].device_kind} ({os.cpu_count()} CPUs visible); "
       f"fp32 matmul peak {peak:.1f} GFLOP/s ({FLAGS.peak_n}² jnp.dot, median of 10); training "
       f"step: median of {steps} after {warmup}; eval: batch {FLAGS.eval_batch}, median of "
       f"{FLAGS.eval_steps}. GFLOP/s = XLA's count of the compiled training step / step time")
  table = Table(MODEL_COLUMNS, FLAGS.json)
  for preset in FLAGS.sizes:
    for name in FLAGS.models:
      config = model_config(name, preset, size=FLAGS.size, width=FLAGS.width,
                            batch=FLAGS.batch_size)
      row = time_model(name, config, steps=steps, warmup=warmup, eval_batch=FLAGS.eval_batch,
                       eval_steps=FLAGS.eval_steps, peak_gflops=peak)
      table.add({"preset": preset, **row})


# --------------------------------------------------------------------------------------------- data
def synthetic_source(num_records: int = 16, num_frames: int = 40, frame_size: int = 200,
                     num_classes: int = 487, seed: int = 0) -> list[dict]:
  """In-memory records of the data contract with JPEG frames of smooth moving colour blobs.

  Smooth content gives JPEGs of a realistic size and decode cost (random noise would not).
  """
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from stcnn.data import video_io  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(seed)
  records = []
  for i in range(num_records):
    big = frame_size + num_frames
    base = Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8))
    scene = np.asarray(base.resize((big, big), Image.BILINEAR))
    frames = []
    for t in range(num_frames):  # The camera pans one pixel a frame, plus sensor noise.
      frame = scene[t:t + frame_size, t:t + frame_size].astype(np.int16)
      frame += rng.integers(-6, 7, frame.shape, dtype=np.int16)
      frames.append(video_io.encode_jpeg(np.clip(frame, 0, 255).astype(np.uint8)))
    records.append({"video_id": f"synthetic{i:04d}".encode(),
                    "labels": np.array([i % num_classes], np.int64), "frames": frames,
                    "segment": 0, "num_segments": 1, "fps": np.float32(25)})
  return records


def _cpu_seconds() -> float:
  """CPU time of this process and its live children (Linux /proc; else this process only)."""
  total = time.process_time()
  tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
  for child in multiprocessing.active_children():
    try:
      with open(f"/proc/{child.pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
      total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    except (OSError, IndexError, ValueError):
      pass
  return total


def _time_pipeline(source, *, offsets, crop_size, batch_size, workers, read_threads, steps,
                   warmup, num_classes=487, index=None) -> dict:
  from stcnn.data import pipeline  # pylint: disable=g-import-not-at-top
  it = pipeline.train_iterator(source, num_frames=len(offsets), crop_size=crop_size,
                               num_classes=num_classes, global_batch_size=batch_size, seed=0,
                               worker_count=workers, read_threads=read_threads,
                               frame_offsets=offsets, index=index)
  try:
    for _ in range(warmup):
      next(it)
    cpu, wall = _cpu_seconds(), time.perf_counter()
    for _ in range(steps):
      batch = next(it)
    wall, cpu = time.perf_counter() - wall, _cpu_seconds() - cpu
  finally:
    if hasattr(it, "close"):
      it.close()
  assert batch["video"].shape == (batch_size, len(offsets), crop_size, crop_size, 3)
  clips = steps * batch_size
  return {"clips_per_s": clips / wall, "per_worker": clips / wall / max(workers, 1),
          "cores": cpu / wall, "per_core": clips / max(cpu, 1e-9)}


def _timed(fn, reps: int) -> float:
  """Best mean seconds per call of fn(i) over 3 rounds of `reps` calls (robust to other load)."""
  best = float("inf")
  for _ in range(3):
    t0 = time.perf_counter()
    for i in range(reps):
      fn(i)
    best = min(best, (time.perf_counter() - t0) / reps)
  return best


def stage_times(source, *, num_frames: int, crop_size: int, batch_size: int,
                num_classes: int = 487, index=None, reps: int = 64,
                frame_offsets: Sequence[int] | None = None) -> dict[str, float]:
  """Seconds per training example of each stage of the pipeline, in this process.

  record read (source[i], random i), JPEG decode (a clip's frames), crop + flip, float conversion
  (`normalize`, in the consuming process), collate (stacking a batch), worker transfer (grain's
  copy of a uint8 batch into shared memory and back, as mp_prefetch does), and 'example' = the
  whole `_train_example` (read, decode, crop, flip) for comparison.
  """
  from stcnn.data import pipeline  # pylint: disable=g-import-not-at-top
  from stcnn.data import sampling  # pylint: disable=g-import-not-at-top
  from stcnn.data import transforms  # pylint: disable=g-import-not-at-top
  offsets = tuple(range(num_frames) if frame_offsets is None else frame_offsets)
  span = sampling.clip_span(offsets)
  table = pipeline.video_table(source, index=index)
  rng = np.random.default_rng(0)
  which = rng.integers(0, len(source), reps)
  records = [source[int(i)] for i in which[:16]]
  starts = [int(rng.integers(0, max(len(r["frames"]) - span, 0) + 1)) for r in records]
  clips = [sampling.read_clip(r, s, offsets) for r, s in zip(records, starts)]
  crops = [transforms.random_augment(rng, c, crop_size) for c in clips]
  batch = np.stack([crops[i % len(crops)] for i in range(batch_size)])
  times = {
      "record read": _timed(lambda i: source[int(which[i])], reps),
      "JPEG decode": _timed(lambda i: sampling.read_clip(records[i % 16], starts[i % 16],
                                                         offsets), reps),
      "crop + flip": _timed(lambda i: transforms.random_augment(rng, clips[i % 16], crop_size),
                            reps),
      "float conversion": _timed(lambda i: transforms.normalize(batch), 4) / batch_size,
      "collate": _timed(lambda i: np.stack([crops[j % 16] for j in range(batch_size)]),
                        4) / batch_size,
  }
  try:  # grain internals: what mp_prefetch does to a batch (worker: copy in; main: open, free).
    from grain._src.python.ipc import shared_memory_array as shm  # pylint: disable=g-import-not-at-top
    sent = {"video": batch, "target": np.zeros((batch_size, num_classes), np.float32)}

    def transfer(_):
      out = shm.open_from_shm(shm.copy_to_shm(sent))
      shm.unlink_shm(out)
    times["worker transfer"] = _timed(transfer, 4) / batch_size
  except Exception:  # pylint: disable=broad-except
    pass
  example = functools.partial(
      pipeline._train_example, source=source, starts=table.starts, records=table.records,  # pylint: disable=protected-access
      frames=table.frames, seed=0, offsets=offsets, crop_size=crop_size,
      num_classes=num_classes, flip=True)
  times["example (all of it)"] = _timed(lambda i: example(i, i % table.num_videos), reps)
  return times


def _describe(source, index) -> str:
  """Records, frames per record and mean JPEG size (from up to 8 records spread over the source)."""
  sample = [source[int(i)] for i in np.linspace(0, len(source) - 1, min(8, len(source)))]
  kib = np.mean([len(f) for r in sample for f in r["frames"]]) / 1024
  frames = (np.mean([e["num_frames"] for e in index]) if index is not None else
            np.mean([len(r["frames"]) for r in sample]))
  return (f"{len(source)} records, mean {frames:.0f} frames each "
          f"({'index' if index is not None else 'no index: scanned'}), JPEG frames mean "
          f"{kib:.1f} KiB")


def _clip_name(offsets) -> str:
  """'10' for frames 0..9; '0,15' for late fusion's two."""
  contiguous = tuple(offsets) == tuple(range(len(offsets)))
  return str(len(offsets)) if contiguous else ",".join(map(str, offsets))


DATA_COLUMNS = (
    ("frames", "frames", ""), ("workers", "workers", "d"), ("clips_per_s", "clips/s", ".1f"),
    ("per_worker", "clips/s/worker", ".1f"), ("cores", "cores busy", ".2f"),
    ("per_core", "clips/s/core", ".1f"))


def bench_data(argv) -> None:
  """Training input pipeline throughput and stage times (see module docstring)."""
  del argv
  from stcnn.data import transforms  # pylint: disable=g-import-not-at-top
  if FLAGS.data and FLAGS.prepared:
    raise app.UsageError("--data=PATH and --prepared (--config's data set): give one")
  steps, warmup, t0 = FLAGS.steps, FLAGS.warmup, time.perf_counter()
  index, num_classes, crop = None, 487, FLAGS.crop_size
  clips = [tuple(range(int(n))) for n in FLAGS.num_frames]
  if FLAGS.data or FLAGS.prepared:
    from stcnn.data import builders, datasets  # pylint: disable=g-import-not-at-top
    data = builders.load(FLAGS.data) if FLAGS.data else _load(datasets, FLAGS.config)
    source, index = data.source(FLAGS.split), data.index(FLAGS.split)
    num_classes, frame_size = data.num_classes, data.frame_size
    what = f"{data.builder_dir} [{FLAGS.split}]: {_describe(source, index)}"
    if FLAGS.prepared:  # every network's clip (single, early, late, slow), the config's crop
      import ml_collections  # pylint: disable=g-import-not-at-top
      from stcnn import models  # pylint: disable=g-import-not-at-top
      clips = []
      for fusion in ("single", "early", "late", "slow"):
        config = ml_collections.ConfigDict(FLAGS.config.to_dict())
        config.model.fusion = fusion
        clips += [models.frame_offsets(config)] * (models.frame_offsets(config) not in clips)
      crop = crop or FLAGS.config.model.input_size
  else:
    frame_size = FLAGS.frame_size
    source = synthetic_source(FLAGS.records, FLAGS.record_frames, frame_size)
    what = f"synthetic in-memory source: {_describe(source, None)}"
  crop = crop or transforms.crop_size_for(frame_size)
  note(f"{what}, {frame_size}x{frame_size}, opened in {time.perf_counter() - t0:.1f}s; "
       f"crop {crop}, batch {FLAGS.batch_size}, {steps} timed steps after {warmup}, "
       f"{FLAGS.read_threads} reader threads per process, {os.cpu_count()} CPUs visible")
  table = Table(DATA_COLUMNS, FLAGS.json)
  for offsets in clips:
    for workers in map(int, FLAGS.workers):
      r = _time_pipeline(source, offsets=offsets, crop_size=crop, batch_size=FLAGS.batch_size,
                         workers=workers, read_threads=FLAGS.read_threads, steps=steps,
                         warmup=warmup, num_classes=num_classes, index=index)
      table.add({"frames": _clip_name(offsets), "frame_offsets": list(offsets), "crop": crop,
                 "batch": FLAGS.batch_size, "workers": workers, **r})
  if not FLAGS.stages:
    return
  for offsets in clips:
    times = stage_times(source, num_frames=len(offsets), crop_size=crop, frame_offsets=offsets,
                        batch_size=FLAGS.batch_size, num_classes=num_classes, index=index)
    if FLAGS.json:
      print(json.dumps({"stages": _clip_name(offsets), "seconds_per_example": times}), flush=True)
      continue
    total = sum(v for k, v in times.items() if not k.startswith("example"))
    what = (f"{len(offsets)}-frame example" if "," not in _clip_name(offsets) else
            f"example of frames {_clip_name(offsets)}")
    print(f"\none {what}, in one process (best of 3; µs):")
    for name, seconds in times.items():
      share = "" if name.startswith("example") else f" {100 * seconds / total:5.1f}%"
      print(f"  {name:<22} {1e6 * seconds:9.1f}{share}")


# -------------------------------------------------------------------------------------------- train
TRAIN_COLUMNS = (
    ("model", "network", "13"), ("size", "crop", "d"), ("width", "width", ".4g"),
    ("batch", "batch", "d"), ("workers", "workers", "d"),
    ("e2e_clips_per_s", "end-to-end clips/s", ".1f"),
    ("step_clips_per_s", "step alone clips/s", ".1f"), ("ratio", "ratio", ".2f"),
    ("input_wait_fraction", "input wait", ".1%"), ("input_idle_fraction", "idle (meter)", ".1%"))


def bench_train(argv) -> None:
  """The training loop's pieces end to end beside the step alone (see module docstring)."""
  del argv
  import jax  # pylint: disable=g-import-not-at-top
  from stcnn import models, parallel, throughput, train  # pylint: disable=g-import-not-at-top
  from stcnn.data import datasets, pipeline  # pylint: disable=g-import-not-at-top
  config, steps, warmup = FLAGS.config, max(FLAGS.steps, 1), max(FLAGS.warmup, 1)
  mesh, t0 = parallel.make_mesh(), time.perf_counter()
  parallel.check_batch(config.batch_size, mesh)
  data = _load(datasets, config)
  with tempfile.TemporaryDirectory() as workdir:  # a tree head's hierarchy.json, as train.py
    config = train.resolve_hierarchy(config, data, workdir)
    model = models.build(config)
  train.check_config(config, data)
  offsets, size, b = models.frame_offsets(config), config.model.input_size, config.batch_size
  split, workers = config.data.train_split, config.data.worker_count
  it = pipeline.train_iterator(
      data.source(split), num_frames=len(offsets), crop_size=size,
      num_classes=config.num_classes, global_batch_size=b, seed=config.seed,
      process_index=jax.process_index(), process_count=jax.process_count(),
      worker_count=workers, mean=config.data.mean, frame_offsets=offsets,
      index=data.index(split))
  state, step = trainer_step(config, model, (len(offsets), size, size, 3), mesh)
  note(f"{data.builder_dir} [{split}] (ready in {time.perf_counter() - t0:.1f}s), {workers} "
       f"workers, {jax.device_count()} × {jax.devices()[0].device_kind}, {os.cpu_count()} CPUs "
       f"visible; {steps} steps after {warmup}")
  try:
    for _ in range(warmup):  # compilation, worker start-up, buffers
      state, metrics = step(state, parallel.to_global(next(it), mesh))
    jax.block_until_ready((state, metrics))
    meter, wait = throughput.Throughput(b, 0), 0.0  # the trainer's meter, read after the last step
    for _ in range(steps):  # as the loop runs: dispatch, no block until the end
      t0 = time.perf_counter()
      batch = parallel.to_global(meter.next_batch(it, in_flight=metrics), mesh)
      wait += time.perf_counter() - t0
      state, metrics = step(state, batch)
    e2e = meter.read(steps, (state, metrics))
  finally:
    getattr(it, "close", lambda: None)()  # stops the workers before the step is timed alone
  alone = b * median_rate(_stepper(step, state, batch), steps, 1)
  m, wall = config.model, steps * b / e2e["clips_per_sec"]
  name = m.fusion if m.streams == "full" else "_".join([m.streams] + [m.fusion] * (
      m.fusion != "single"))
  Table(TRAIN_COLUMNS, FLAGS.json).add({
      "model": name, "size": size, "width": m.width, "batch": b, "workers": workers,
      "steps": steps, "e2e_clips_per_s": e2e["clips_per_sec"], "step_clips_per_s": alone,
      "ratio": e2e["clips_per_sec"] / alone, "input_wait_fraction": wait / wall,
      "input_idle_fraction": e2e.get("input_idle_fraction", float("nan"))})


SUBCOMMANDS: dict[str, Callable[[list[str]], None]] = {
    "model": bench_model, "data": bench_data, "train": bench_train}
STEPS = {"model": (10, 2), "data": (20, 3), "train": (30, 5)}  # default --steps, --warmup


def main(argv):
  if len(argv) < 2 or argv[1] not in SUBCOMMANDS:
    raise app.UsageError(f"usage: python -m stcnn.bench {{{','.join(SUBCOMMANDS)}}} [--flags]; "
                         f"got {argv[1:]}")
  steps, warmup = STEPS.get(argv[1], (20, 3))
  FLAGS.steps, FLAGS.warmup = FLAGS.steps or steps, warmup if FLAGS.warmup is None else FLAGS.warmup
  SUBCOMMANDS[argv[1]](argv[2:])


if __name__ == "__main__":
  _define_flags()
  app.run(main)
