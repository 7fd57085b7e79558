"""The `train` benchmark: the training loop's own pieces end to end, beside the step alone.

See stcnn.bench.
"""
from __future__ import annotations

import os
import tempfile
import time

from absl import flags

from stcnn.bench.model import trainer_step
from stcnn.bench.timing import Table, load_dataset, median_rate, note, stepper

FLAGS = flags.FLAGS


TRAIN_COLUMNS = (
    ("model", "network", "13"), ("size", "crop", "d"), ("width", "width", ".4g"),
    ("batch", "batch", "d"), ("workers", "workers", "d"),
    ("e2e_clips_per_s", "end-to-end clips/s", ".1f"),
    ("step_clips_per_s", "step alone clips/s", ".1f"), ("ratio", "ratio", ".2f"),
    ("input_wait_fraction", "input wait", ".1%"), ("input_idle_fraction", "idle (meter)", ".1%"))


def bench_train(argv) -> None:
  """The training loop's pieces end to end beside the step alone (see stcnn.bench's docstring)."""
  del argv
  import jax  # pylint: disable=g-import-not-at-top

  from stcnn import models, parallel, throughput, train  # pylint: disable=g-import-not-at-top
  from stcnn.data import datasets, pipeline  # pylint: disable=g-import-not-at-top
  config, steps, warmup = FLAGS.config, max(FLAGS.steps, 1), max(FLAGS.warmup, 1)
  mesh, t0 = parallel.make_mesh(), time.perf_counter()
  parallel.check_batch(config.batch_size, mesh)
  data = load_dataset(datasets, config)
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
  alone = b * median_rate(stepper(step, state, batch), steps, 1)
  m, wall = config.model, steps * b / e2e["clips_per_sec"]
  name = m.fusion if m.streams == "full" else "_".join([m.streams] + [m.fusion] * (
      m.fusion != "single"))
  Table(TRAIN_COLUMNS, FLAGS.json).add({
      "model": name, "size": size, "width": m.width, "batch": b, "workers": workers,
      "steps": steps, "e2e_clips_per_s": e2e["clips_per_sec"], "step_clips_per_s": alone,
      "ratio": e2e["clips_per_sec"] / alone, "input_wait_fraction": wait / wall,
      "input_idle_fraction": e2e.get("input_idle_fraction", float("nan"))})

