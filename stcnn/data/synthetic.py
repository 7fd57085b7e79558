r"""The embedded data set: procedurally generated, deterministic synthetic "sports" videos.

A stand-in for Sports-1M (and, with the `transfer` preset, for UCF-101) that has the properties that
made Sports-1M interesting [paper §2], at any size, with no download:

* A class tree. Coarse groups ("ball_sports", "water_sports", ...) each own a *scene*: a background
  texture (grass with mowing stripes, waves, snow, a fighting mat with its ring, ...) that gives the
  context. Inside a group, leaves come in *looks* (a subject shape + colour: "red_disc") and every
  look comes as `motions_per_look` *motion siblings* ("red_disc_slide_up", "red_disc_slide_down")
  that differ ONLY in how the subject moves: vertical direction, speed, spinning or not, hopping vs
  gliding, periodic vs linear.
* Every class is invariant under the paper's training augmentation, the horizontal flip [paper §2]:
  no two classes differ by left vs right or clockwise vs anticlockwise (a flipped "slide_left" clip
  would be a perfect "slide_right" one, and flip augmentation would make such siblings
  indistinguishable). Where a motion has a horizontal sense (sideways slides, glides, hops, spins,
  orbits) it is drawn at random per video, so each class's distribution is mirror-symmetric.
* Motion siblings are identically distributed frame by frame, so a single-frame classifier is at
  chance between them while a model that sees several frames need not be. This holds by construction:
  the subject moves on a torus (it wraps around the edges of a central window) from a uniformly random
  start, so its position is uniform at every time whatever the trajectory; its orientation starts
  uniformly at random, so it is uniform at every time whatever the rotation; every other draw (size,
  colour, scene, camera, noise) is made the same way for every motion. Rotations are only given to
  shapes that are not rotation invariant (never to discs and rings).
* Camera bias [paper §1, multires]: the subject stays inside the central `window_frac` of the frame
  (the camera follows the action); the scene fills the frame around and behind it.
* Camera motion that is not the label's cue: `camera_motion_frac` of the videos of every class pan or
  zoom the background (never the subject window: the camera is following the subject). This is the
  nuisance that made motion "hurt" for some Sports-1M classes (Table 2).
* Label noise like the paper's weak YouTube labels: `label_noise` of the videos show another leaf
  (drawn uniformly) than their label says; within each video, with probability `cutaway_prob` one run
  of 10-30% of the frames is a cut-away to an off-topic scoreboard or crowd shot (about 5% of all
  frames); `multilabel_frac` of the videos carry a second label — a leaf of the same group whose subject
  is ALSO in the video [choice: Sports-1M's multi-labels are mostly related sports shown together].
* Variable length: `min_seconds`..`max_seconds` at `fps`, every video a real encoded file
  (`video_io.write_video`, mp4 / XVID avi).

Determinism: video i of a data set draws everything from `np.random.default_rng([seed, i])` (its plan)
and from seeds the plan draws (its pixels), so a video does not depend on any other video, on the
worker count or on the order of generation. Per-pixel work uses only IEEE-exact operations (+ − × /,
sqrt, floor, abs, min/max) — no vectorised transcendental functions, whose SIMD versions differ between
CPUs; the few sines and cosines (per frame, on scalars) come from Python's `math` (the C library's,
correctly rounded on glibc). The rendered pixels are therefore the same on any machine with the same
NumPy random streams; the encoded bytes are the same for the same FFmpeg build (and any worker count).

Difficulty (`difficulty_probe`, measured on preset `cpu`, seed 0: multinomial logistic regression
trained on 4 frames (pairs) of each of the 960 train videos, scored on 4 of each of the 384 val+test
videos, every sample mirrored with probability 0.5 as in training; standard error <= 0.026):

  features       leaf   group   look   siblings
  chance        0.042   0.250  0.083   0.500
  single frame  0.481   0.931  0.900   0.536   (colour histograms of one frame)
  frame pair    0.757   0.917  0.870   0.851   (+ Lucas-Kanade subject motion between t and t+1)
  motion only   0.398   0.515  0.428   0.855

Appearance (group, look) is easy from one frame; the motion sibling is at chance from one frame and
well above it from two, so the data set separates single-frame from temporal models by design.

Layouts written by `generate`:
  sports presets:  videos/<video_id>.mp4, manifest.csv ("path,label[;label...],split", class names),
                   classes.txt, hierarchy.json, README.md, synthetic.json
  transfer preset: UCF-101/<Class>/v_<Class>_gXX_cYY.avi, ucfTrainTestlist/{classInd,trainlist0k,
                   testlist0k}.txt (CRLF), README.md, synthetic.json

CLI: python -m stcnn.data.synthetic --preset=cpu --out=DIR [--probe] [--workers=N]
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import json
import math
import os
import pathlib
import shutil
import tempfile
import time
from typing import Callable, Sequence

from absl import app
from absl import flags
from absl import logging
import numpy as np

from stcnn.data import video_io

FORMAT_VERSION = 2  # 2: mirror-symmetric motion classes (no left/right or cw/ccw siblings)
SPLITS = ("train", "val", "test")

# ----------------------------------------------------------------------------------------------------
# Presets.
# ----------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Preset:
  """Generator settings. Sizes are the *stored* (pre-crop) frame size; cropping is decided elsewhere.

  Attributes:
    name: preset name, written to the README.
    num_groups: coarse groups (= scenes); at most len(SCENES) - scene_offset.
    looks_per_group: subject looks (shape + colour) per group.
    motions_per_look: motion siblings per look (2..4); leaves per group = looks × motions.
    frame_size: stored frame height (and width when aspect == 1).
    aspect: width / height of the stored frames (UCF-101 is 4:3-ish; readers crop the centre square).
    videos_per_class: (train, val, test) videos per leaf, sports layout only.
    ucf_groups: UCF layout only: groups gXX per class (split k tests groups 2k-1 and 2k).
    ucf_clips: UCF layout only: clips cYY per group.
    min_seconds, max_seconds: video length range (uniform in frames).
    fps: frame rate (constant; [choice]).
    window_frac: side of the central window the subject lives in, as a fraction of the frame height.
    subject_frac: subject radius as a fraction of the window side.
    label_noise: fraction of videos whose content is another leaf than their label.
    multilabel_frac: fraction of videos with a second label (same group, subject also shown).
    cutaway_prob: probability that a video has one off-topic run of 10-30% of its frames.
    camera_motion_frac: fraction of videos whose background pans or zooms.
    layout: "sports" (manifest) or "ucf101" (official UCF-101 layout).
    look_offset: index of the first look in the global look table (other presets → other classes).
    scene_offset: index of the first scene in SCENES.
  """
  name: str
  num_groups: int = 4
  looks_per_group: int = 3
  motions_per_look: int = 2
  frame_size: int = 64
  aspect: float = 1.0
  videos_per_class: tuple[int, int, int] = (40, 8, 8)
  ucf_groups: int = 6
  ucf_clips: int = 2
  min_seconds: float = 2.0
  max_seconds: float = 4.0
  fps: float = 25.0
  window_frac: float = 0.6
  subject_frac: float = 0.16
  label_noise: float = 0.03
  multilabel_frac: float = 0.05
  cutaway_prob: float = 0.25
  camera_motion_frac: float = 0.3
  layout: str = "sports"
  look_offset: int = 0
  scene_offset: int = 0

  @property
  def leaves_per_group(self) -> int:
    return self.looks_per_group * self.motions_per_look

  @property
  def num_leaves(self) -> int:
    return self.num_groups * self.leaves_per_group

  @property
  def frame_width(self) -> int:
    """Stored width: aspect × height rounded to an even number (yuv420p needs even sides)."""
    return 2 * int(round(self.frame_size * self.aspect / 2))

  @property
  def window(self) -> int:
    return int(round(self.window_frac * self.frame_size))


PRESETS = {
    # For tests: 8 leaves, 32×32, 1-2 s; generation takes a couple of seconds.
    "tiny": Preset("tiny", num_groups=2, looks_per_group=2, motions_per_look=2, frame_size=32,
                   videos_per_class=(4, 2, 2), min_seconds=1.0, max_seconds=2.0),
    # Experiments on a couple of CPU cores: 24 leaves, 64×64, 1,344 videos of 2-4 s.
    "cpu": Preset("cpu"),
    # Big machines: 96 leaves, 200×200 (the paper's stored size), 1,000 videos a leaf split 70/10/20
    # like Sports-1M [paper §2]; 96,000 videos of 2-6 s. Never generated in tests.
    "paper": Preset("paper", num_groups=8, looks_per_group=4, motions_per_look=3, frame_size=200,
                    videos_per_class=(700, 100, 200), min_seconds=2.0, max_seconds=6.0),
    # The UCF-101 role: 18 OTHER leaves (new shape/colour/motion combinations, scenes 4-6), 12 clean
    # videos a leaf (6 groups × 2 clips; clips of a group share their scene), 80×64 frames, 3 splits.
    "transfer": Preset("transfer", num_groups=3, looks_per_group=3, motions_per_look=2,
                       frame_size=64, aspect=1.25, ucf_groups=6, ucf_clips=2, label_noise=0.0,
                       multilabel_frac=0.0, cutaway_prob=0.0, layout="ucf101", look_offset=40,
                       scene_offset=4),
}


def get_preset(preset: str | Preset) -> Preset:
  """A Preset from its name (or the Preset itself), validated."""
  if isinstance(preset, str):
    if preset not in PRESETS:
      raise ValueError(f"unknown synthetic preset {preset!r}; expected one of {sorted(PRESETS)}")
    preset = PRESETS[preset]
  _validate(preset)
  return preset


def _validate(p: Preset) -> None:
  if not 1 <= p.num_groups <= len(SCENES) - p.scene_offset:
    raise ValueError(f"preset {p.name}: num_groups={p.num_groups} needs scenes "
                     f"{p.scene_offset}..{p.scene_offset + p.num_groups - 1}; only {len(SCENES)} exist")
  if not 1 <= p.motions_per_look <= 4:
    raise ValueError(f"preset {p.name}: motions_per_look must be in 1..4, got {p.motions_per_look}")
  if p.look_offset + p.num_groups * p.looks_per_group > len(SHAPES) * len(COLOURS):
    raise ValueError(f"preset {p.name}: more looks than shape × colour combinations")
  if p.layout not in ("sports", "ucf101"):
    raise ValueError(f"preset {p.name}: layout must be 'sports' or 'ucf101', got {p.layout!r}")
  if p.layout == "ucf101" and p.ucf_groups < 6:
    raise ValueError(f"preset {p.name}: ucf101 layout needs ucf_groups >= 6 for 3 splits")
  if not 0 < p.min_seconds <= p.max_seconds:
    raise ValueError(f"preset {p.name}: need 0 < min_seconds <= max_seconds")


# ----------------------------------------------------------------------------------------------------
# The class tree: scenes (groups), looks (shape + colour), motions.
# ----------------------------------------------------------------------------------------------------

SHAPES = ("disc", "square", "triangle", "ring", "bar", "cross", "half_disc", "frame")
ROTATION_INVARIANT = ("disc", "ring")
COLOURS = {
    "red": (0.85, 0.12, 0.12), "green": (0.1, 0.75, 0.3), "blue": (0.12, 0.25, 0.9),
    "yellow": (0.95, 0.85, 0.1), "cyan": (0.1, 0.85, 0.9), "magenta": (0.85, 0.15, 0.75),
    "orange": (0.95, 0.5, 0.08), "white": (0.97, 0.97, 0.97), "black": (0.06, 0.06, 0.06),
    "purple": (0.45, 0.15, 0.65),
}
# Motion sibling sets, each ordered so that any prefix is a meaningful set of siblings.
# Every motion is mirror-symmetric in distribution (module docstring): horizontal senses are random.
MOTION_SETS = (
    ("slide_up", "slide_down", "slide_sideways", "still"),  # direction (sideways: left or right)
    ("spin", "still", "wobble", "spin_fast"),  # rotation (sense random) / none / periodic
    ("drift_slow", "drift_fast", "drift_medium", "still"),  # speed (heading random)
    ("glide", "hop", "sway", "orbit"),  # sliding vs bouncing vs periodic vs circular
)


@dataclasses.dataclass(frozen=True)
class Scene:
  """A group's background texture, periodic (period 1 frame height) in world coordinates.

  noise: (grid cells, amplitude) value-noise octaves added to the brightness.
  stripes: (axis 'u'|'v', frequency, amplitude) brightness triangle-wave stripes.
  lines: (axis, frequency, half width in frame heights, rgb, dash frequency or 0, warp amplitude).
  ring: (radius, half width, rgb) a circle centred on each period cell, or None.
  """
  group: str
  base: tuple[float, float, float]
  noise: tuple[tuple[int, float], ...] = ()
  stripes: tuple[tuple[str, int, float], ...] = ()
  lines: tuple[tuple[str, int, float, tuple[float, float, float], int, float], ...] = ()
  ring: tuple[float, float, tuple[float, float, float]] | None = None


_WHITE = (0.95, 0.95, 0.95)
SCENES = (
    Scene("ball_sports", (0.22, 0.55, 0.2), noise=((6, 0.04), (32, 0.03)),
          stripes=(("u", 5, 0.06),), lines=(("v", 1, 0.012, _WHITE, 0, 0.0),)),
    Scene("water_sports", (0.12, 0.38, 0.72), noise=((4, 0.05),),
          stripes=(("v", 8, 0.1),), lines=(("v", 8, 0.012, (0.8, 0.9, 1.0), 0, 0.3),)),
    Scene("winter_sports", (0.86, 0.89, 0.94), noise=((4, 0.08), (16, 0.05), (48, 0.03)),
          lines=(("u", 3, 0.008, (0.6, 0.65, 0.78), 0, 0.2),)),
    Scene("combat_sports", (0.68, 0.22, 0.18), noise=((8, 0.03),),
          ring=(0.32, 0.02, (0.95, 0.85, 0.3))),
    Scene("motor_sports", (0.32, 0.32, 0.34), noise=((32, 0.06), (8, 0.04)),
          lines=(("v", 3, 0.012, (0.95, 0.9, 0.4), 6, 0.0),)),
    Scene("racket_sports", (0.25, 0.45, 0.65), noise=((8, 0.02),),
          lines=(("u", 2, 0.01, _WHITE, 0, 0.0), ("v", 2, 0.01, _WHITE, 0, 0.0))),
    Scene("track_sports", (0.7, 0.32, 0.22), noise=((16, 0.04),),
          lines=(("v", 8, 0.008, _WHITE, 0, 0.0),)),
    Scene("animal_sports", (0.78, 0.68, 0.48), noise=((6, 0.08), (24, 0.05)),
          lines=(("u", 1, 0.02, (0.45, 0.3, 0.15), 4, 0.0),)),
)


@dataclasses.dataclass(frozen=True)
class Leaf:
  """One class: its id, readable name, group, look and motion."""
  id: int
  name: str
  group: int
  look: int
  shape: str
  colour: str
  motion: str


def _look(k: int) -> tuple[str, str, tuple[str, ...]]:
  """Global look k → (shape, colour, motion set). Pairs are unique for k < 80 (8 shapes, 10 colours).

  Consecutive looks (those of one group) differ in both shape and colour; motion sets cycle, skipping
  rotation sets for rotation-invariant shapes (a spinning disc would be invisible motion).
  """
  shape = SHAPES[k % len(SHAPES)]
  colour = list(COLOURS)[(k // len(SHAPES) + k) % len(COLOURS)]
  m = k % len(MOTION_SETS)
  if shape in ROTATION_INVARIANT and MOTION_SETS[m][0].startswith("spin"):
    m = (m + 1) % len(MOTION_SETS)
  return shape, colour, MOTION_SETS[m]


def _name(parts: Sequence[str], camel: bool) -> str:
  words = "_".join(parts).split("_")
  return "".join(w.capitalize() for w in words) if camel else "_".join(words)


def leaves(preset: str | Preset) -> list[Leaf]:
  """The leaves (class ids 0..L-1): group-major, then look, then motion."""
  return list(_leaves(get_preset(preset)))


@functools.lru_cache(maxsize=64)
def _leaves(p: Preset) -> tuple[Leaf, ...]:
  out = []
  for g in range(p.num_groups):
    for j in range(p.looks_per_group):
      look = g * p.looks_per_group + j
      shape, colour, motions = _look(p.look_offset + look)
      for motion in motions[:p.motions_per_look]:
        name = _name((colour, shape, motion), camel=p.layout == "ucf101")
        out.append(Leaf(len(out), name, g, look, shape, colour, motion))
  return tuple(out)


def group_names(preset: str | Preset) -> list[str]:
  p = get_preset(preset)
  return [_name((SCENES[p.scene_offset + g].group,), camel=p.layout == "ucf101")
          for g in range(p.num_groups)]


def class_names(preset: str | Preset) -> list[str]:
  return [leaf.name for leaf in leaves(preset)]


def hierarchy(preset: str | Preset) -> dict:
  """The class tree in the `hierarchy.json` format of stcnn.data (leaves first, then groups)."""
  p = get_preset(preset)
  ls = leaves(p)
  return {"names": [leaf.name for leaf in ls] + group_names(p),
          "parents": [p.num_leaves + leaf.group for leaf in ls] + [-1] * p.num_groups,
          "num_leaves": p.num_leaves}


def motion_siblings(preset: str | Preset) -> list[list[int]]:
  """Sets of leaf ids that differ only in motion (same look), in look order."""
  sets = {}
  for leaf in leaves(preset):
    sets.setdefault(leaf.look, []).append(leaf.id)
  return [sets[k] for k in sorted(sets)]


# ----------------------------------------------------------------------------------------------------
# The plan: every video's labels, content, length and nuisances, without rendering a pixel.
# ----------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class VideoSpec:
  """Everything that decides one video. `labels` are recorded; `content` is what is shown.

  content differs from labels when the label is noisy (content[0] is another leaf). cutaway is
  (start, length) of the off-topic run, length 0 for none. camera is 'static', 'pan' or 'zoom'.
  """
  index: int
  video_id: str
  path: str
  split: str
  labels: tuple[int, ...]
  content: tuple[int, ...]
  num_frames: int
  camera: str
  cutaway: tuple[int, int]
  scene_seed: tuple[int, ...]
  render_seed: int
  ucf_group: int = 0
  ucf_clip: int = 0


def _other(rng: np.random.Generator, choices: Sequence[int], exclude: int) -> int:
  rest = [c for c in choices if c != exclude]
  return int(rest[rng.integers(len(rest))])


def _draw_spec(p: Preset, rng: np.random.Generator, label: int, **fields) -> VideoSpec:
  """Draws one video's labels, content and nuisances from rng (its own generator)."""
  ls = _leaves(p)
  labels, content = [label], [label]
  if rng.random() < p.label_noise:
    content[0] = _other(rng, range(p.num_leaves), label)
  if rng.random() < p.multilabel_frac:
    siblings = [leaf.id for leaf in ls if leaf.group == ls[label].group]
    second = _other(rng, siblings, label)
    labels.append(second)
    content.append(second)
  lo, hi = int(round(p.min_seconds * p.fps)), int(round(p.max_seconds * p.fps))
  num_frames = int(rng.integers(lo, hi + 1))
  camera = "static"
  if rng.random() < p.camera_motion_frac:
    camera = ("pan", "zoom")[int(rng.integers(2))]
  cutaway = (0, 0)
  if rng.random() < p.cutaway_prob:
    length = max(1, int(round(num_frames * rng.uniform(0.1, 0.3))))
    cutaway = (int(rng.integers(num_frames - length + 1)), length)
  render_seed = int(rng.integers(2**63))
  fields.setdefault("scene_seed", (render_seed, 1))
  return VideoSpec(labels=tuple(labels), content=tuple(content), num_frames=num_frames,
                   camera=camera, cutaway=cutaway, render_seed=render_seed, **fields)


