r"""Late fusion, two shared towers 15 frames apart (Table 1: 40.7 / 59.3 / 78.7).

  python -m stcnn.main --config=configs/late_fusion.py:cpu --workdir=/tmp/late_fusion   # 2-core CPU, minutes
  python -m stcnn.main --config=configs/late_fusion.py --workdir=DIR --config.data.name=prepared \
      --config.data.path=SPORTS1M_PREPARED                                  # the paper's setting
Args (after ':'): cpu | tiny, fusion=..., streams=...; see configs/common.py.
"""
from configs import common


def get_config(arg=""):
  return common.get_config(arg, fusion="late", streams="full")
