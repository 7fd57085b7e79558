"""The embedded data set: procedurally generated, deterministic synthetic "sports" videos.

A stand-in for Sports-1M (and, with the `transfer` preset, for UCF-101) with the properties that made
Sports-1M interesting [docs/paper.md §2], at any size, with no download:

* a two-level class tree: groups own a scene (the context), leaves are a look (shape + colour) and a
  motion; motion siblings of a look differ ONLY in how the subject moves (`taxonomy`);
* every class maps onto itself under horizontal flips, the training augmentation (`taxonomy`);
* motion siblings are identically distributed frame by frame, so a single-frame model is at chance
  between them and a model that sees several frames need not be (`render`, measured by `probe`);
* camera bias (the subject stays in the central window), background-only camera motion, weak labels
  (noisy, multi-label, cut-aways) and variable lengths (`planning`, `render`);
* every video is a real encoded file, written atomically with index files (`write`).

Determinism: video i draws everything from `np.random.default_rng([seed, i])` (its plan) and from
seeds the plan draws (its pixels), so the rendered pixels depend on nothing but (preset, seed, i) and
the NumPy random streams; the encoded bytes are the same for the same FFmpeg build. FORMAT_VERSION
changes whenever that would not hold. See docs/design.md.

Modules: presets (settings), taxonomy (class tree), planning (per-video plan), render (pixels), write
(`generate`), probe (difficulty probe), __main__ (the CLI):
  python -m stcnn.data.synthetic --preset=cpu --out=DIR [--probe] [--workers=N]
"""
from stcnn.data.synthetic.planning import plan
from stcnn.data.synthetic.planning import ucf_test_groups
from stcnn.data.synthetic.planning import VideoSpec
from stcnn.data.synthetic.presets import FORMAT_VERSION
from stcnn.data.synthetic.presets import get_preset
from stcnn.data.synthetic.presets import Preset
from stcnn.data.synthetic.presets import PRESETS
from stcnn.data.synthetic.presets import SPLITS
from stcnn.data.synthetic.probe import appearance_features
from stcnn.data.synthetic.probe import difficulty_probe
from stcnn.data.synthetic.probe import format_probe
from stcnn.data.synthetic.probe import motion_features
from stcnn.data.synthetic.render import render_spec
from stcnn.data.synthetic.render import render_video
from stcnn.data.synthetic.taxonomy import class_names
from stcnn.data.synthetic.taxonomy import COLOURS
from stcnn.data.synthetic.taxonomy import group_names
from stcnn.data.synthetic.taxonomy import hierarchy
from stcnn.data.synthetic.taxonomy import Leaf
from stcnn.data.synthetic.taxonomy import leaves
from stcnn.data.synthetic.taxonomy import MOTION_SETS
from stcnn.data.synthetic.taxonomy import motion_siblings
from stcnn.data.synthetic.taxonomy import ROTATION_INVARIANT
from stcnn.data.synthetic.taxonomy import Scene
from stcnn.data.synthetic.taxonomy import SCENES
from stcnn.data.synthetic.taxonomy import SHAPES
from stcnn.data.synthetic.write import generate

__all__ = [
    "appearance_features",
    "class_names",
    "COLOURS",
    "difficulty_probe",
    "format_probe",
    "FORMAT_VERSION",
    "generate",
    "get_preset",
    "group_names",
    "hierarchy",
    "Leaf",
    "leaves",
    "motion_features",
    "MOTION_SETS",
    "motion_siblings",
    "plan",
    "Preset",
    "PRESETS",
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
