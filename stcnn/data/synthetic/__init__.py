"""The embedded data set: procedurally generated, deterministic synthetic "sports" videos.

A stand-in for Sports-1M (and, with the `transfer` preset, for UCF-101) with the properties that
made Sports-1M interesting [docs/paper.md §2], at any size, with no download:

* a two-level class tree: groups own a scene (the context), leaves are a look (shape + colour) and a
  motion; motion siblings of a look differ ONLY in how the subject moves (`taxonomy`);
* every class maps onto itself under horizontal flips, the training augmentation (`taxonomy`);
* motion siblings are identically distributed frame by frame, so a single-frame model is at chance
  between them and a model that sees several frames need not be (`render`, measured by `probe`);
* camera bias (the subject stays in the central window), background-only camera motion, weak labels
  (noisy, multi-label, cut-aways) and variable lengths (`planning`, `render`);
* every video is a real encoded file, written atomically with index files (`write`); or, for the
  sports layout, its frames go straight to prepared JPEG records (`records`), the file-free path
  that `stcnn.data.datasets` uses.

Determinism: video i draws everything from `np.random.default_rng([seed, i])` (its plan) and from
seeds the plan draws (its pixels), so the rendered pixels depend on nothing but (preset, seed, i)
and the NumPy random streams; the encoded bytes are the same for the same FFmpeg build (records: the
same JPEG library). FORMAT_VERSION changes whenever the pixels would, RECORDS_VERSION whenever the
records would otherwise. See docs/design.md.

Modules: presets (settings), taxonomy (class tree), planning (per-video plan), render (pixels),
write (`generate`: video files), records (`prepare_records`: prepared records, no video files),
probe (difficulty probe, imported on first use), __main__ (the CLI):
  python -m stcnn.data.synthetic --preset=cpu --out=DIR [--probe] [--workers=N]
"""
from stcnn.data.synthetic.planning import VideoSpec, plan, ucf_test_groups
from stcnn.data.synthetic.presets import FORMAT_VERSION, PRESETS, SPLITS, Preset, get_preset
from stcnn.data.synthetic.records import RECORDS_VERSION, default_workers, prepare_records
from stcnn.data.synthetic.render import iter_frames, render_spec, render_video
from stcnn.data.synthetic.taxonomy import (
  COLOURS,
  MOTION_SETS,
  ROTATION_INVARIANT,
  SCENES,
  SHAPES,
  Leaf,
  Scene,
  class_names,
  group_names,
  hierarchy,
  leaves,
  motion_siblings,
)
from stcnn.data.synthetic.write import generate

__all__ = [
    "appearance_features",
    "class_names",
    "COLOURS",
    "default_workers",
    "difficulty_probe",
    "format_probe",
    "FORMAT_VERSION",
    "generate",
    "get_preset",
    "group_names",
    "hierarchy",
    "iter_frames",
    "Leaf",
    "leaves",
    "motion_features",
    "MOTION_SETS",
    "motion_siblings",
    "plan",
    "prepare_records",
    "Preset",
    "PRESETS",
    "RECORDS_VERSION",
    "render_spec",
    "render_video",
    "ROTATION_INVARIANT",
    "Scene",
    "SCENES",
    "SHAPES",
    "SPLITS",
    "ucf_test_groups",
    "VideoSpec",
]

# The probe needs JAX, optax and SciPy: imported on first use, so that importing the generator (as
# every rendering worker process does) stays light.
_PROBE = ("appearance_features", "difficulty_probe", "format_probe", "motion_features")


def __getattr__(name):
  if name in _PROBE:
    from stcnn.data.synthetic import probe  # pylint: disable=import-outside-toplevel
    return getattr(probe, name)
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
