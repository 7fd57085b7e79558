r"""Early fusion, T=10 (Table 1: 38.9 / 57.7 / 76.8).

  python -m stcnn.main --config=configs/early_fusion.py:cpu --workdir=/tmp/early_fusion   # 2-core CPU, minutes
  python -m stcnn.main --config=configs/early_fusion.py --workdir=DIR --config.data.name=prepared \
      --config.data.path=SPORTS1M_PREPARED                                  # the paper's setting
Args (after ':'): cpu | tiny, fusion=..., streams=...; see configs/common.py.
"""
from configs import common


def get_config(arg=""):
  return common.get_config(arg, fusion="early", streams="full")
