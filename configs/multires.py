r"""Multiresolution single-frame network, fovea + context streams (Table 1: 42.4 / 60.0 / 78.5).
Any fusion: `:fusion=slow` (the paper reports multires slow fusion speed, 5 → 10 clips/s).

  python -m stcnn.main --config=configs/multires.py:cpu --workdir=/tmp/multires   # 2-core CPU, minutes
  python -m stcnn.main --config=configs/multires.py --workdir=DIR --config.data.name=prepared \
      --config.data.path=SPORTS1M_PREPARED                                  # the paper's setting
Args (after ':'): cpu | tiny, fusion=..., streams=...; see configs/common.py.
"""
from configs import common


def get_config(arg=""):
  return common.get_config(arg, fusion="single", streams="multires")
