r"""Slow fusion: 10 frames; conv1-3 temporal extents 4/2/2, stride 2 (docs/paper.md §1).

Reproduces Table 1, Sports-1M test: clip hit@1 41.9, video hit@1 60.9, video hit@5 80.2.

  python -m stcnn.main --config=configs/slow_fusion.py:cpu --workdir=/tmp/slow_fusion
  python -m stcnn.main --config=configs/slow_fusion.py --workdir=DIR --config.data.name=prepared \
      --config.data.path=SPORTS1M_PREPARED                     # the paper's setting

`:cpu` (2-core CPU, no GPU; synthetic `cpu` data set, 1,500 steps): 7 min 21 s wall;
test video hit@1 0.453, clip hit@1 0.429, video hit@5 0.969 (chance 0.042).
The reproduction study's recipe (experiments/study.py: 6,000 steps; experiments/RESULTS.md),
3 seeds: test video hit@1 0.620 ± 0.015, clip hit@1 0.588 ± 0.006, video hit@5
0.979 (chance 0.042); about 32 min a run on the 2 cores alone.
Paper setting (Sports-1M on accelerators): not yet measured.
Args (after ':'): cpu | tiny, fusion=..., streams=...; see configs/common.py.
"""
from configs import common


def get_config(arg=""):
  return common.get_config(arg, fusion="slow", streams="full")
