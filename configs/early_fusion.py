r"""Early fusion: conv1 spans T=10 contiguous frames, 11×11×3×10 filters (docs/paper.md §1).

Reproduces Table 1, Sports-1M test: clip hit@1 38.9, video hit@1 57.7, video hit@5 76.8.

  python -m stcnn.main --config=configs/early_fusion.py:cpu --workdir=/tmp/early_fusion
  python -m stcnn.main --config=configs/early_fusion.py --workdir=DIR --config.data.name=prepared \
      --config.data.path=SPORTS1M_PREPARED                     # the paper's setting

`:cpu` (2-core CPU, no GPU; synthetic `cpu` data set, 1,500 steps): the quick check.
The reproduction study's recipe (experiments/study.py: 6,000 steps; experiments/RESULTS.md),
3 seeds: test video hit@1 0.651 ± 0.033, clip hit@1 0.596 ± 0.027, video hit@5
0.981 (chance 0.042); about 16 min a run on the 2 cores alone.
Paper setting (Sports-1M on accelerators): not yet measured.
Args (after ':'): cpu | tiny, fusion=..., streams=...; see configs/common.py.
"""
from configs import common


def get_config(arg=""):
  return common.get_config(arg, fusion="early", streams="full")
