r"""Single-frame context-only network (Table 1: 38.1 / 56.0 / 77.2).

  python -m stcnn.main --config=configs/context.py:cpu --workdir=/tmp/context   # 2-core CPU, minutes
  python -m stcnn.main --config=configs/context.py --workdir=DIR --config.data.name=prepared \
      --config.data.path=SPORTS1M_PREPARED                                  # the paper's setting
Args (after ':'): cpu | tiny, fusion=..., streams=...; see configs/common.py.
"""
from configs import common


def get_config(arg=""):
  return common.get_config(arg, fusion="single", streams="context")