def plan(preset: str | Preset, seed: int = 0) -> list[VideoSpec]:
  """All videos of a data set, in file order. Video i depends only on (seed, i)."""
  p = get_preset(preset)
  return _plan_ucf(p, seed) if p.layout == "ucf101" else _plan_sports(p, seed)


def _plan_sports(p: Preset, seed: int) -> list[VideoSpec]:
  specs = []
  for split, count in zip(SPLITS, p.videos_per_class):
    for label in range(p.num_leaves):
      for _ in range(count):
        i = len(specs)
        vid = f"syn{i:07d}"
        specs.append(_draw_spec(p, np.random.default_rng([seed, i]), label, index=i, video_id=vid,
                                path=f"videos/{vid}.mp4", split=split))
  return specs


def _plan_ucf(p: Preset, seed: int) -> list[VideoSpec]:
  """UCF-101 style: clips of one (class, group) share their scene (the same 'place and actor')."""
  specs, names = [], class_names(p)
  for label, name in enumerate(names):
    for g in range(1, p.ucf_groups + 1):
      for c in range(1, p.ucf_clips + 1):
        i = len(specs)
        stem = f"v_{name}_g{g:02d}_c{c:02d}"
        specs.append(_draw_spec(p, np.random.default_rng([seed, i]), label, index=i,
                                video_id=stem, path=f"UCF-101/{name}/{stem}.avi", split="",
                                scene_seed=(seed, label, g, 1), ucf_group=g, ucf_clip=c))
  return specs


