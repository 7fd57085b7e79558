"""The random draws of a planned video: its subjects' look and path, the camera, the scene's noise.

Contract (see docs/design.md):
* Draws happen first, per video and in a fixed order, from the seeds of its `VideoSpec`; the pixels
  (`render`) are then a pure function of them.
* Motion siblings are identically distributed frame by frame: the subject moves on a torus (it wraps
  around the central window) from a uniformly random start position and orientation, so position and
  orientation are uniform at every time whatever the motion; every other draw is the same for every
  motion. Rotations are only visible on shapes that are not rotation invariant.
* Camera bias [docs/paper.md §1]: the subject stays inside the central `window_frac` of the frame;
  the scene fills the frame. Camera motion (pan, zoom) moves the background only: the camera follows
  the subject.
* The few sines and cosines (per frame, on scalars) come from Python's `math`, never NumPy's
  vectorised versions (their SIMD results differ between CPUs).
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from stcnn.data.synthetic import presets, taxonomy


def tri(x):
  """Triangle wave: |frac(x) - 0.5|, in [0, 0.5]; 0.5 at integers."""
  return np.abs(x - np.floor(x) - 0.5)


def _cos(a) -> np.ndarray:
  return np.array([math.cos(v) for v in np.ravel(a)], np.float64).reshape(np.shape(a))


def _sin(a) -> np.ndarray:
  return np.array([math.sin(v) for v in np.ravel(a)], np.float64).reshape(np.shape(a))


# Motion constants, in window sides per second and revolutions per second [choice: a 10-frame clip
# at 25 fps moves a subject about a fifth of the window, clearly visible at 64 px].
_SLIDE_SPEED = 0.5
_DRIFT_SPEEDS = {"slow": 0.2, "medium": 0.45, "fast": 0.8}
_SPIN_RATE = 0.5
_WOBBLE_AMPLITUDE = math.pi / 4
_PERIOD = 1.0  # seconds, for wobble / hop / sway / orbit
_HOP_HEIGHT = 0.3
_SWAY_AMPLITUDE = 0.2
_ORBIT_RADIUS = 0.15


def trajectory(motion: str, rng: np.random.Generator, t: np.ndarray, w: float):
  """A motion's displacement (dx, dy) in pixels and rotation dθ in radians at times t (s).

  y points down; w is the window side in pixels. Where a motion has a horizontal sense (sideways
  slides, glides, hops, spins, orbits) it is drawn at random, so every motion is mirror-symmetric in
  distribution. Every motion makes the same draws in the same order, so siblings' other draws line
  up.
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
    return zero, zero, _WOBBLE_AMPLITUDE * 4 * (tri(cyc) - 0.25)
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
class Subject:
  """One subject's look and its path over a video's frames."""
  shape: str
  colour: np.ndarray  # (3,)
  radius: float  # pixels
  x: np.ndarray  # (T,) window pixels, wrapped
  y: np.ndarray
  cos: np.ndarray  # (T,) of the orientation
  sin: np.ndarray


def draw_subject(p: presets.Preset, leaf: taxonomy.Leaf, rng: np.random.Generator,
                 num_frames: int) -> Subject:
  """Draws the subject of `leaf` for num_frames frames: look, size and path on the window torus.

  The start position on the torus and the start angle are uniform, so every frame's position and
  orientation are uniform whatever the motion.
  """
  w = p.window
  x0, y0 = rng.uniform(0, w, 2)
  theta0 = rng.uniform(0, 2 * math.pi)
  colour = np.clip(np.array(taxonomy.COLOURS[leaf.colour]) + rng.uniform(-0.05, 0.05, 3), 0, 1)
  radius = p.subject_frac * w * rng.uniform(0.85, 1.15)
  dx, dy, dth = trajectory(leaf.motion, rng, np.arange(num_frames) / p.fps, w)
  theta = theta0 + dth
  return Subject(leaf.shape, colour.astype(np.float32), float(radius),
                 np.mod(x0 + dx, w), np.mod(y0 + dy, w), _cos(theta), _sin(theta))


@dataclasses.dataclass
class Camera:
  ox: np.ndarray  # (T,) world offset of the frame centre (frame heights)
  oy: np.ndarray
  zoom: np.ndarray  # (T,) magnification
  static: bool


def draw_camera(kind: str, rng: np.random.Generator, num_frames: int, fps: float) -> Camera:
  """Uniform random world offset (the scene is periodic, so every frame's background is stationary);
  pans move 0.1-0.3 frame heights a second in a uniform direction; zooms change scale by ±20-40%."""
  ox, oy = rng.random(2)
  heading = rng.uniform(0, 2 * math.pi)
  speed = rng.uniform(0.1, 0.3)
  zoom_to = rng.uniform(0.2, 0.4)
  zoom_sign = float(rng.choice([-1.0, 1.0]))
  t = np.arange(num_frames) / fps
  frac = np.arange(num_frames) / max(1, num_frames - 1)
  zoom = np.ones(num_frames)
  if kind == "pan":
    ox, oy = ox + math.cos(heading) * speed * t, oy + math.sin(heading) * speed * t
  elif kind == "zoom":
    zoom = 1 + zoom_sign * zoom_to * frac
  ox, oy = ox + np.zeros(num_frames), oy + np.zeros(num_frames)
  return Camera(ox.astype(np.float32), oy.astype(np.float32), zoom.astype(np.float32),
                 kind == "static")


@dataclasses.dataclass
class SceneDraw:
  scene: taxonomy.Scene
  base: np.ndarray  # (3,)
  grids: list[np.ndarray]  # value-noise grids, one per octave


def draw_scene(scene: taxonomy.Scene, rng: np.random.Generator) -> SceneDraw:
  base = np.clip(np.array(scene.base) + rng.uniform(-0.05, 0.05, 3), 0, 1).astype(np.float32)
  grids = [rng.uniform(-1, 1, (n, n)).astype(np.float32) for n, _ in scene.noise]
  return SceneDraw(scene, base, grids)
