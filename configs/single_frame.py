r"""Single-frame network (Table 1: 41.1 clip@1 / 59.3 video@1 / 77.7 video@5).

  python -m stcnn.main --config=configs/single_frame.py:cpu --workdir=/tmp/single_frame   # 2-core CPU, minutes
  python -m stcnn.main --config=configs/single_frame.py --workdir=DIR --config.data.name=prepared \
      --config.data.path=SPORTS1M_PREPARED                                  # the paper's setting
Args (after ':'): cpu | tiny, fusion=..., streams=...; see configs/common.py.
"""
from configs import common


def get_config(arg=""):
  return common.get_config(arg, fusion="single", streams="full")