# ----------------------------------------------------------------------------------------------------
# Rendering. Random draws happen first (per video, fixed order); pixels are then a pure function of
# the draws, so any subset of frames renders identically to the full video.
# ----------------------------------------------------------------------------------------------------


def _tri(x):
  """Triangle wave: |frac(x) - 0.5|, in [0, 0.5]; 0.5 at integers."""
  return np.abs(x - np.floor(x) - 0.5)


def _cos(a) -> np.ndarray:
  return np.array([math.cos(v) for v in np.ravel(a)], np.float64).reshape(np.shape(a))


def _sin(a) -> np.ndarray:
  return np.array([math.sin(v) for v in np.ravel(a)], np.float64).reshape(np.shape(a))


# Motion constants, in window sides per second and revolutions per second [choice: a 10-frame clip at
# 25 fps moves a subject about a fifth of the window, clearly visible at 64 px].
_SLIDE_SPEED = 0.5
_DRIFT_SPEEDS = {"slow": 0.2, "medium": 0.45, "fast": 0.8}
_SPIN_RATE = 0.5
_WOBBLE_AMPLITUDE = math.pi / 4
_PERIOD = 1.0  # seconds, for wobble / hop / sway / orbit
_HOP_HEIGHT = 0.3
_SWAY_AMPLITUDE = 0.2
_ORBIT_RADIUS = 0.15


