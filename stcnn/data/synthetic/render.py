"""Rendering a planned video: trajectories, subjects, camera, scene background, cut-aways.

Contract (see docs/design.md):
* Random draws happen first, per video and in a fixed order, from the seeds of its `VideoSpec`;
  pixels are then a pure function of the draws, so any subset of frames renders identically to the
  full video.
* Per-pixel work uses only IEEE-exact operations (+ − × /, sqrt, floor, abs, min/max), never
  vectorised transcendental functions (their SIMD versions differ between CPUs); the few sines and
  cosines (per frame, on scalars) come from Python's `math`. The same NumPy random streams give the
  same pixels on any machine.
* Motion siblings are identically distributed frame by frame: the subject moves on a torus (it wraps
  around the central window) from a uniformly random start position and orientation, so position and
  orientation are uniform at every time whatever the motion; every other draw is the same for every
  motion. Rotations are only visible on shapes that are not rotation invariant.
* Camera bias [docs/paper.md §1]: the subject stays inside the central `window_frac` of the frame;
  the scene fills the frame. Camera motion (pan, zoom) moves the background only: the camera follows
  the subject.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable

import numpy as np

from stcnn.data.synthetic import planning
from stcnn.data.synthetic import presets
from stcnn.data.synthetic import taxonomy


def _tri(x):
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
class _Camera:
  ox: np.ndarray  # (T,) world offset of the frame centre (frame heights)
  oy: np.ndarray
  zoom: np.ndarray  # (T,) magnification
  static: bool


def _draw_camera(kind: str, rng: np.random.Generator, num_frames: int, fps: float) -> _Camera:
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
  return _Camera(ox.astype(np.float32), oy.astype(np.float32), zoom.astype(np.float32),
                 kind == "static")


@dataclasses.dataclass
class _SceneDraw:
  scene: taxonomy.Scene
  base: np.ndarray  # (3,)
  grids: list[np.ndarray]  # value-noise grids, one per octave


def _draw_scene(scene: taxonomy.Scene, rng: np.random.Generator) -> _SceneDraw:
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


def _subject_alpha(sub: Subject, ts: np.ndarray, w: int) -> np.ndarray:
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
  subjects: list[Subject]
  cutaway: tuple[int, int]
  cutaway_image: np.ndarray | None


def _draw_video(p: presets.Preset, spec: planning.VideoSpec) -> _Video:
  ls = taxonomy.leaves(p)
  scene = taxonomy.scene(p, ls[spec.content[0]].group)
  sd = _draw_scene(scene, np.random.default_rng(spec.scene_seed))
  rng = np.random.default_rng(spec.render_seed)
  cam = _draw_camera(spec.camera, rng, spec.num_frames, p.fps)
  subjects = [draw_subject(p, ls[c], rng, spec.num_frames) for c in spec.content]
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


def render_spec(preset: str | presets.Preset, spec: planning.VideoSpec, frames=None,
                chunk: int = 32) -> np.ndarray:
  """uint8 (T, H, W, 3): the frames (all, or the indices `frames`) of a planned video."""
  p = presets.get_preset(preset)
  video = _draw_video(p, spec)
  ts = np.arange(spec.num_frames) if frames is None else np.asarray(frames, np.int64)
  return np.concatenate([_render(video, ts[i:i + chunk]) for i in range(0, max(1, len(ts)), chunk)])


def render_video(preset: str | presets.Preset, class_id: int, rng: np.random.Generator,
                 num_frames: int | None = None, nuisance: bool = True) -> np.ndarray:
  """uint8 (T, H, W, 3) frames of a fresh video of leaf `class_id` (no label noise, one label).

  Args:
    preset: preset name or Preset.
    class_id: the leaf to show.
    rng: where every random choice comes from.
    num_frames: the length; drawn from the preset's range when None.
    nuisance: False turns off camera motion and cut-aways (the class content alone).
  """
  p = presets.get_preset(preset)
  p = dataclasses.replace(p, label_noise=0.0, multilabel_frac=0.0)
  if not nuisance:
    p = dataclasses.replace(p, camera_motion_frac=0.0, cutaway_prob=0.0)
  if num_frames is not None:
    p = dataclasses.replace(p, min_seconds=num_frames / p.fps, max_seconds=num_frames / p.fps)
  spec = planning.draw_spec(p, rng, class_id, index=-1, video_id="", path="", split="")
  return render_spec(p, spec)
