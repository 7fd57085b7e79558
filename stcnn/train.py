"""The trainer: `train_and_evaluate(config, workdir)` (sections as in big_vision/train.py).

Optimiser [paper §3]: SGD, momentum 0.9, weight decay 5e-4 (added to the gradient, as in Caffe /
cuda-convnet), lr 1e-3, global batch `config.batch_size` (paper: 32 per replica). "Lowered by hand
when the validation error plateaus" becomes automatic: `optax.contrib.reduce_on_plateau` watches
the validation video error at every evaluation and multiplies the lr by 0.1 after
`config.optimizer.plateau_patience` evaluations without improvement.

Parallelism [choice]: the paper's asynchronous Downpour SGD (10–50 replicas, each model split over
machines) is replaced by synchronous data parallelism: one jitted step over a 1-D device mesh,
params replicated, each process feeding its own slice of every global batch (stcnn.parallel).

Workdir: config.json, checkpoints/ (Orbax: train state + Grain iterator state + meta),
metrics.jsonl,
TensorBoard events; a rerun with the same workdir resumes from the latest checkpoint.
"""
from __future__ import annotations

import functools
import os
import signal
from typing import Any

from absl import logging
import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from stcnn import (
  checkpoint_reader,
  checkpointing,
  config_check,
  evaluate,
  fileio,
  models,
  parallel,
  throughput,
  writers,
  xla_options,
)
from stcnn.data import datasets, frame_cache, pipeline


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: Any
  opt_state: Any
  rng: jax.Array  # dropout key; step s uses fold_in(rng, s)
  plateau: Any  # optax.contrib reduce_on_plateau state; `lr × plateau.scale` is the lr in use


# ------------------------------------------------------------------------------------------- config
FINETUNE = {"all": None, "top3": ("fc1", "fc2", "head"), "top": ("head",)}


def check_config(config, data=None) -> None:
  """Refuses bad values before any work, naming the key: every key's type and range and the
  cross-key rules (stcnn.config_check), then, given the data set, what depends on it."""
  config_check.check(config)
  if data is None:
    return
  if config.num_classes != data.num_classes:
    raise ValueError(f"config.num_classes = {config.num_classes} but the data set at "
                     f"{data.builder_dir} has {data.num_classes} classes")
  if config.model.input_size > data.frame_size:
    what = "fovea/context crop" if config.model.streams != "full" else "crop"
    raise ValueError(f"config.model.input_size = {config.model.input_size}: the {what} is larger "
                     f"than the data set's {data.frame_size}×{data.frame_size} frames")
  need = models.num_frames(config)
  stored = data.metadata.get("settings", {}).get("segment_frames")
  counts = data.counts.get(config.data.train_split, {})
  mean_len = counts.get("frames", 0) / max(1, counts.get("segments", 0))
  if (stored and need > stored) or (counts and need > mean_len):
    raise ValueError(
        f"config.model.fusion = {config.model.fusion!r} (late_gap {config.model.late_gap}, "
        f"early_frames {config.model.early_frames}) reads {need}-frame clips, but the data set "
        f"stores segments of at most {stored} frames, {mean_len:.0f} on average: the clip is "
        "too long for the data (prepare with a larger --segment_frames)")


# -------------------------------------------------------------------------------------------- input
def train_iterator(config, data, source, start_step: int = 0):
  """This process's checkpointable training batches of `source` (`data`'s train split as
  `frame_cache.config_source` gives it) from global step `start_step` (`pipeline.train_dataset`)."""
  split = config.data.train_split
  offsets = models.frame_offsets(config)  # only the frames the network reads are read
  return pipeline.train_iterator(
      source, num_frames=len(offsets), crop_size=config.model.input_size,
      num_classes=config.num_classes, global_batch_size=config.batch_size, seed=config.seed,
      process_index=jax.process_index(), process_count=jax.process_count(),
      worker_count=config.data.worker_count, read_threads=config.data.read_threads,
      mean=config.data.mean, frame_offsets=offsets, index=data.index(split), start_step=start_step)