def _trajectory(motion: str, rng: np.random.Generator, t: np.ndarray, w: float):
  """Displacement (dx, dy) in pixels and rotation dθ in radians at times t (s); y points down.

  Every motion makes the same draws in the same order, so siblings' other draws line up.
  """
  speed = rng.uniform(0.8, 1.2)
  phase = rng.random()
  sign = float(rng.choice([-1.0, 1.0]))
  heading = rng.uniform(0, 2 * math.pi)
  zero = np.zeros_like(t)
  v = _SLIDE_SPEED * speed * w
  cyc = t / _PERIOD + phase
  if motion.startswith("slide_"):
    ux, uy = {"sideways": (sign, 0), "up": (0, -1), "down": (0, 1)}[motion[6:]]
    return ux * v * t, uy * v * t, zero
  if motion in ("spin", "spin_fast"):  # sense random: θ grows → clockwise on screen (y down)
    rate = _SPIN_RATE * (2.5 if motion == "spin_fast" else 1.0)
    return zero, zero, sign * 2 * math.pi * rate * speed * t
  if motion == "still":
    return zero, zero, zero
  if motion == "wobble":
    return zero, zero, _WOBBLE_AMPLITUDE * 4 * (_tri(cyc) - 0.25)
  if motion.startswith("drift_"):
    d = _DRIFT_SPEEDS[motion[6:]] * speed * w * t
    return math.cos(heading) * d, math.sin(heading) * d, zero
  if motion == "glide":
    return sign * v * t, zero, zero
  if motion == "hop":
    u = cyc - np.floor(cyc)
    return sign * v * t, -_HOP_HEIGHT * w * 4 * u * (1 - u), zero
  if motion == "sway":
    return _SWAY_AMPLITUDE * w * _sin(2 * math.pi * cyc), zero, zero
  if motion == "orbit":
    a = sign * 2 * math.pi * cyc
    return _ORBIT_RADIUS * w * _cos(a), _ORBIT_RADIUS * w * _sin(a), zero
  raise ValueError(f"unknown motion {motion!r}")


@dataclasses.dataclass
class _Subject:
  shape: str
  colour: np.ndarray  # (3,)
  radius: float  # pixels
  x: np.ndarray  # (T,) window pixels, wrapped
  y: np.ndarray
  cos: np.ndarray  # (T,) of the orientation
  sin: np.ndarray


def _draw_subject(p: Preset, leaf: Leaf, rng: np.random.Generator, num_frames: int) -> _Subject:
  """Uniform start position on the window torus and uniform start angle: every frame's position and
  orientation are uniform whatever the motion."""
  w = p.window
  x0, y0 = rng.uniform(0, w, 2)
  theta0 = rng.uniform(0, 2 * math.pi)
  colour = np.clip(np.array(COLOURS[leaf.colour]) + rng.uniform(-0.05, 0.05, 3), 0, 1)
  radius = p.subject_frac * w * rng.uniform(0.85, 1.15)
  dx, dy, dth = _trajectory(leaf.motion, rng, np.arange(num_frames) / p.fps, w)
  theta = theta0 + dth
  return _Subject(leaf.shape, colour.astype(np.float32), float(radius),
                  np.mod(x0 + dx, w), np.mod(y0 + dy, w), _cos(theta), _sin(theta))


@dataclasses.dataclass
class _Camera:
  ox: np.ndarray  # (T,) world offset of the frame centre (frame heights)
  oy: np.ndarray
  zoom: np.ndarray  # (T,) magnification
  static: bool


def _draw_camera(kind: str, rng: np.random.Generator, num_frames: int, fps: float) -> _Camera:
  """Uniform random world offset (the scene is periodic, so every frame's background is stationary);
  pans move 0.1-0.3 frame heights a second in a uniform direction; zooms change scale by ±20-40%."""
  ox, oy = rng.random(2)
  heading, speed, zoom_to = rng.uniform(0, 2 * math.pi), rng.uniform(0.1, 0.3), rng.uniform(0.2, 0.4)
  zoom_sign = float(rng.choice([-1.0, 1.0]))
  t = np.arange(num_frames) / fps
  frac = np.arange(num_frames) / max(1, num_frames - 1)
  zoom = np.ones(num_frames)
  if kind == "pan":
    ox, oy = ox + math.cos(heading) * speed * t, oy + math.sin(heading) * speed * t
  elif kind == "zoom":
    zoom = 1 + zoom_sign * zoom_to * frac
  ox, oy = ox + np.zeros(num_frames), oy + np.zeros(num_frames)
  return _Camera(ox.astype(np.float32), oy.astype(np.float32), zoom.astype(np.float32),
                 kind == "static")


@dataclasses.dataclass
class _SceneDraw:
  scene: Scene
  base: np.ndarray  # (3,)
  grids: list[np.ndarray]  # value-noise grids, one per octave


def _draw_scene(scene: Scene, rng: np.random.Generator) -> _SceneDraw:
  base = np.clip(np.array(scene.base) + rng.uniform(-0.05, 0.05, 3), 0, 1).astype(np.float32)
  grids = [rng.uniform(-1, 1, (n, n)).astype(np.float32) for n, _ in scene.noise]
  return _SceneDraw(scene, base, grids)


def _cell(x, n: int):
  """Grid cell indices (i0, i1) and smoothstep weight of periodic coordinates x on an n grid."""
  g = x * n
  i = np.floor(g)
  f = g - i
  i0 = np.mod(i, n).astype(np.int64)
  return i0, (i0 + 1) % n, f * f * (3 - 2 * f)


