r"""Late fusion: shared-weight towers on frames 0 and 15 of a 16-frame clip, joined at FC1.

Reproduces Table 1, Sports-1M test: clip hit@1 40.7, video hit@1 59.3, video hit@5 78.7.

  python -m stcnn.main --config=configs/late_fusion.py:cpu --workdir=/tmp/late_fusion
  python -m stcnn.main --config=configs/late_fusion.py --workdir=DIR --config.data.name=prepared \
      --config.data.path=SPORTS1M_PREPARED                     # the paper's setting

`:cpu` (2-core CPU, no GPU; synthetic `cpu` data set, 1,500 steps): the quick check.
The reproduction study's recipe (experiments/study.py: 6,000 steps; experiments/RESULTS.md),
3 seeds: test video hit@1 0.653 ± 0.028, clip hit@1 0.630 ± 0.027, video hit@5
0.983 (chance 0.042); about 15 min a run on the 2 cores alone.
Paper setting (Sports-1M on accelerators): not yet measured.
Args (after ':'): cpu | tiny, fusion=..., streams=...; see configs/common.py.
"""
from configs import common


def get_config(arg=""):
  return common.get_config(arg, fusion="late", streams="full")
