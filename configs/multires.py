r"""Multiresolution single-frame network: fovea + context streams, 89×89 each from 178×178.

Reproduces Table 1, Sports-1M test: clip hit@1 42.4, video hit@1 60.0, video hit@5 78.5.
Any fusion: `:fusion=slow` (the paper's multires slow fusion ran at 10 clips/s, full-frame at 5).

  python -m stcnn.main --config=configs/multires.py:cpu --workdir=/tmp/multires
  python -m stcnn.main --config=configs/multires.py --workdir=DIR --config.data.name=prepared \
      --config.data.path=SPORTS1M_PREPARED                     # the paper's setting

`:cpu` (2-core CPU, no GPU; synthetic `cpu` data set, 1,500 steps): 4 min 01 s wall in all
on a fresh machine (generating the data set 34 s and preparing it ~60 s included), 2 min 38 s
with the data set cached (2026-12-01); test video hit@1 0.479, clip hit@1 0.466, video hit@5
0.974 (chance 0.042; a single-frame net caps near 0.5 on this data set, whose motion siblings
differ only in motion; 0.495 with the per-example draws of earlier versions).
The reproduction study's recipe (experiments/study.py: 6,000 steps; experiments/RESULTS.md),
3 seeds: test video hit@1 0.507 ± 0.011, clip hit@1 0.478 ± 0.010, video hit@5
0.984 (chance 0.042); about 4.5 min a run on the 2 cores alone.
Paper setting (Sports-1M on accelerators): not yet measured.
Args (after ':'): cpu | tiny, fusion=..., streams=...; see configs/common.py.
"""
from configs import common


def get_config(arg=""):
  return common.get_config(arg, fusion="single", streams="multires")