def _value_noise(grid: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
  """Smooth periodic noise (period 1) at u (n, 1, w) × v (n, h, 1) → (n, h, w); separable."""
  n = grid.shape[0]
  iu0, iu1, fu = _cell(u[:, 0, :], n)  # (frames, w)
  iv0, iv1, fv = _cell(v[:, :, 0], n)  # (frames, h)
  rows = grid[:, iu0] * (1 - fu) + grid[:, iu1] * fu  # (n, frames, w)
  rows = rows.transpose(1, 0, 2)
  k = np.arange(len(rows))[:, None]
  return rows[k, iv0] * (1 - fv)[..., None] + rows[k, iv1] * fv[..., None]


def _background(sd: _SceneDraw, cam: _Camera, ts: np.ndarray, h: int, w: int) -> np.ndarray:
  """(n, h, w, 3) float32 scene at frames ts. World unit = one frame height."""
  if cam.static:  # the same background in every frame: render it once
    one = _background_frames(sd, cam, ts[:1], h, w)
    return np.repeat(one, len(ts), axis=0)
  return _background_frames(sd, cam, ts, h, w)


def _background_frames(sd: _SceneDraw, cam: _Camera, ts: np.ndarray, h: int, w: int):
  s = np.float32(h)
  ys = (np.arange(h, dtype=np.float32) + 0.5) / s - np.float32(0.5)
  xs = (np.arange(w, dtype=np.float32) + 0.5) / s - np.float32(w / (2 * h))
  z = cam.zoom[ts][:, None, None]
  u = cam.ox[ts][:, None, None] + xs[None, None, :] / z  # (n, 1, w)
  v = cam.oy[ts][:, None, None] + ys[None, :, None] / z  # (n, h, 1)
  lum = np.zeros((len(ts), h, w), np.float32)
  for grid, (_, amp) in zip(sd.grids, sd.scene.noise):
    lum += np.float32(amp) * _value_noise(grid, u, v)
  for axis, freq, amp in sd.scene.stripes:
    lum += np.float32(amp * 4) * (_tri((u if axis == "u" else v) * freq) - np.float32(0.25))
  img = sd.base + lum[..., None]
  for axis, freq, half, rgb, dash, warp in sd.scene.lines:
    img = _blend(img, _line_mask(u, v, axis, freq, half, dash, warp, s), rgb)
  if sd.scene.ring is not None:
    radius, half, rgb = sd.scene.ring
    du, dv = u - np.round(u), v - np.round(v)
    dist = np.abs(np.sqrt(du * du + dv * dv) - np.float32(radius))
    img = _blend(img, np.clip((np.float32(half) - dist) * s + 0.5, 0, 1), rgb)
  return img


def _line_mask(u, v, axis, freq, half, dash, warp, s):
  """Soft (1 px) mask of the lines `coord * freq ∈ Z`, optionally dashed and warped."""
  along, across = (u, v) if axis == "u" else (v, u)
  coord = along * freq + np.float32(warp) * 4 * (_tri(across * 3) - np.float32(0.25))
  dist = (np.float32(0.5) - _tri(coord)) / np.float32(freq)
  mask = np.clip((np.float32(half) - dist) * s + 0.5, 0, 1)
  if dash:
    mask = mask * (_tri(across * dash) > 0.25)
  return mask


def _blend(img, mask, rgb):
  m = mask[..., None]
  return img * (1 - m) + np.asarray(rgb, np.float32) * m


def _box(px, py, bx, by):
  qx, qy = np.abs(px) - bx, np.abs(py) - by
  outside = np.sqrt(np.maximum(qx, 0) ** 2 + np.maximum(qy, 0) ** 2)
  return outside + np.minimum(np.maximum(qx, qy), 0)


def _triangle(px, py):
  """Signed distance to an equilateral triangle (inradius 0.58, circumradius 1.15)."""
  k = np.float32(math.sqrt(3.0))
  px, py = np.abs(px) - 1, py + 1 / k
  flip = px + k * py > 0
  px, py = np.where(flip, (px - k * py) / 2, px), np.where(flip, (-k * px - py) / 2, py)
  px = px - np.clip(px, -2, 0)
  return -np.sqrt(px * px + py * py) * np.sign(py)


_SDF: dict[str, Callable] = {
    "disc": lambda x, y: np.sqrt(x * x + y * y) - 1,
    "ring": lambda x, y: np.abs(np.sqrt(x * x + y * y) - 0.75) - 0.25,
    "square": lambda x, y: _box(x, y, 0.8, 0.8),
    "triangle": lambda x, y: _triangle(x, y - 0.2),
    "bar": lambda x, y: _box(x, y, 1.15, 0.35),
    "cross": lambda x, y: np.minimum(_box(x, y, 1.0, 0.3), _box(x, y, 0.3, 1.0)),
    "half_disc": lambda x, y: np.maximum(np.sqrt(x * x + (y - 0.4) ** 2) - 1, y - 0.4),
    "frame": lambda x, y: np.abs(_box(x, y, 0.75, 0.75)) - 0.18,
}


def _subject_alpha(sub: _Subject, ts: np.ndarray, w: int) -> np.ndarray:
  """(n, w, w) coverage of the subject on the window torus (1 px soft edge)."""
  c = np.arange(w, dtype=np.float32) + np.float32(0.5)
  dx = c[None, None, :] - sub.x[ts].astype(np.float32)[:, None, None]
  dy = c[None, :, None] - sub.y[ts].astype(np.float32)[:, None, None]
  dx, dy = dx - w * np.round(dx / w), dy - w * np.round(dy / w)
  cs = sub.cos[ts].astype(np.float32)[:, None, None]
  sn = sub.sin[ts].astype(np.float32)[:, None, None]
  r = np.float32(sub.radius)
  px, py = (cs * dx + sn * dy) / r, (cs * dy - sn * dx) / r
  return np.clip(0.5 - _SDF[sub.shape](px, py) * r, 0, 1)


def _cutaway_image(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
  """An off-topic frame: a scoreboard (dark panel, bright bars) or a crowd (colourful mosaic)."""
  kind = int(rng.integers(2))
  if kind == 0:
    img = np.zeros((h, w, 3), np.float32) + np.array([0.05, 0.08, 0.2], np.float32)
    img[: max(1, h // 6)] = rng.uniform(0.5, 0.9, 3)
    for _ in range(int(rng.integers(3, 7))):
      top, left = int(rng.integers(h // 4, h - h // 6)), int(rng.integers(0, w - w // 6))
      img[top:top + max(1, h // 10), left:left + max(1, w // 6)] = rng.uniform(0.7, 1.0, 3)
    return img
  grid = rng.uniform(0, 1, (max(2, h // 3), max(2, w // 3), 3)).astype(np.float32)
  img = grid[np.arange(h) * grid.shape[0] // h][:, np.arange(w) * grid.shape[1] // w]
  return img * np.linspace(0.4, 1.0, h, dtype=np.float32)[:, None, None]


@dataclasses.dataclass
class _Video:
  """All draws of one video; rendering frames from it makes no further random draws."""
  size: tuple[int, int]
  window: int
  scene: _SceneDraw
  camera: _Camera
  subjects: list[_Subject]
  cutaway: tuple[int, int]
  cutaway_image: np.ndarray | None


def _draw_video(p: Preset, spec: VideoSpec) -> _Video:
  ls = leaves(p)
  scene = SCENES[p.scene_offset + ls[spec.content[0]].group]
  sd = _draw_scene(scene, np.random.default_rng(spec.scene_seed))
  rng = np.random.default_rng(spec.render_seed)
  cam = _draw_camera(spec.camera, rng, spec.num_frames, p.fps)
  subjects = [_draw_subject(p, ls[c], rng, spec.num_frames) for c in spec.content]
  image = None
  if spec.cutaway[1]:
    image = _cutaway_image(rng, p.frame_size, p.frame_width)
  return _Video((p.frame_size, p.frame_width), p.window, sd, cam, subjects, spec.cutaway, image)


def _render(video: _Video, ts: np.ndarray) -> np.ndarray:
  """uint8 (n, H, W, 3) frames ts of a drawn video."""
  h, w = video.size
  img = _background(video.scene, video.camera, ts, h, w)
  top, left = (h - video.window) // 2, (w - video.window) // 2
  win = img[:, top:top + video.window, left:left + video.window]
  for sub in video.subjects:
    win = _blend(win, _subject_alpha(sub, ts, video.window), sub.colour)
  img[:, top:top + video.window, left:left + video.window] = win
  start, length = video.cutaway
  off = (ts >= start) & (ts < start + length)
  if length and off.any():
    img[off] = video.cutaway_image
  return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def render_spec(preset: str | Preset, spec: VideoSpec, frames=None, chunk: int = 32) -> np.ndarray:
  """uint8 (T, H, W, 3): the frames (all, or the indices `frames`) of a planned video."""
  p = get_preset(preset)
  video = _draw_video(p, spec)
  ts = np.arange(spec.num_frames) if frames is None else np.asarray(frames, np.int64)
  return np.concatenate([_render(video, ts[i:i + chunk]) for i in range(0, max(1, len(ts)), chunk)])


def render_video(preset: str | Preset, class_id: int, rng: np.random.Generator,
                 num_frames: int | None = None, nuisance: bool = True) -> np.ndarray:
  """uint8 (T, H, W, 3) frames of a fresh video of leaf `class_id` (no label noise, one label).

  Args:
    preset: preset name or Preset.
    class_id: the leaf to show.
    rng: where every random choice comes from.
    num_frames: the length; drawn from the preset's range when None.
    nuisance: False turns off camera motion and cut-aways (the class content alone).
  """
  p = get_preset(preset)
  p = dataclasses.replace(p, label_noise=0.0, multilabel_frac=0.0)
  if not nuisance:
    p = dataclasses.replace(p, camera_motion_frac=0.0, cutaway_prob=0.0)
  if num_frames is not None:
    p = dataclasses.replace(p, min_seconds=num_frames / p.fps, max_seconds=num_frames / p.fps)
  spec = _draw_spec(p, rng, class_id, index=-1, video_id="", path="", split="")
  return render_spec(p, spec)


# ----------------------------------------------------------------------------------------------------
# Writing a data set.
# ----------------------------------------------------------------------------------------------------


def _write_one(args) -> str:
  p, spec, root = args
  path = pathlib.Path(root) / spec.path
  path.parent.mkdir(parents=True, exist_ok=True)
  video_io.write_video(path, render_spec(p, spec), fps=p.fps)
  return spec.path


def _write_videos(p: Preset, specs: list[VideoSpec], root: pathlib.Path, workers: int) -> None:
  jobs = [(p, s, str(root)) for s in specs]
  if workers <= 1:
    for i, job in enumerate(jobs):
      _write_one(job)
      if (i + 1) % 500 == 0:
        logging.info("synthetic %s: %d/%d videos", p.name, i + 1, len(jobs))
    return
  with concurrent.futures.ProcessPoolExecutor(workers) as pool:
    for i, _ in enumerate(pool.map(_write_one, jobs, chunksize=8)):
      if (i + 1) % 500 == 0:
        logging.info("synthetic %s: %d/%d videos", p.name, i + 1, len(jobs))


def _manifest_lines(p: Preset, specs: list[VideoSpec]) -> list[str]:
  names = class_names(p)
  return [f"{s.path},{';'.join(names[c] for c in s.labels)},{s.split}" for s in specs]


def _write_sports_index(p: Preset, specs: list[VideoSpec], root: pathlib.Path) -> None:
  (root / "manifest.csv").write_text("\n".join(_manifest_lines(p, specs)) + "\n")
  (root / "classes.txt").write_text("\n".join(class_names(p)) + "\n")
  (root / "hierarchy.json").write_text(json.dumps(hierarchy(p), indent=1) + "\n")


def ucf_test_groups(split: int) -> tuple[int, int]:
  """UCF layout: split k (1..3) tests groups 2k-1 and 2k [choice: the official splits test groups
  1-7, 8-14, 15-21 of 25; scaled down to pairs of our groups]."""
  return 2 * split - 1, 2 * split


def _write_ucf_index(p: Preset, specs: list[VideoSpec], root: pathlib.Path) -> None:
  """classInd.txt ("1 Name"), trainlist0k.txt ("Name/v_....avi label"), testlist0k.txt, CRLF."""
  lists = root / "ucfTrainTestlist"
  lists.mkdir(parents=True, exist_ok=True)
  names = class_names(p)
  crlf = lambda lines: "".join(f"{line}\r\n" for line in lines).encode()
  (lists / "classInd.txt").write_bytes(crlf(f"{i + 1} {n}" for i, n in enumerate(names)))
  for k in (1, 2, 3):
    test = [s for s in specs if s.ucf_group in ucf_test_groups(k)]
    train = [s for s in specs if s.ucf_group not in ucf_test_groups(k)]
    rel = lambda s: s.path.split("/", 1)[1]
    (lists / f"trainlist0{k}.txt").write_bytes(crlf(f"{rel(s)} {s.labels[0] + 1}" for s in train))
    (lists / f"testlist0{k}.txt").write_bytes(crlf(rel(s) for s in test))


def _readme(p: Preset, specs: list[VideoSpec], seed: int) -> str:
  """The data set's README (deterministic: no times or host names, so reruns write equal bytes)."""
  ls = leaves(p)
  frames = sum(s.num_frames for s in specs)
  lines = [
      f"# stcnn synthetic data set — preset `{p.name}`, seed {seed}", "",
      "Generated by `stcnn.data.synthetic` (see its module docstring for the design):",
      f"`python -m stcnn.data.synthetic --preset={p.name} --seed={seed} --out=DIR`", "",
      f"- {len(specs)} videos, {frames} frames, {p.frame_size}x{p.frame_width} (HxW) at {p.fps:g} fps,",
      f"  {p.min_seconds:g}-{p.max_seconds:g} s each.",
      f"- {p.num_leaves} leaves in {p.num_groups} groups; {p.looks_per_group} looks × "
      f"{p.motions_per_look} motions a group.",
      f"- Subject inside the central {p.window}x{p.window} window; camera motion on "
      f"{p.camera_motion_frac:.0%} of videos (background only).",
      f"- Noise: {p.label_noise:.0%} wrong labels, {p.multilabel_frac:.0%} two-label videos, "
      f"cut-aways in {p.cutaway_prob:.0%} of videos (10-30% of their frames).",
  ]
  if p.layout == "sports":
    lines.append(f"- Videos a class (train/val/test): {'/'.join(map(str, p.videos_per_class))}.")
  else:
    lines.append(f"- UCF-101 layout: {p.ucf_groups} groups × {p.ucf_clips} clips a class; split k "
                 "tests groups 2k-1 and 2k.")
  lines += ["", "## Settings", "", "```", json.dumps(dataclasses.asdict(p), indent=1), "```", "",
            "## Classes (id, name, group, motion siblings share a look)", ""]
  groups = group_names(p)
  lines += [f"{leaf.id:3d} {leaf.name}  ({groups[leaf.group]}, look {leaf.look})" for leaf in ls]
  return "\n".join(lines) + "\n"


def _marker(p: Preset, seed: int, num_videos: int) -> dict:
  return {"generator": "stcnn.data.synthetic", "format_version": FORMAT_VERSION,
          "preset": dataclasses.asdict(p), "seed": seed, "num_videos": num_videos}


def _existing(out: pathlib.Path, want: dict) -> bool:
  """True if out holds this exact data set; raises if it holds something else."""
  marker = out / "synthetic.json"
  if not out.exists() or (out.is_dir() and not any(out.iterdir())):
    return False
  if not marker.exists():
    raise FileExistsError(f"{out}: exists and is not a complete synthetic data set "
                          f"(no {marker.name}); remove it or choose another --out")
  have = json.loads(marker.read_text())
  if "videos_per_class" in have.get("preset", {}):  # JSON has no tuples
    have["preset"]["videos_per_class"] = tuple(have["preset"]["videos_per_class"])
  if have != want:
    raise FileExistsError(f"{marker}: holds another data set (preset/seed/version differ): "
                          f"{have} != {want}")
  return True


def generate(preset: str | Preset, out_dir, seed: int = 0, workers: int = 1) -> pathlib.Path:
  """Writes the data set to out_dir (atomically) and returns out_dir.

  Everything is written to a hidden temporary sibling of out_dir that is renamed to out_dir at the
  end, so a killed generation never leaves a complete-looking data set (the temporary directory of a
  killed run stays behind, hidden). If out_dir already holds this data set (same preset, seed and
  format version, recorded in synthetic.json) nothing is done; if it holds anything else, raises.
  """
  p = get_preset(preset)
  out = pathlib.Path(out_dir)
  specs = plan(p, seed)
  want = _marker(p, seed, len(specs))
  if _existing(out, want):
    return out
  out.parent.mkdir(parents=True, exist_ok=True)
  tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
  umask = os.umask(0)
  os.umask(umask)
  tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; the data set is not
  try:
    _write_videos(p, specs, tmp, workers)
    if p.layout == "sports":
      _write_sports_index(p, specs, tmp)
    else:
      _write_ucf_index(p, specs, tmp)
    (tmp / "README.md").write_text(_readme(p, specs, seed))
    (tmp / "synthetic.json").write_text(json.dumps(want, indent=1) + "\n")
    _publish(tmp, out, want)
  finally:
    if tmp.exists():
      shutil.rmtree(tmp, ignore_errors=True)
  return out


def _publish(tmp: pathlib.Path, out: pathlib.Path, want: dict) -> None:
  """Renames tmp to out; if another process won the race with the same data set, keeps theirs."""
  try:
    os.replace(tmp, out)
  except OSError:
    if not _existing(out, want):
      raise


# ----------------------------------------------------------------------------------------------------
# Difficulty probe: a linear classifier on hand-made single-frame and two-frame features.
# ----------------------------------------------------------------------------------------------------


def _colour_hist(x: np.ndarray, bins: int = 4) -> np.ndarray:
  """(n, bins³) normalised joint colour histograms of uint8 images (n, h, w, 3)."""
  q = (x.astype(np.int64) * bins) // 256
  code = (q[..., 0] * bins + q[..., 1]) * bins + q[..., 2]
  code = code.reshape(len(x), -1) + bins**3 * np.arange(len(x))[:, None]
  hist = np.bincount(code.ravel(), minlength=len(x) * bins**3).reshape(len(x), bins**3)
  return hist / code.shape[1]


def _window(p: Preset, x: np.ndarray) -> np.ndarray:
  top, left = (p.frame_size - p.window) // 2, (p.frame_width - p.window) // 2
  return x[:, top:top + p.window, left:left + p.window]


def appearance_features(p: Preset, frames: np.ndarray) -> np.ndarray:
  """(n, 128) single-frame features: colour histograms of the whole frame and of the window."""
  return np.concatenate([_colour_hist(frames), _colour_hist(_window(p, frames))], axis=1)


def _blur(x: np.ndarray) -> np.ndarray:
  """Two passes of a 3×3 box filter over the last two axes (edge-replicated)."""
  for _ in range(2):
    for axis in (-1, -2):
      pad = [(0, 0)] * x.ndim
      pad[axis] = (1, 1)
      y = np.pad(x, pad, mode="edge")
      n = x.shape[axis]
      x = (np.take(y, range(0, n), axis) + np.take(y, range(1, n + 1), axis) +
           np.take(y, range(2, n + 2), axis)) / 3
  return x


def _roll_to_centre(x: np.ndarray, energy: np.ndarray) -> np.ndarray:
  """Rolls each window x (n, w, w, ...) on the torus so that the circular centroid of energy
  (n, w, w) lands in the middle: a subject split by the wrap-around becomes whole again."""
  n, w = energy.shape[:2]
  ang = 2 * np.pi * (np.arange(w) + 0.5) / w
  shifts = []
  for axis in (1, 2):
    m = energy.sum(3 - axis)  # (n, w) marginal along `axis`
    c = np.arctan2((m * np.sin(ang)).sum(1), (m * np.cos(ang)).sum(1)) * w / (2 * np.pi)
    shifts.append(np.round(c - w / 2).astype(np.int64))
  iy = (np.arange(w)[None] + shifts[0][:, None]) % w
  ix = (np.arange(w)[None] + shifts[1][:, None]) % w
  return x[np.arange(n)[:, None, None], iy[:, :, None], ix[:, None, :]]


def motion_features(p: Preset, first: np.ndarray, second: np.ndarray,
                    sigma: float = 0.15) -> np.ndarray:
  """(n, 10) two-frame features of the subject: a Lucas-Kanade similarity-motion fit.

  Inside the window, the pair is rolled on the torus to centre the temporal-difference energy (the
  moving subject), blurred, and the brightness-constancy equations Ix·fx + Iy·fy + It = 0 of all three
  colour channels are solved by least squares for fx = u - ω·y + s·x, fy = v + ω·x + s·y about the
  centre, weighted by a Gaussian of width sigma × window. Returns u, v, |u|, |v|, speed, ω, |ω|, s,
  |s| (pixels or radians per frame gap) and the mean energy.
  """
  a = _window(p, first).astype(np.float64) / 255
  b = _window(p, second).astype(np.float64) / 255
  n, w = a.shape[:2]
  energy = _blur(np.abs(b - a).sum(-1))
  ab = _roll_to_centre(np.stack([a, b], -1), energy)  # (n, w, w, 3, 2)
  ab = _blur(np.moveaxis(ab, (1, 2), (-2, -1)))  # (n, 3, 2, w, w)
  a, b = ab[:, :, 0], ab[:, :, 1]
  iy, ix = np.gradient((a + b) / 2, axis=(2, 3))
  it = b - a
  c = np.arange(w) + 0.5 - w / 2
  dy, dx = np.meshgrid(c, c, indexing="ij")
  rho = np.broadcast_to(np.exp(-(dx**2 + dy**2) / (2 * (sigma * w) ** 2)), it.shape)
  basis = np.stack([ix, iy, iy * dx - ix * dy, ix * dx + iy * dy], -1).reshape(n, -1, 4)
  rho = rho.reshape(n, -1)
  ata = np.einsum("npi,np,npj->nij", basis, rho, basis) + 1e-6 * np.eye(4)
  atb = -np.einsum("npi,np,np->ni", basis, rho, it.reshape(n, -1))
  u, v, om, sc = np.moveaxis(np.linalg.solve(ata, atb[..., None])[..., 0], -1, 0)
  return np.stack([u, v, np.abs(u), np.abs(v), np.hypot(u, v), om, np.abs(om), sc, np.abs(sc),
                   energy.mean((1, 2))], -1)


def _fit_softmax(x: np.ndarray, y: np.ndarray, num_classes: int, steps: int = 400,
                 lr: float = 0.05, l2: float = 1e-4):
  """Multinomial logistic regression (Adam, full batch) on standardised features → logits fn."""
  mu, sd = x.mean(0), x.std(0) + 1e-6
  feats = lambda z: np.concatenate([(z - mu) / sd, np.ones((len(z), 1))], 1)
  xs, onehot = feats(x), np.eye(num_classes)[y]
  w = np.zeros((xs.shape[1], num_classes))
  m, v = np.zeros_like(w), np.zeros_like(w)
  for step in range(1, steps + 1):
    logits = xs @ w
    prob = np.exp(logits - logits.max(1, keepdims=True))
    prob /= prob.sum(1, keepdims=True)
    g = xs.T @ (prob - onehot) / len(xs) + l2 * w
    m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
    w -= lr * (m / (1 - 0.9**step)) / (np.sqrt(v / (1 - 0.999**step)) + 1e-8)
  return lambda z: feats(z) @ w


def _probe_samples(p: Preset, specs: list[VideoSpec], seed: int, per_video: int, gap: int,
                   flip: bool = True):
  """Single-frame and two-frame features of `per_video` random frame pairs of every video, each
  pair mirrored with probability 0.5 when `flip` (the paper's augmentation, as a model sees it)."""
  apps, mots, labels = [], [], []
  for s in specs:
    rng = np.random.default_rng([seed, s.index, 7])
    t = rng.integers(0, s.num_frames - gap, per_video)
    frames = render_spec(p, s, np.concatenate([t, t + gap]))
    if flip:
      mirror = np.tile(rng.random(per_video) < 0.5, 2)
      frames[mirror] = frames[mirror, :, ::-1]
    apps.append(appearance_features(p, frames[:per_video]))
    mots.append(motion_features(p, frames[:per_video], frames[per_video:]))
    labels += [s.labels[0]] * per_video
  return np.concatenate(apps), np.concatenate(mots), np.array(labels)


def _probe_scores(p: Preset, logits: np.ndarray, y: np.ndarray) -> dict:
  ls = leaves(p)
  group, look = np.array([leaf.group for leaf in ls]), np.array([leaf.look for leaf in ls])
  pred = logits.argmax(1)
  sib = motion_siblings(p)
  restricted = np.array([sib[look[c]][int(np.argmax(logits[i, sib[look[c]]]))]
                         for i, c in enumerate(y)])
  return {"leaf": float((pred == y).mean()), "group": float((group[pred] == group[y]).mean()),
          "look": float((look[pred] == look[y]).mean()), "siblings": float((restricted == y).mean())}


def difficulty_probe(preset: str | Preset = "cpu", seed: int = 0, frames_per_video: int = 4,
                     gap: int = 1, max_videos_per_class: int | None = None,
                     flip: bool = True) -> dict:
  """Measures how hard the data set is for single-frame vs two-frame linear baselines.

  Frames are rendered (pre-codec) from the plan and, with `flip`, mirrored at random like training
  clips (so a class told apart only by a left/right sense would show up here at chance); train on
  the train split, score val + test (UCF
  layout: split 1). Frames of one video are correlated, so the standard error reported is the bound
  0.5 / sqrt(test videos). Features: "single_frame" = colour histograms of one frame (frame + window);
  "frame_pair" = the same plus `motion_features` of frames t and t+gap; "motion_only" = the latter
  alone. The classifier is multinomial logistic regression over all leaves (noisy first labels, as a
  model would see them). Scores per test frame (pair):
    leaf: leaf accuracy; group: predicted leaf in the right group; look: predicted leaf in the right
    motion-sibling set; siblings: accuracy among the true sibling set only (argmax restricted to it).

  Returns {"chance": {...}, "single_frame": {...}, "frame_pair": {...}, "motion_only": {...},
  "num_train", "num_test" (frame pairs), "test_videos", "stderr", "seconds"}.
  """
  p = get_preset(preset)
  start = time.time()
  specs = plan(p, seed)
  if p.layout == "ucf101":
    train = [s for s in specs if s.ucf_group not in ucf_test_groups(1)]
    test = [s for s in specs if s.ucf_group in ucf_test_groups(1)]
  else:
    train, test = [s for s in specs if s.split == "train"], [s for s in specs if s.split != "train"]
  if max_videos_per_class:
    train, test = _limit(train, max_videos_per_class), _limit(test, max_videos_per_class)
  a_tr, m_tr, y_tr = _probe_samples(p, train, seed, frames_per_video, gap, flip)
  a_te, m_te, y_te = _probe_samples(p, test, seed, frames_per_video, gap, flip)
  sets = {"single_frame": (a_tr, a_te), "frame_pair": (np.concatenate([a_tr, m_tr], 1),
                                                       np.concatenate([a_te, m_te], 1)),
          "motion_only": (m_tr, m_te)}
  out = {"chance": {"leaf": 1 / p.num_leaves, "group": 1 / p.num_groups,
                    "look": 1 / (p.num_groups * p.looks_per_group),
                    "siblings": 1 / p.motions_per_look}}
  for name, (tr, te) in sets.items():
    out[name] = _probe_scores(p, _fit_softmax(tr, y_tr, p.num_leaves)(te), y_te)
  out.update(num_train=len(y_tr), num_test=len(y_te), test_videos=len(test),
             stderr=0.5 / math.sqrt(len(test)), seconds=time.time() - start)
  return out


def _limit(specs: list[VideoSpec], n: int) -> list[VideoSpec]:
  seen, out = {}, []
  for s in specs:
    seen[s.labels[0]] = seen.get(s.labels[0], 0) + 1
    if seen[s.labels[0]] <= n:
      out.append(s)
  return out


def format_probe(result: dict) -> str:
  """The probe result as a fixed-width table."""
  cols = ("leaf", "group", "look", "siblings")
  rows = [f"{'features':14s}" + "".join(f"{c:>10s}" for c in cols)]
  for name in ("chance", "single_frame", "frame_pair", "motion_only"):
    rows.append(f"{name:14s}" + "".join(f"{result[name][c]:10.3f}" for c in cols))
  rows.append(f"({result['num_train']} train / {result['num_test']} test frame pairs from "
              f"{result['test_videos']} test videos; standard error <= {result['stderr']:.3f}; "
              f"{result['seconds']:.1f} s)")
  return "\n".join(rows)


# ----------------------------------------------------------------------------------------------------
# CLI.
# ----------------------------------------------------------------------------------------------------


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  f = flags.FLAGS
  start = time.time()
  if f.out:
    out = generate(f.preset, f.out, seed=f.seed, workers=f.workers)
    print(f"{out}: preset {f.preset}, seed {f.seed} ({time.time() - start:.1f} s)")
  if f.probe:
    print(format_probe(difficulty_probe(f.preset, seed=f.seed,
                                        max_videos_per_class=f.probe_videos_per_class or None)))


if __name__ == "__main__":
  flags.DEFINE_string("preset", "cpu", f"one of {sorted(PRESETS)}")
  flags.DEFINE_string("out", None, "output directory (nothing is written when empty)")
  flags.DEFINE_integer("seed", 0, "data set seed")
  flags.DEFINE_integer("workers", 1, "processes writing videos")
  flags.DEFINE_bool("probe", False, "print the single-frame vs two-frame difficulty probe")
  flags.DEFINE_integer("probe_videos_per_class", 0, "cap videos a class in the probe (0 = all)")
  app.run(main)
