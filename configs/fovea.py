r"""Fovea-only single-frame network: the centre 89×89 of a 178×178 crop (docs/paper.md §1).

Reproduces Table 1, Sports-1M test: clip hit@1 30.0, video hit@1 49.9, video hit@5 72.8.

  python -m stcnn.main --config=configs/fovea.py:cpu --workdir=/tmp/fovea
  python -m stcnn.main --config=configs/fovea.py --workdir=DIR --config.data.name=prepared \
      --config.data.path=SPORTS1M_PREPARED                     # the paper's setting

`:cpu` (2-core CPU, no GPU; synthetic `cpu` data set, 1,500 steps): not yet measured
(the reproduction study, experiments/, will fill this).
Paper setting (Sports-1M on accelerators): not yet measured.
Args (after ':'): cpu | tiny, fusion=..., streams=...; see configs/common.py.
"""
from configs import common


def get_config(arg=""):
  return common.get_config(arg, fusion="single", streams="fovea")
