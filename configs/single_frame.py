r"""Single-frame network: one frame of each clip, 170×170 crops (docs/paper.md §1).

Reproduces Table 1, Sports-1M test: clip hit@1 41.1, video hit@1 59.3, video hit@5 77.7.

  python -m stcnn.main --config=configs/single_frame.py:cpu --workdir=/tmp/single_frame
  python -m stcnn.main --config=configs/single_frame.py --workdir=DIR --config.data.name=prepared \
      --config.data.path=SPORTS1M_PREPARED                     # the paper's setting

`:cpu` (2-core CPU, no GPU; synthetic `cpu` data set, 1,500 steps): the quick check.
The reproduction study's recipe (experiments/study.py: 6,000 steps; experiments/RESULTS.md),
3 seeds: test video hit@1 0.514 ± 0.027, clip hit@1 0.493 ± 0.023, video hit@5
0.983 (chance 0.042); about 8 min a run on the 2 cores alone.
Paper setting (Sports-1M on accelerators): not yet measured.
Args (after ':'): cpu | tiny, fusion=..., streams=...; see configs/common.py.
"""
from configs import common


def get_config(arg=""):
  return common.get_config(arg, fusion="single", streams="full")
