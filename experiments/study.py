r"""The reproduction study's recipe: ONE file for every run of `python -m stcnn.repro`.

  python -m stcnn.repro --table=all --preset=cpu              # this recipe's `cpu` preset
  python -m stcnn.repro --table=1 --preset=cpu --study=experiments/study.py:steps=3000

`get_config("cpu" | "paper" | "tiny" [,key=value...])` returns what the study varies on top of each
network's own config (`configs/<network>.py:<variant>`): the overrides of every Table 1 network
(`table1`, the same recipe and budget for all of them), of every Table 3/4 transfer run
(`transfer`), the seeds, the UCF-101 splits and the speed benchmark's settings. Keys given after
the preset (`steps`, `transfer_steps`, `eval_every`, `seeds`; on the command line after
`--study=experiments/study.py:`) replace the preset's; `--seeds` replaces `seeds`.

The `cpu` recipe [choice]: the configs' `:cpu` settings (64×64 synthetic frames, width 0.25, batch
32, SGD momentum 0.9, weight decay 5e-4, lr 1e-3 lowered ×0.1 after 3 validations without
improvement [paper §3]) with 6,000 steps for every Table 1 network (1,500, the configs' default,
leaves every network still improving: experiments/README.md), validation every 1,000 steps on all
192 validation videos, the paper's test protocol (20 clips × 4 views). The paper's lr stays: a
linear warm-up of 100 steps then a cosine decay from a higher peak (`optimizer.schedule`, measured
on slow fusion, seed 0) learns slower here, validation video hit@1 at step 500 / 1,000: peak 1e-2
0.13 / 0.12 (training loss stuck near 2.3), peak 3e-3 0.20 / –, against 0.26 / 0.29 at the constant
1e-3. Transfer: 600 steps per run, each seed on one UCF-101 split in turn (`split_per_seed`: 3 seeds
cover splits 1, 2, 3; Table 3 averages over both); evaluated once, at the end (the transfer configs
watch the test split for the lr plateau; one evaluation keeps the test split from steering the
schedule), on 24 test videos, then the full test pass (50 clips × 4 views, UCF-101's [paper]).
Wall time on 2 cores (measured, seed 0, Tables 1 and 3 of this recipe, the machine alone,
2026-12-07 on the AMD EPYC 2-core VM of that date): Table 1 19 min 12 s (slow fusion 468 s, early
259, late 156, single-frame 86, multires 78, context 63, fovea 42), transfer 4 × ~1 min (238 s):
23 min a seed, ≈ 72 min for `--table=all --seeds=3`. On the earlier, half as fast machine
(experiments/RESULTS.md, the code of 2026-12-01): Table 1 1 h 37 min, ≈ 5.5 h for 3 seeds.
"""
import ml_collections

from configs import common

# Each preset: (config variant, Table 1 steps, eval_every, checkpoint_every, log_every,
# transfer steps, speed size preset, speed steps, speed warm-up).
_PRESETS = {
    "cpu": ("cpu", 6000, 1000, 500, 100, 600, "cpu", 10, 2),
    "paper": ("paper", 5_000_000, 20_000, 5000, 100, 30_000, "paper", 10, 2),
    "tiny": ("tiny", 4, 4, 4, 2, 2, "tiny", 1, 1),
}


def get_config(arg: str = "cpu"):
  a = common.parse_arg(arg, cpu=False, paper=False, tiny=False, steps=0, transfer_steps=0,
                       eval_every=0, seeds=0)
  chosen = [p for p in _PRESETS if a[p]]
  if len(chosen) != 1:
    raise ValueError(f"experiments/study.py: name one preset of {list(_PRESETS)}, got {arg!r}")
  preset = chosen[0]
  variant, steps, eval_every, ckpt_every, log_every, t_steps, speed_size, s_steps, s_warm = \
      _PRESETS[preset]
  tiny = preset == "tiny"

  c = ml_collections.ConfigDict()
  c.preset = preset
  c.variant = variant  # configs/*.py:<variant> ('paper' = no arg)
  c.seeds = a.seeds or (1 if tiny else 3)
  c.splits = (1,) if tiny else (1, 2, 3)  # UCF-101 splits averaged in Table 3 [paper: 3]
  c.split_per_seed = preset == "cpu"  # seed s fine-tunes on split s+1 only (cells.splits_of)

  # Every Table 1 network: the same recipe and budget.
  t1 = ml_collections.ConfigDict()
  t1.total_steps = a.steps or steps
  t1.eval_every = a.eval_every or eval_every
  t1.checkpoint_every = ckpt_every
  t1.log_every = log_every
  t1.optimizer = ml_collections.ConfigDict({"lr": 1e-3, "plateau_patience": 3})  # [paper] lr
  t1.data = ml_collections.ConfigDict(
      {"clips_per_video": 2 if tiny else 20, "views": 2 if tiny else 4,  # [paper] 20 × 4
       "max_eval_videos": 4 if tiny else 0})  # validation videos (0 = all)
  if tiny:
    t1.eval_batch_size = 16
  c.table1 = t1

  # Every Table 3/4 run (scratch and the three fine-tuning depths).
  tr = ml_collections.ConfigDict()
  tr.total_steps = a.transfer_steps or t_steps
  tr.eval_every = tr.total_steps  # one evaluation, at the end: the lr never watches the test split
  tr.checkpoint_every = max(1, tr.total_steps // 3)
  tr.log_every = max(1, min(50, tr.total_steps))
  tr.data = ml_collections.ConfigDict(
      {"clips_per_video": 2 if tiny else 50, "views": 2 if tiny else 4,  # [paper] UCF-101: 50
       "max_eval_videos": 4 if tiny else 24})  # the trainer's own end-of-run evaluation
  if tiny:
    tr.eval_batch_size = 16
  c.transfer = tr

  # Speed (stcnn.bench.time_model): full frame vs multires, single-frame and slow fusion.
  c.speed = ml_collections.ConfigDict(
      {"size": speed_size, "steps": s_steps, "warmup": s_warm, "batch": 8 if tiny else 32})
  return c