# -------------------------------------------------------------------------------------------- model
def make_optimizer(config, params):
  """SGD with momentum and weight decay, at unit lr: the step scales its updates by
  `learning_rate(config, state)`, the one place the lr is known."""
  o = config.optimizer
  tx = optax.chain(
      optax.clip_by_global_norm(o.grad_clip) if o.grad_clip else optax.identity(),
      optax.add_decayed_weights(o.weight_decay),
      optax.sgd(1.0, momentum=o.momentum))
  trainable = FINETUNE[config.finetune]
  if trainable is None:
    return tx
  # Frozen parameters get no update and no optimiser state (set_to_zero keeps none).
  labels = {k: "train" if k in trainable else "frozen" for k in params}
  return optax.multi_transform({"train": tx, "frozen": optax.set_to_zero()}, labels)


def make_plateau(config):
  o = config.optimizer
  return optax.contrib.reduce_on_plateau(factor=o.plateau_factor, patience=o.plateau_patience,
                                         rtol=1e-4)


def lr_schedule(config) -> optax.Schedule:
  """step → multiplier of config.optimizer.lr: a linear warm-up over `optimizer.warmup_steps`,
  then constant (`schedule='constant'`, the paper's) or a cosine decay to 0 at `total_steps`
  (`schedule='cosine'`, a [choice] for short runs: docs/paper.md)."""
  o = config.optimizer
  if o.schedule == "cosine":
    return optax.warmup_cosine_decay_schedule(0.0, 1.0, o.warmup_steps, config.total_steps)
  return optax.linear_schedule(0.0, 1.0, o.warmup_steps) if o.warmup_steps else (lambda _: 1.0)


def learning_rate(config, state: TrainState) -> jax.Array:
  """The lr the next step uses: config.optimizer.lr × the schedule at this step × the plateau
  drops so far [paper: 1e-3, constant, lowered by hand on a plateau]."""
  return config.optimizer.lr * lr_schedule(config)(state.step) * state.plateau.scale


def init_state(config, model, tx, plateau, video_shape) -> TrainState:
  rng = jax.random.key(config.seed)
  params = model.init(jax.random.fold_in(rng, 0), jnp.zeros(video_shape, jnp.float32))["params"]
  return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params),
                    rng=jax.random.key_data(jax.random.fold_in(rng, 1)),
                    plateau=plateau.init(params))


def initial_state(config, model, tx, plateau, video_shape, sharding) -> TrainState:
  """`init_state`, computed once and placed with `sharding`. On CPU its program (some 230
  threefry fusions, run once) is compiled at XLA's backend optimisation level 1: 2-3× faster to
  compile (3.5-5 s → 1.3-2 s a network), bit-identical values (tests/test_train.py)."""
  fn = jax.jit(lambda: init_state(config, model, tx, plateau, video_shape), out_shardings=sharding)
  options = {"xla_backend_optimization_level": 1} if jax.default_backend() == "cpu" else None
  return fn.lower().compile(compiler_options=options)()


def make_train_step(config, model, tx, hierarchy):
  def train_step(state: TrainState, batch):
    rng = jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)

    def loss_fn(params):
      scores = model.apply({"params": params}, batch["video"], train=True,
                           rngs={"dropout": rng})
      return models.loss_fn(scores, batch["target"], hierarchy).mean(), scores
    (loss, scores), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    updates = jax.tree.map(lambda u: u * learning_rate(config, state), updates)
    params = optax.apply_updates(state.params, updates)
    hit = jnp.take_along_axis(batch["target"], jnp.argmax(scores, -1)[:, None], -1) > 0
    metrics = {"loss": loss, "clip_hit@1": hit.mean(), "grad_norm": optax.tree.norm(grads)}
    return state.replace(step=state.step + 1, params=params, opt_state=opt_state), metrics
  return train_step


def jit_train_step(config, model, tx, hierarchy, mesh):
  """`make_train_step` jitted as the loop runs it: the state replicated over `mesh` and donated,
  the batch split over its data axis, compiled with `stcnn.xla_options`."""
  repl = parallel.replicated(mesh)
  return jax.jit(make_train_step(config, model, tx, hierarchy),
                 in_shardings=(repl, parallel.data_sharding(mesh)), out_shardings=(repl, repl),
                 donate_argnums=0, compiler_options=xla_options.compiler_options())


# ----------------------------------------------------------------------------------------- the loop
_NONFINITE_HINT = "Lower config.optimizer.lr or set config.optimizer.grad_clip and rerun."


