r"""Fovea-only single-frame network: the centre 89×89 of a 178×178 crop (docs/paper.md §1).

Reproduces Table 1, Sports-1M test: clip hit@1 30.0, video hit@1 49.9, video hit@5 72.8.

  python -m stcnn.main --config=configs/fovea.py:cpu --workdir=/tmp/fovea
  python -m stcnn.main --config=configs/fovea.py --workdir=DIR --config.data.name=prepared \
      --config.data.path=SPORTS1M_PREPARED                     # the paper's setting

`:cpu` (2-core CPU, no GPU; synthetic `cpu` data set, 1,500 steps): the quick check.
The reproduction study's recipe (experiments/study.py: 6,000 steps; experiments/RESULTS.md),
3 seeds: test video hit@1 0.470 ± 0.010, clip hit@1 0.447 ± 0.010, video hit@5
0.979 (chance 0.042); about 3.5 min a run on the 2 cores alone.
Paper setting (Sports-1M on accelerators): not yet measured.
Args (after ':'): cpu | tiny, fusion=..., streams=...; see configs/common.py.
"""
from configs import common


def get_config(arg=""):
  return common.get_config(arg, fusion="single", streams="fovea")
