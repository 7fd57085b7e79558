r"""Context-only single-frame network: a 178×178 crop at half resolution, 89×89 (§1).

Reproduces Table 1, Sports-1M test: clip hit@1 38.1, video hit@1 56.0, video hit@5 77.2.

  python -m stcnn.main --config=configs/context.py:cpu --workdir=/tmp/context
  python -m stcnn.main --config=configs/context.py --workdir=DIR --config.data.name=prepared \
      --config.data.path=SPORTS1M_PREPARED                     # the paper's setting

`:cpu` (2-core CPU, no GPU; synthetic `cpu` data set, 1,500 steps): the quick check.
The reproduction study's recipe (experiments/study.py: 6,000 steps; experiments/RESULTS.md),
3 seeds: test video hit@1 0.493 ± 0.025, clip hit@1 0.470 ± 0.016, video hit@5
0.984 (chance 0.042); about 3.5 min a run on the 2 cores alone.
Paper setting (Sports-1M on accelerators): not yet measured.
Args (after ':'): cpu | tiny, fusion=..., streams=...; see configs/common.py.
"""
from configs import common


def get_config(arg=""):
  return common.get_config(arg, fusion="single", streams="context")
