"""The `train` benchmark: the training loop's own pieces end to end, beside the step alone.

See stcnn.bench.
"""
from __future__ import annotations

import os
import tempfile
import time

from absl import flags
import numpy as np

from stcnn.bench.model import trainer_step
from stcnn.bench.timing import Table, load_dataset, note

FLAGS = flags.FLAGS


TRAIN_COLUMNS = (
    ("model", "network", "13"), ("size", "crop", "d"), ("width", "width", ".4g"),
    ("batch", "batch", "d"), ("workers", "workers", "d"),
    ("e2e_clips_per_s", "end-to-end clips/s", ".1f"),
    ("step_clips_per_s", "step alone clips/s", ".1f"), ("ratio", "ratio", ".2f"),
    ("ratio_min", "min", ".2f"), ("ratio_max", "max", ".2f"),
    ("input_wait_fraction", "input wait", ".1%"))


def bench_train(argv) -> None:
  """The training loop's pieces end to end beside the step alone (see stcnn.bench's docstring)."""
  del argv
  import jax  # pylint: disable=g-import-not-at-top

  from stcnn import models, parallel, throughput, train  # pylint: disable=g-import-not-at-top
  from stcnn.data import datasets, frame_cache  # pylint: disable=g-import-not-at-top
  config, steps, warmup = FLAGS.config, max(FLAGS.steps, 1), max(FLAGS.warmup, 1)
  rounds = max(FLAGS.rounds, 1)
  mesh, t0 = parallel.make_mesh(), time.perf_counter()
  parallel.check_batch(config.batch_size, mesh)
  data = load_dataset(datasets, config)
  with tempfile.TemporaryDirectory() as workdir:  # a tree head's hierarchy.json, as train.py
    config = train.resolve_hierarchy(config, data, workdir)
    model = models.build(config)
  train.check_config(config, data)
  offsets, size, b = models.frame_offsets(config), config.model.input_size, config.batch_size
  split, workers = config.data.train_split, config.data.worker_count
  it = train.train_iterator(config, data, frame_cache.config_source(data, split, config))
  state, step = trainer_step(config, model, (len(offsets), size, size, 3), mesh)
  note(f"{data.builder_dir} [{split}] (ready in {time.perf_counter() - t0:.1f}s), {workers} "
       f"workers, {jax.device_count()} × {jax.devices()[0].device_kind}, {os.cpu_count()} CPUs "
       f"visible; {rounds} rounds of {steps} steps end to end then {steps} alone, after {warmup}")
  e2e, alone, ratio, wait, wall = [], [], [], 0.0, 0.0
  try:
    for _ in range(warmup):  # compilation, worker start-up, buffers
      state, metrics = step(state, parallel.to_global(next(it), mesh))
    jax.block_until_ready((state, metrics))
    for _ in range(rounds):  # end to end, then the step alone on the last batch: a peer in turn
      meter = throughput.Throughput(b, 0)  # the trainer's meter, read after the round's last step
      for _ in range(steps):  # as the loop runs: dispatch, no block until the end
        t0 = time.perf_counter()
        batch = parallel.to_global(meter.next_batch(it, in_flight=metrics), mesh)
        wait += time.perf_counter() - t0
        state, metrics = step(state, batch)
      e2e.append(meter.read(steps, (state, metrics))["clips_per_sec"])
      wall += steps * b / e2e[-1]
      t0 = time.perf_counter()
      for _ in range(steps):  # the same dispatch, on a batch already on the devices
        state, metrics = step(state, batch)
      jax.block_until_ready((state, metrics))
      alone.append(steps * b / (time.perf_counter() - t0))
      ratio.append(e2e[-1] / alone[-1])
  finally:
    getattr(it, "close", lambda: None)()
  m = config.model
  name = m.fusion if m.streams == "full" else "_".join([m.streams] + [m.fusion] * (
      m.fusion != "single"))
  Table(TRAIN_COLUMNS, FLAGS.json).add({
      "model": name, "size": size, "width": m.width, "batch": b, "workers": workers,
      "steps": steps, "rounds": rounds, "e2e_clips_per_s": float(np.median(e2e)),
      "step_clips_per_s": float(np.median(alone)), "ratio": float(np.median(ratio)),
      "ratio_min": min(ratio), "ratio_max": max(ratio), "input_wait_fraction": wait / wall})

