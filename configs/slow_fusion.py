r"""Slow fusion, temporal extents 4/2/2 stride 2 (Table 1: 41.9 / 60.9 / 80.2).

  python -m stcnn.main --config=configs/slow_fusion.py:cpu --workdir=/tmp/slow_fusion   # 2-core CPU, minutes
  python -m stcnn.main --config=configs/slow_fusion.py --workdir=DIR --config.data.name=prepared \
      --config.data.path=SPORTS1M_PREPARED                                  # the paper's setting
Args (after ':'): cpu | tiny, fusion=..., streams=...; see configs/common.py.
"""
from configs import common


def get_config(arg=""):
  return common.get_config(arg, fusion="slow", streams="full")
