r"""Context-only single-frame network: a 178×178 crop at half resolution, 89×89 (§1).

Reproduces Table 1, Sports-1M test: clip hit@1 38.1, video hit@1 56.0, video hit@5 77.2.

  python -m stcnn.main --config=configs/context.py:cpu --workdir=/tmp/context
  python -m stcnn.main --config=configs/context.py --workdir=DIR --config.data.name=prepared \
      --config.data.path=SPORTS1M_PREPARED                     # the paper's setting

`:cpu` (2-core CPU, no GPU; synthetic `cpu` data set, 1,500 steps): not yet measured
(the reproduction study, experiments/, will fill this).
Paper setting (Sports-1M on accelerators): not yet measured.
Args (after ':'): cpu | tiny, fusion=..., streams=...; see configs/common.py.
"""
from configs import common


def get_config(arg=""):
  return common.get_config(arg, fusion="single", streams="context")
