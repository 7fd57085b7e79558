r"""Transfer to UCF-101 from a Sports-1M slow-fusion net (docs/paper.md §3, §4).

Reproduces Table 3 (UCF-101, mean accuracy over the 3 splits): from scratch 41.3%, fine-tune the
top layer 64.1%, the top 3 layers 65.4%, all layers 62.2%.
  # pre-train on the synthetic sports data, then fine-tune on its UCF-101 stand-in (`transfer`):
  python -m stcnn.main --config=configs/slow_fusion.py:cpu --workdir=/tmp/sports_slow
  python -m stcnn.main --config=configs/transfer_ucf101.py:cpu,finetune=top3,split=1 \
      --config.init_from=/tmp/sports_slow --workdir=/tmp/ucf_top3_s1
  # the real UCF-101, prepared with `python -m stcnn.data.prepare --dataset=ucf101 --split=1`:
  python -m stcnn.main --config=configs/transfer_ucf101.py:finetune=top3 \
      --config.data.path=UCF101_SPLIT1_PREPARED --config.init_from=SPORTS1M_WORKDIR --workdir=DIR
Args: cpu | tiny, finetune=top|top3|all|scratch (scratch: no init_from), split=1|2|3, fusion=...,
streams=.... Fine-tuning keeps 10% of the FC units (dropout 0.9) and evaluates 50 clips a video
[paper]; UCF-101 has no validation split, so the lr plateau watches the test split.
`:cpu` (2-core CPU, no GPU; synthetic `transfer` data set, 600 steps): not yet measured
(the reproduction study, experiments/, will fill this). Paper setting: not yet measured.
"""
from configs import common
from stcnn.data import synthetic


def get_config(arg=""):
  a = common.parse_arg(arg, cpu=False, tiny=False, finetune="top3", split=1, fusion="slow",
                       streams="full")
  base = ",".join(f"{k}={a[k]}" for k in ("fusion", "streams")) + \
      (",cpu" if a.cpu else "") + (",tiny" if a.tiny else "")
  c = common.get_config(base, fusion=a.fusion, streams=a.streams)
  if c.variant == "paper":
    c.num_classes = 101
    c.data.name = "prepared"  # give --config.data.path
  else:
    c.data.preset = "transfer"  # the synthetic UCF-101-layout set (18 classes in 3 groups)
    c.num_classes = synthetic.get_preset(c.data.preset).num_leaves
  c.data.ucf_split = a.split
  c.data.train_split, c.data.eval_split, c.data.test_split = "train", "test", "test"
  c.data.clips_per_video = 50  # [paper] UCF-101
  c.finetune = "all" if a.finetune == "scratch" else a.finetune
  c.model.dropout = 0.5 if a.finetune == "scratch" else 0.9  # [paper] keep 10% when fine-tuning
  c.total_steps = {"paper": 30_000, "cpu": 600, "tiny": 10}[c.variant]
  c.eval_every = {"paper": 2000, "cpu": 200, "tiny": 10}[c.variant]
  return c
