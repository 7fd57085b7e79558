"""The synthetic data set's command line: generate a preset, and/or print its difficulty probe.

  python -m stcnn.data.synthetic --preset=cpu --out=DIR [--seed=0] [--workers=N] [--probe]
"""
import time
from typing import Sequence

from absl import app, flags

from stcnn.data.synthetic import presets, probe, write

_PRESET = flags.DEFINE_string("preset", "cpu", f"one of {sorted(presets.PRESETS)}")
_OUT = flags.DEFINE_string("out", None, "output directory (nothing is written when empty)")
_SEED = flags.DEFINE_integer("seed", 0, "data set seed")
_WORKERS = flags.DEFINE_integer("workers", 1, "processes writing videos")
_PROBE = flags.DEFINE_bool("probe", False, "print the single-frame vs two-frame difficulty probe")
_PROBE_VIDEOS_PER_CLASS = flags.DEFINE_integer("probe_videos_per_class", 0,
                                               "cap videos a class in the probe (0 = all)")


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  start = time.time()
  if _OUT.value:
    out = write.generate(_PRESET.value, _OUT.value, seed=_SEED.value, workers=_WORKERS.value)
    print(f"{out}: preset {_PRESET.value}, seed {_SEED.value} ({time.time() - start:.1f} s)")
  if _PROBE.value:
    result = probe.difficulty_probe(_PRESET.value, seed=_SEED.value,
                                    max_videos_per_class=_PROBE_VIDEOS_PER_CLASS.value or None)
    print(probe.format_probe(result))


if __name__ == "__main__":
  app.run(main)
