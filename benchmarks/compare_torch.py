r"""Training-step speed of stcnn (JAX) beside the same networks in PyTorch, measured in one run.

  pip install -e ".[torch]" && python -m benchmarks.compare_torch --sizes=cpu

    python -m benchmarks.compare_torch [--sizes=cpu,paper] [--models=single,slow]
        [--size=N --width=W] [--batch=32] [--steps=10] [--warmup=2] [--threads=2] [--json]

(from the repository root: benchmarks/ is not installed). For each network (single, early, late,
slow, multires, multires_slow) and size preset (as `python -m stcnn.bench model`): stcnn's number
is `stcnn.bench.time_model` (the trainer's own step, jitted, state donated; evaluation not timed);
PyTorch's is benchmarks/torch_nets.py's network with SGD (lr 1e-3, momentum 0.9, weight decay
5e-4) and softmax cross-entropy, dropout on. Both on a random batch of --batch clips of the frames
the network reads; clips/s = batch / median step time over --steps steps after --warmup. The
parameter counts must be equal (else it stops; tests/test_bench.py also checks that with stcnn's
weights loaded the two compute the same scores). torch runs --threads intra-op threads; XLA:CPU
uses every visible core (the same thing on a 2-core machine). Each runs as shipped: PyTorch in a
process of its own with glibc's default allocator, stcnn in this one with the setting every stcnn
command makes (stcnn/host_memory.py: with --sizes=paper alone, one malloc arena, as the trainer
runs those networks); the two alternate, one network at a time. CPU-only
machines: add `--extra-index-url https://download.pytorch.org/whl/cpu` to the pip command for the
small wheel.
"""
from __future__ import annotations

from concurrent import futures
import importlib.metadata
import importlib.util
import multiprocessing
import os

from absl import app, flags

from stcnn import bench, host_memory
from stcnn.bench.model import define_network_flags, network_configs

FLAGS = flags.FLAGS
COLUMNS = (
    ("model", "network", "13"), ("preset", "preset", ""), ("size", "crop", "d"),
    ("width", "width", ".4g"), ("batch", "batch", "d"), ("params", "params", ","),
    ("clips_per_s", "stcnn clips/s", ".1f"), ("torch_clips_per_s", "torch clips/s", ".1f"),
    ("ratio", "stcnn/torch", ".2f"))


def _define_flags():
  define_network_flags()
  flags.DEFINE_integer("batch", 32, "Batch size (clips).")
  flags.DEFINE_integer("steps", 10, "Timed steps.")
  flags.DEFINE_integer("warmup", 2, "Untimed steps first.")
  flags.DEFINE_integer("threads", 2, "torch.set_num_threads.")
  flags.DEFINE_bool("json", False, "One JSON object a line instead of a table.")


def time_torch(config, *, steps: int, warmup: int) -> tuple[float, int]:
  """(clips/s of torch_nets' training step for `config`'s network, its parameter count)."""
  import torch  # pylint: disable=g-import-not-at-top

  from benchmarks import torch_nets  # pylint: disable=g-import-not-at-top
  m, b = config.model, config.batch_size
  torch.manual_seed(0)
  net = torch_nets.VideoNet(config.num_classes, m.fusion, m.streams, m.width, m.input_size,
                            m.dropout)
  video = 50 * torch.randn(b, net.frames, 3, m.input_size, m.input_size)
  labels = torch.randint(0, config.num_classes, (b,))
  step = torch_nets.make_train_step(net, config.optimizer.lr, config.optimizer.momentum,
                                    config.optimizer.weight_decay)
  return b * bench.median_rate(lambda: step(video, labels), steps, warmup), \
      torch_nets.num_params(net)


def _torch_process_rate(config, steps: int, warmup: int, threads: int) -> tuple[float, int]:
  """time_torch in a spawned process (no stcnn command setup: PyTorch as a user runs it)."""
  import torch  # pylint: disable=g-import-not-at-top
  torch.set_num_threads(threads)
  return time_torch(config, steps=steps, warmup=warmup)


def main(argv):
  del argv
  # stcnn as its commands run (PyTorch: its own process): one arena where every network timed is
  # paper-sized (`--sizes=paper`), as `python -m stcnn.bench model` does
  configs = network_configs(FLAGS.batch)
  host_memory.keep_freed_memory(
      one_arena=host_memory.one_arena_pays(config for *_, config in configs))
  if importlib.util.find_spec("torch") is None:
    raise app.UsageError('PyTorch is an optional extra: pip install -e ".[torch]"')
  import jax  # pylint: disable=g-import-not-at-top
  bench.note(f"torch {importlib.metadata.version('torch')} on {FLAGS.threads} threads (own "
             f"process); jax {jax.__version__} on {jax.devices()[0].device_kind} ({os.cpu_count()} "
             f"CPUs visible); batch {FLAGS.batch}, median of {FLAGS.steps} steps after "
             f"{FLAGS.warmup}")
  table = bench.Table(COLUMNS, FLAGS.json)
  spawn = multiprocessing.get_context("spawn")
  with futures.ProcessPoolExecutor(max_workers=1, mp_context=spawn) as torch_process:
    for preset, name, config in configs:
      row = bench.time_model(name, config, steps=FLAGS.steps, warmup=FLAGS.warmup, eval_steps=0)
      torch_rate, torch_params = torch_process.submit(
          _torch_process_rate, config, FLAGS.steps, FLAGS.warmup, FLAGS.threads).result()
      if torch_params != row["params"]:
        raise SystemExit(f"{name} at {preset}: torch_nets has {torch_params:,} parameters, "
                         f"stcnn {row['params']:,}: not the same network")
      table.add({"model": name, "preset": preset, "size": row["size"], "width": row["width"],
                 "batch": row["batch"], "params": row["params"],
                 "clips_per_s": row["clips_per_s"], "torch_clips_per_s": torch_rate,
                 "ratio": row["clips_per_s"] / torch_rate, "torch_threads": FLAGS.threads})


if __name__ == "__main__":
  _define_flags()
  app.run(main)
