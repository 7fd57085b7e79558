r"""Single-frame fovea-only network (Table 1: 30.0 / 49.9 / 72.8).

  python -m stcnn.main --config=configs/fovea.py:cpu --workdir=/tmp/fovea   # 2-core CPU, minutes
  python -m stcnn.main --config=configs/fovea.py --workdir=DIR --config.data.name=prepared \
      --config.data.path=SPORTS1M_PREPARED                                  # the paper's setting
Args (after ':'): cpu | tiny, fusion=..., streams=...; see configs/common.py.
"""
from configs import common


def get_config(arg=""):
  return common.get_config(arg, fusion="single", streams="fovea")