class _Preempted:
  """SIGTERM (preemption) or SIGINT (Ctrl-C) → checkpoint the current step at the next step
  boundary and exit cleanly (status 0, "<SIGNAL>: checkpointed step N, exiting"). A second
  SIGINT aborts at once (KeyboardInterrupt; pending saves still finish). `restore()` puts the
  previous handlers back."""

  def __init__(self):
    self.signal = None  # the name of the first signal received
    self._previous = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
      try:
        self._previous[sig] = signal.signal(sig, self._set)
      except ValueError:  # not the main thread
        pass

  def _set(self, signum, frame):
    del frame
    if signum == signal.SIGINT and self.signal is not None:
      raise KeyboardInterrupt
    self.signal = self.signal or signal.Signals(signum).name

  def restore(self) -> None:
    for sig, handler in self._previous.items():
      signal.signal(sig, signal.SIG_DFL if handler is None else handler)
    self._previous = {}


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains, evaluates and checkpoints under `workdir`; returns the final evaluation metrics."""
  workdir = os.path.abspath(os.path.expanduser(workdir))
  config = datasets.with_resolved_paths(config)  # the workdir's config.json works from anywhere
  check_config(config)
  mesh = parallel.make_mesh()
  parallel.check_batch(config.batch_size, mesh)
  parallel.check_batch(config.eval_batch_size, mesh, "config.eval_batch_size")

  # ---- input
  data = datasets.load(config, leader=jax.process_index() == 0, barrier=parallel.sync)
  config = resolve_hierarchy(config, data, workdir)
  check_config(config, data)
  num_frames = len(models.frame_offsets(config))
  train_source = frame_cache.config_source(data, config.data.train_split, config)
  make_train_iter = functools.partial(train_iterator, config, data, train_source)
  train_iter = make_train_iter()
  evaluator = evaluate.Evaluator(config, data, mesh, split=config.data.eval_split,
                                 max_videos=config.data.max_eval_videos)

  # ---- model, optimiser, state
  model = models.build(config)
  hierarchy = model.hierarchy
  size = config.model.input_size
  video_shape = (1, num_frames, size, size, 3)
  abstract_params = jax.eval_shape(
      lambda: model.init(jax.random.key(0), jnp.zeros(video_shape))["params"])
  tx = make_optimizer(config, abstract_params)
  plateau = make_plateau(config)
  repl = parallel.replicated(mesh)
  state = initial_state(config, model, tx, plateau, video_shape, repl)

  # ---- checkpoints: resume, or start (from init_from for transfer learning)
  ckpt = checkpointing.Checkpointer(workdir, config, data.fingerprint,
                                    keep=config.keep_checkpoints, nonfinite_hint=_NONFINITE_HINT)
  if ckpt.latest_step() is not None:  # the newest usable one: restores, finite, no dead end
    state, train_iter = ckpt.restore(state, train_iter, make_train_iter)
  if ckpt.resumed_step is not None:
    logging.info("Resumed from step %d", ckpt.resumed_step)
  elif config.init_from:
    params = checkpoint_reader.load_pretrained(config.init_from, state.params,
                                               reinit=("head",))
    state = jax.device_put(state.replace(params=params, opt_state=tx.init(params)), repl)
  ckpt.write_config(int(state.step))  # config.json + this segment's line of config_history.jsonl
  if jax.process_index() == 0:  # what `stcnn.predictor` names classes by, without the data set
    fileio.write_json(os.path.join(workdir, "class_names.json"), list(data.class_names))

  train_step = jit_train_step(config, model, tx, hierarchy, mesh)

  # ---- loop
  writer = writers.MetricWriter(workdir, active=jax.process_index() == 0,
                                resume_step=int(state.step))
  preempted = _Preempted()
  step = int(state.step)
  first_step = step
  pending, metrics = [], None
  meter = throughput.Throughput(config.batch_size, step)
  progress = writers.progress(config.total_steps, step, active=jax.process_index() == 0)
  failed = False
  try:
    while step < config.total_steps:
      batch = parallel.to_global(meter.next_batch(train_iter, in_flight=metrics), mesh)
      state, metrics = train_step(state, batch)
      step += 1
      pending.append((step, metrics))
      stop = preempted.signal  # read once: one arriving later is acted on at the next step
      log_now = step % config.log_every == 0 or step == config.total_steps

      if log_now:
        summary = _fetch_and_check(pending, ckpt)  # the one host sync: raises on a non-finite loss
        summary.update(meter.read(step, state), lr=float(learning_rate(config, state)))
        writer.write(step, "train", summary)
        progress.update(step, summary)
        pending = []
      if jax.process_count() == 1 or log_now:  # several processes agree at the log steps
        ckpt.check_saves()  # a failed asynchronous save stops the run here, in one line

      if step % config.eval_every == 0 or step == config.total_steps:
        _fetch_and_check(pending, ckpt)
        ckpt.ensure_finite(step, state)  # NaN parameters stop the run here, not in the evaluator
        with meter.paused():  # evaluation time is not training time
          result = evaluator.run(state.params, step)
        writer.write(step, config.data.eval_split, evaluate.scalars(result), echo=progress.say)
        val_error = 1.0 - result["video_hit@1"]
        state = _plateau_update(plateau, state, val_error, repl)
        ckpt.save(step, state, train_iter, metrics={"val_error": val_error})
      elif step % config.checkpoint_every == 0 or stop or ckpt.reached_preemption(step):
        _fetch_and_check(pending, ckpt)
        ckpt.save(step, state, train_iter)  # refuses a non-finite state (NonFiniteError)
      if stop:
        ckpt.check_saves(block=True)
        logging.warning("%s: checkpointed step %d, exiting", stop, step)
        return {}
    progress.close()
    ckpt.check_saves(block=True)  # the last save is on disk before the (long) test evaluation
    train_iter.close()  # its worker processes and their shared memory go before the test pass

    # ---- final evaluation on the test split
    final = {}
    if config.data.test_split in data.splits:
      test = evaluate.Evaluator(config, data, mesh, split=config.data.test_split)
      final = test.run(state.params, step)
      writer.write(step, config.data.test_split, evaluate.scalars(final), echo=progress.say)
      evaluate.save_result(workdir, config.data.test_split, step, final, test.protocol)
    logging.info("Trained steps %d..%d", first_step, step)
    return final
  except BaseException:
    failed = True
    raise
  finally:  # whatever happens, what was written stays: pending saves finish
    preempted.restore()
    getattr(train_iter, "close", lambda: None)()  # stops Grain's worker processes
    pipeline.drain_shared_memory()
    progress.close()
    writer.close()
    ckpt.close(report=not failed)  # a failed last save raises, unless already stopping


def _plateau_update(plateau, state, val_error, sharding):
  """One reduce_on_plateau step on the validation error (its updates are not used): lowers
  `learning_rate` when the error has plateaued."""
  _, new = plateau.update(jnp.zeros(()), state.plateau, value=jnp.asarray(val_error, jnp.float32))
  return jax.device_put(state.replace(plateau=new), sharding)


def _fetch_and_check(pending, ckpt) -> dict:
  """Fetches the pending steps' metrics (blocking on them) and returns their means; a NaN/inf
  loss or gradient norm stops the run (NonFiniteError), naming the step and the checkpoint a
  rerun resumes from."""
  if not pending:
    return {}
  steps = [s for s, _ in pending]
  values = jax.device_get([m for _, m in pending])
  for s, m in zip(steps, values):
    bad = [f"{k} is {m[k]}" for k in ("loss", "grad_norm") if not np.isfinite(m[k])]
    if bad:
      what = " and ".join(bad)
      raise checkpointing.NonFiniteError(  # names the checkpoint a rerun resumes from
          f"{what} at step {s}; stopping. {ckpt.nonfinite_step(s, what)} {_NONFINITE_HINT}")
  return {k: float(np.mean([m[k] for m in values])) for k in values[0]}


def resolve_hierarchy(config, data, workdir):
  """The tree head uses the data set's hierarchy unless config.model.hierarchy names one."""
  if config.model.head != "tree" or config.model.hierarchy or not data.hierarchy:
    return config
  path = os.path.join(workdir, "hierarchy.json")
  if jax.process_index() == 0:
    fileio.write_json(path, data.hierarchy, indent=None)
  parallel.sync("hierarchy written")
  config = ml_collections.ConfigDict(config.to_dict())
  config.model.hierarchy = path
  return config
