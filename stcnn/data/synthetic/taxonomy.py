"""The class tree: scenes (groups), looks (shape + colour) and motions, and a preset's leaves.

Coarse groups ("ball_sports", "water_sports", ...) each own a *scene*, a background texture that
gives the context. Inside a group, leaves come in *looks* ("red_disc") and every look comes as
`motions_per_look` *motion siblings* ("red_disc_slide_up", "red_disc_slide_down") that differ ONLY
in how the subject moves: direction, speed, spinning or not, hopping vs gliding, periodic vs
linear. Every class maps onto itself under the horizontal flip of training augmentation: no two
classes differ by left vs right or clockwise vs anticlockwise (such senses are drawn at random per
video, see `draws.trajectory`). Class ids are group-major, then look, then motion. See
docs/design.md.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Sequence

from stcnn.data.synthetic import presets

SHAPES = ("disc", "square", "triangle", "ring", "bar", "cross", "half_disc", "frame")
ROTATION_INVARIANT = ("disc", "ring")
COLOURS = {
    "red": (0.85, 0.12, 0.12), "green": (0.1, 0.75, 0.3), "blue": (0.12, 0.25, 0.9),
    "yellow": (0.95, 0.85, 0.1), "cyan": (0.1, 0.85, 0.9), "magenta": (0.85, 0.15, 0.75),
    "orange": (0.95, 0.5, 0.08), "white": (0.97, 0.97, 0.97), "black": (0.06, 0.06, 0.06),
    "purple": (0.45, 0.15, 0.65),
}
NUM_LOOKS = len(SHAPES) * len(COLOURS)  # distinct (shape, colour) pairs of the global look table
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
  """Global look k → (shape, colour, motion set). Pairs are unique for k < NUM_LOOKS.

  Consecutive looks (those of one group) differ in both shape and colour; motion sets cycle,
  skipping rotation sets for rotation-invariant shapes (a spinning disc would be invisible motion).
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


def leaves(preset: str | presets.Preset) -> list[Leaf]:
  """The leaves (class ids 0..L-1): group-major, then look, then motion."""
  return list(_leaves(presets.get_preset(preset)))


@functools.lru_cache(maxsize=64)
def _leaves(p: presets.Preset) -> tuple[Leaf, ...]:
  out = []
  for g in range(p.num_groups):
    for j in range(p.looks_per_group):
      look = g * p.looks_per_group + j
      shape, colour, motions = _look(p.look_offset + look)
      for motion in motions[:p.motions_per_look]:
        name = _name((colour, shape, motion), camel=p.layout == "ucf101")
        out.append(Leaf(len(out), name, g, look, shape, colour, motion))
  return tuple(out)


def scene(preset: str | presets.Preset, group: int) -> Scene:
  """The scene of a preset's group `group`."""
  p = presets.get_preset(preset)
  return SCENES[p.scene_offset + group]


def group_names(preset: str | presets.Preset) -> list[str]:
  p = presets.get_preset(preset)
  return [_name((scene(p, g).group,), camel=p.layout == "ucf101") for g in range(p.num_groups)]


def class_names(preset: str | presets.Preset) -> list[str]:
  return [leaf.name for leaf in leaves(preset)]


def hierarchy(preset: str | presets.Preset) -> dict:
  """The class tree in the `hierarchy.json` format of stcnn.data (leaves first, then groups)."""
  p = presets.get_preset(preset)
  ls = leaves(p)
  return {"names": [leaf.name for leaf in ls] + group_names(p),
          "parents": [p.num_leaves + leaf.group for leaf in ls] + [-1] * p.num_groups,
          "num_leaves": p.num_leaves}


def motion_siblings(preset: str | presets.Preset) -> list[list[int]]:
  """Sets of leaf ids that differ only in motion (same look), in look order."""
  sets = {}
  for leaf in leaves(preset):
    sets.setdefault(leaf.look, []).append(leaf.id)
  return [sets[k] for k in sorted(sets)]
