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
         system time and page faults a step (getrusage over the timed steps: what the step costs
         the kernel, ~0 when freed memory is reused, stcnn/host_memory.py: with --sizes=paper
         alone the process puts every thread on one malloc arena, as the trainer does for those
         networks; with `cpu` rows beside, the paper rows run without it and fault);
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
         timed by the trainer's throughput meter; then the same steps alone on the last batch,
         already on the devices (dispatched alike, blocked once at the end). --rounds of both in
         turn (the peer in the same conditions): medians, the ratio's min and max, and the share
         of wall time spent getting batches.

    python -m stcnn.bench model [--sizes=cpu,paper] [--models=single,slow] [--size=N --width=W]
        [--batch=32] [--steps=10] [--warmup=2] [--eval_batch=128] [--eval_steps=5] [--json]
    python -m stcnn.bench data [--frame_size=200] [--workers=0,1,2] [--num_frames=1,10] [--steps=20]
    python -m stcnn.bench data --data=PATH [--split=train] [--crop_size=54]
    python -m stcnn.bench data --prepared [--config=configs/slow_fusion.py:cpu] [--workers=2]
    python -m stcnn.bench train [--config=configs/slow_fusion.py:cpu] [--steps=30] [--warmup=5]
        [--rounds=3]

Modules: timing (median_rate, the matmul peak, Table and note: shared), model, data, train (one
benchmark each, `bench_NAME(argv)`); __main__ (the absl program). Add a benchmark by writing
`bench_NAME(argv)` in a module of its own and registering it in __main__.SUBCOMMANDS.
"""
from stcnn.bench.model import MODELS, SIZES, model_config, params_and_gflop, time_model
from stcnn.bench.timing import Table, median_rate, note

__all__ = ["MODELS", "SIZES", "Table", "median_rate", "model_config", "note", "params_and_gflop",
           "time_model"]  # what tests/ and benchmarks/ use
