"""Rendering a planned video's pixels from its draws (`draws`): scene background, subjects,
cut-aways.

Contract (see docs/design.md):
* Pixels are a pure function of the video's draws, so any subset of frames renders identically to
  the full video.
* Per-pixel work uses only IEEE-exact operations (+ − × /, sqrt, floor, abs, min/max), never
  vectorised transcendental functions (their SIMD versions differ between CPUs). The same NumPy
  random streams give the same pixels on any machine.
* Speed without other pixels: every pixel goes through the same float32 operations in the same
  order as the plain per-pixel formulas, but a static background and the cut-away frame are rendered
  once a video, subjects are recomputed only on the patches they cover (coverage is exactly 0
  elsewhere), per-axis parts are computed once a chunk of frames, floats are (3, h, w) planes, and
  frame-sized buffers are reused (`_Canvas`). tests/test_synthetic_direct.py pins the pixels.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable, Iterator, Sequence

import numpy as np

from stcnn.data.synthetic import draws, planning, presets, taxonomy


def _cell(x, n: int):
  """Grid cell indices (i0, i1) and smoothstep weight of periodic coordinates x on an n grid."""
  g = x * n
  i = np.floor(g)
  f = g - i
  i0 = np.mod(i, n).astype(np.int64)
  return i0, (i0 + 1) % n, f * f * (3 - 2 * f)


def _tri_(x: np.ndarray, scratch: np.ndarray) -> np.ndarray:
  """draws.tri(x) in place."""
  np.floor(x, out=scratch)
  x -= scratch
  x -= np.float32(0.5)
  return np.abs(x, out=x)


def _soft(dist: np.ndarray, half: float, s: np.float32) -> np.ndarray:
  """clip((half - dist) · s + 0.5, 0, 1) in place: a 1 px soft edge at distance `half`."""
  np.subtract(np.float32(half), dist, out=dist)
  dist *= s
  dist += 0.5
  return np.clip(dist, 0, 1, out=dist)


def _line_dist(coord, freq):
  """Distance (in periods / freq) from coord to the nearest integer."""
  return (np.float32(0.5) - draws.tri(coord)) / np.float32(freq)


def _blend(img, mask, rgb):
  """(3, ...) planes blended towards rgb by mask (...)."""
  rgb = np.asarray(rgb, np.float32).reshape((3,) + (1,) * mask.ndim)
  return img * (1 - mask) + rgb * mask


def _blend_sparse(img: np.ndarray, mask: np.ndarray, rgb) -> None:
  """img = _blend(img, mask, rgb) in place for (3, h, w) img and (h, w) mask, computed only where
  mask != 0 (elsewhere blending leaves a pixel as it is)."""
  where = np.flatnonzero(mask)
  m = np.ravel(mask)[where]
  keep = 1 - m
  for k in range(3):
    plane = img[k].reshape(-1)
    plane[where] = plane[where] * keep + np.float32(rgb[k]) * m


class _Canvas:
  """A frame's float32 planes (3, h, w) and the scratch planes that rendering it needs.

  Rendering writes into these buffers instead of making frame-sized temporaries: a fresh 160 KB
  array is a fresh mapping (and page faults) for the C allocator, which costs more than the
  arithmetic.
  """

  def __init__(self, h: int, w: int):
    self.img = np.empty((3, h, w), np.float32)
    self.a, self.b, self.lum = (np.empty((h, w), np.float32) for _ in range(3))
    self.quantised = np.empty((3, h, w), np.float32)


class _Background:
  """The scene behind the subjects, float32 (3, h, w), per frame. World unit = one frame height.

  The operations are those of a per-pixel formula, in the same order, but separable parts (noise
  rows, stripes, unwarped lines and everything along one axis) are computed per axis for a chunk of
  frames at once (`chunk`) and broadcast per frame (`render`); lines and rings are blended only
  where their masks are not 0.
  """

  def __init__(self, sd: draws.SceneDraw, cam: draws.Camera, h: int, w: int):
    self.sd, self.cam = sd, cam
    self.s = np.float32(h)
    self.ys = (np.arange(h, dtype=np.float32) + 0.5) / self.s - np.float32(0.5)
    self.xs = (np.arange(w, dtype=np.float32) + 0.5) / self.s - np.float32(w / (2 * h))

  def chunk(self, ts: np.ndarray) -> None:
    """Computes the per-axis parts of frames ts, for render(j) to use (j indexes ts).

    Coordinates are kept (F, 1, w) for x (u) and (F, h, 1) for y (v), so that frame j's parts
    broadcast to (h, w) whichever axis they follow.
    """
    sd, cam, s = self.sd, self.cam, self.s
    z = cam.zoom[ts][:, None, None]
    u = cam.ox[ts][:, None, None] + self.xs[None, None, :] / z  # (F, 1, w)
    v = cam.oy[ts][:, None, None] + self.ys[None, :, None] / z  # (F, h, 1)
    self.noise = []
    for grid in sd.grids:
      n = grid.shape[0]
      iu0, iu1, fu = _cell(u[:, 0, :], n)
      iv0, iv1, fv = _cell(v[:, :, 0], n)
      rows = grid[:, iu0] * (1 - fu) + grid[:, iu1] * fu  # (n, F, w)
      self.noise.append((rows.transpose(1, 0, 2), iv0, iv1, (1 - fv)[:, :, None],
                         fv[:, :, None]))
    self.stripes = [np.float32(amp * 4) * (draws.tri((u if axis == "u" else v) * freq)
                                           - np.float32(0.25))
                    for axis, freq, amp in sd.scene.stripes]
    self.lines = []  # (values, warp or None, dashes or None)
    for axis, freq, half, _, dash, warp in sd.scene.lines:
      along, across = (u, v) if axis == "u" else (v, u)
      dashes = draws.tri(across * dash) > 0.25 if dash else None
      if warp:  # coord = along · freq + a warp of `across`: the mask is made per frame
        bend = np.float32(warp) * 4 * (draws.tri(across * 3) - np.float32(0.25))
        self.lines.append((along * freq, bend, dashes))
      else:  # (a warp of 0 adds ±0, which changes no mask value): the mask itself, one axis
        self.lines.append((_soft(_line_dist(along * freq, freq), half, s), None, dashes))
    if sd.scene.ring is not None:
      self.ring = u - np.round(u), v - np.round(v)

  def render(self, j: int, canvas: _Canvas) -> np.ndarray:
    """Frame j of the last chunk into canvas.img; returns it."""
    sd, s = self.sd, self.s
    img, a, b, lum = canvas.img, canvas.a, canvas.b, canvas.lum
    for o, ((rows, iv0, iv1, w0, w1), (_, amp)) in enumerate(zip(self.noise, sd.scene.noise)):
      noise = lum if o == 0 else a  # (0 + x and x differ at most in the sign of a zero, which
      np.take(rows[j], iv0[j], axis=0, out=noise)  # adding the positive base removes)
      noise *= w0[j]
      np.take(rows[j], iv1[j], axis=0, out=b)
      b *= w1[j]
      noise += b
      noise *= np.float32(amp)
      if o:
        lum += noise
    if not self.noise:
      lum[...] = 0
    for stripe in self.stripes:
      lum += stripe[j]
    for k in range(3):
      np.add(sd.base[k], lum, out=img[k])
    for (_, freq, half, rgb, *_), (values, bend, dashes) in zip(sd.scene.lines, self.lines):
      if bend is None:
        mask = values[j]
      else:
        mask = _soft(_line_dist_(np.add(values[j], bend[j], out=a), freq, b), half, s)
      if dashes is not None:
        mask = mask * dashes[j]
      _blend_sparse(img, np.broadcast_to(mask, a.shape), rgb)
    if sd.scene.ring is not None:
      radius, half, rgb = sd.scene.ring
      du, dv = self.ring[0][j], self.ring[1][j]
      np.add(du * du, dv * dv, out=a)
      np.sqrt(a, out=a)
      a -= np.float32(radius)
      _blend_sparse(img, _soft(np.abs(a, out=a), half, s), rgb)
    return img


def _line_dist_(coord: np.ndarray, freq, scratch: np.ndarray) -> np.ndarray:
  """_line_dist in place."""
  dist = _tri_(coord, scratch)
  np.subtract(np.float32(0.5), dist, out=dist)
  dist /= np.float32(freq)
  return dist


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


# How far each shape reaches from its centre, in radii (rounded up): coverage ends within half a
# pixel beyond (max-combined shapes: a little more, inside the 1 px margin of `_reach`).
_EXTENT = {"disc": 1.0, "ring": 1.0, "square": 1.132, "triangle": 1.355, "bar": 1.203,
           "cross": 1.045, "half_disc": 1.078, "frame": 1.316}


def _reach(sub: draws.Subject) -> float:
  """Pixels farther than this from the subject's centre have coverage exactly 0."""
  return _EXTENT[sub.shape] * sub.radius + 1.0


@dataclasses.dataclass
class _Patches:
  """Square patches of the window (side n, top-left lo on the window torus) that hold a subject in
  frames ts, and its coverage there (len(ts), n, n); 0 outside."""
  n: int
  lo_y: np.ndarray  # (F,) ints in [0, w)
  lo_x: np.ndarray
  alpha: np.ndarray


def _subject_patches(sub: draws.Subject, ts: np.ndarray, w: int) -> _Patches:
  """The subject's coverage (1 px soft edge, on the window torus) in frames ts, patch by patch.

  Per pixel the same operations as over the whole window, so blending the patches alone gives the
  pixels that blending the whole window gives.
  """
  reach = _reach(sub)
  n = math.ceil(2 * reach) + 2  # >= every span of pixel centres within reach of a centre
  x, y = sub.x[ts], sub.y[ts]
  if n >= w:
    n, lo_x, lo_y = w, np.zeros(len(ts), np.int64), np.zeros(len(ts), np.int64)
  else:
    lo_x = np.floor(x - reach - 0.5).astype(np.int64) % w
    lo_y = np.floor(y - reach - 0.5).astype(np.int64) % w
  c = np.arange(w, dtype=np.float32) + np.float32(0.5)
  k = np.arange(n)
  dx = c[(lo_x[:, None] + k) % w] - x.astype(np.float32)[:, None]  # (F, n)
  dy = c[(lo_y[:, None] + k) % w] - y.astype(np.float32)[:, None]
  dx, dy = dx - w * np.round(dx / w), dy - w * np.round(dy / w)
  dx, dy = dx[:, None, :], dy[:, :, None]
  cs = sub.cos[ts].astype(np.float32)[:, None, None]
  sn = sub.sin[ts].astype(np.float32)[:, None, None]
  r = np.float32(sub.radius)
  px, py = (cs * dx + sn * dy) / r, (cs * dy - sn * dx) / r
  return _Patches(n, lo_y, lo_x, np.clip(0.5 - _SDF[sub.shape](px, py) * r, 0, 1))


def _pieces(lo: int, n: int, w: int) -> list[tuple[slice, slice]]:
  """(patch slice, window slice) pieces of the torus span lo..lo+n-1: two where it wraps."""
  if lo + n <= w:
    return [(slice(0, n), slice(lo, lo + n))]
  k = w - lo
  return [(slice(0, k), slice(lo, w)), (slice(k, n), slice(0, n - k))]


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
  scene: draws.SceneDraw
  camera: draws.Camera
  subjects: list[draws.Subject]
  cutaway: tuple[int, int]
  cutaway_image: np.ndarray | None


def _draw_video(p: presets.Preset, spec: planning.VideoSpec) -> _Video:
  ls = taxonomy.leaves(p)
  scene = taxonomy.scene(p, ls[spec.content[0]].group)
  sd = draws.draw_scene(scene, np.random.default_rng(spec.scene_seed))
  rng = np.random.default_rng(spec.render_seed)
  cam = draws.draw_camera(spec.camera, rng, spec.num_frames, p.fps)
  subjects = [draws.draw_subject(p, ls[c], rng, spec.num_frames) for c in spec.content]
  image = None
  if spec.cutaway[1]:
    image = _cutaway_image(rng, p.frame_size, p.frame_width)
  return _Video((p.frame_size, p.frame_width), p.window, sd, cam, subjects, spec.cutaway, image)


def _quantise(img: np.ndarray) -> np.ndarray:
  """uint8 of a float image in [0, 1] (clipped), rounded half up."""
  return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def _interleave(planes: np.ndarray, out: np.ndarray, scratch: np.ndarray | None = None):
  """`_quantise` of float (3, h, w) planes into uint8 (h, w, 3) out; returns out."""
  q = np.clip(planes, 0, 1, out=scratch)
  q *= 255
  q += 0.5
  for k in range(3):  # (one channel at a time: much faster than one strided transpose)
    out[..., k] = q[k]
  return out


_CHUNK = 16  # frames rendered together (subject coverage is computed for all of them at once)


class _Frames:
  """Renders the frames of a drawn video, a chunk of frames at a time.

  A static camera's background and the cut-away frame are rendered once; a frame then only
  recomputes the patches its subjects cover (`_subject_patches`). Floats are kept as (3, h, w)
  planes (long inner loops); frames come out (H, W, 3).
  """

  def __init__(self, video: _Video):
    self.video = video
    h, w = video.size
    self.canvas = _Canvas(h, w)
    top, left = (h - video.window) // 2, (w - video.window) // 2
    self.window = (slice(top, top + video.window), slice(left, left + video.window))
    self.background = _Background(video.scene, video.camera, h, w)
    self.static = None
    if video.camera.static:
      self.background.chunk(np.zeros(1, np.int64))
      planes = self.background.render(0, self.canvas)
      self.static = _interleave(planes, np.empty((h, w, 3), np.uint8))
      # The window twice in each direction: every patch of the torus is one slice of it.
      self.tiled = np.tile(planes[(slice(None),) + self.window], (1, 2, 2))
    self.cut = None if video.cutaway_image is None else _quantise(video.cutaway_image)

  def _is_cut(self, t: int) -> bool:
    start, length = self.video.cutaway
    return start <= t < start + length

  def repeats(self, t: int, u: int) -> bool:
    """True if frame t is known to equal frame u without rendering them."""
    if self._is_cut(t) or self._is_cut(u):
      return self._is_cut(t) and self._is_cut(u)
    return self.static is not None and all(
        s.x[t] == s.x[u] and s.y[t] == s.y[u] and s.cos[t] == s.cos[u] and s.sin[t] == s.sin[u]
        for s in self.video.subjects)

  def render(self, ts: Sequence[int], out: np.ndarray) -> np.ndarray:
    """Frames ts into out, uint8 (len(ts), H, W, 3); returns out."""
    ts = np.asarray(ts, np.int64)
    cut = np.array([self._is_cut(t) for t in ts], bool)
    if cut.any():
      out[cut] = self.cut
    live = np.flatnonzero(~cut)
    if not live.size:
      return out
    subjects = self.video.subjects
    patches = [_subject_patches(sub, ts[live], self.video.window) for sub in subjects]
    if self.static is not None and len(subjects) == 1:
      self._render_static(live, patches[0], subjects[0].colour, out)
      return out
    if self.static is None:
      self.background.chunk(ts[live])
    for j, k in enumerate(live):
      self._render_one(j, patches, out[k])
    return out

  def _write(self, out: np.ndarray, pixels: np.ndarray, lo_y: int, lo_x: int, n: int) -> None:
    """pixels (n, n, C), a patch of the window torus at (lo_y, lo_x), into the window of out."""
    w = self.video.window
    out_win = out[self.window]
    for pr, wr in _pieces(lo_y, n, w):
      for pc, wc in _pieces(lo_x, n, w):
        out_win[wr, wc] = pixels[pr, pc]

  def _render_static(self, live: np.ndarray, patches: _Patches, colour: np.ndarray,
                     out: np.ndarray) -> None:
    """One subject over the static background, all frames `live` of out at once."""
    n = patches.n
    windows = np.lib.stride_tricks.sliding_window_view(self.tiled, (n, n), axis=(1, 2))
    below = windows[:, patches.lo_y, patches.lo_x]  # (3, F, n, n)
    pixels = np.ascontiguousarray(
        _quantise(_blend(below, patches.alpha, colour)).transpose(1, 2, 3, 0))  # (F, n, n, 3)
    out[live] = self.static
    for j, k in enumerate(live):
      self._write(out[k], pixels[j], patches.lo_y[j], patches.lo_x[j], n)

  def _render_one(self, j: int, patches: list[_Patches], out: np.ndarray) -> None:
    """Frame j of the chunk (of `patches`, of `background.chunk`) into out (H, W, 3)."""
    video, canvas, w = self.video, self.canvas, self.video.window
    if self.static is not None:
      out[...] = self.static
      below = self.tiled[:, :w, :w].copy()  # several subjects: blended one over the other
    else:
      _interleave(self.background.render(j, canvas), out, canvas.quantised)
      below = canvas.img[(slice(None),) + self.window]
    for sub, pt in zip(video.subjects, patches):
      ly, lx, n = int(pt.lo_y[j]), int(pt.lo_x[j]), pt.n
      rows, cols = (ly + np.arange(n)) % w, (lx + np.arange(n)) % w
      pixels = _blend(below.take(rows, axis=1).take(cols, axis=2), pt.alpha[j], sub.colour)
      if len(video.subjects) > 1:
        for pr, wr in _pieces(ly, n, w):
          for pc, wc in _pieces(lx, n, w):
            below[:, wr, wc] = pixels[:, pr, pc]
      self._write(out, _quantise(pixels).transpose(1, 2, 0), ly, lx, n)


def _frame_list(num_frames: int, frames) -> list[int]:
  return list(range(num_frames)) if frames is None else np.asarray(frames, np.int64).tolist()


def iter_frames(preset: str | presets.Preset, spec: planning.VideoSpec, frames=None, *,
                skip_repeats: bool = False) -> Iterator[np.ndarray | None]:
  """uint8 (H, W, 3) frames (all, or the indices `frames`) of a planned video, in order.

  With skip_repeats, a frame known to equal the one before it in `frames` (a still subject on a
  static background, a cut-away) is not rendered: None comes instead.
  """
  p = presets.get_preset(preset)
  video = _Frames(_draw_video(p, spec))
  ts = _frame_list(spec.num_frames, frames)
  repeat = [skip_repeats and i > 0 and video.repeats(t, ts[i - 1]) for i, t in enumerate(ts)]
  todo = [t for t, r in zip(ts, repeat) if not r]

  def rendered():
    for start in range(0, len(todo), _CHUNK):
      chunk = todo[start:start + _CHUNK]
      yield from video.render(chunk, np.empty((len(chunk), p.frame_size, p.frame_width, 3),
                                              np.uint8))

  frames_left = rendered()
  for r in repeat:
    yield None if r else next(frames_left)


def render_spec(preset: str | presets.Preset, spec: planning.VideoSpec,
                frames=None) -> np.ndarray:
  """uint8 (T, H, W, 3): the frames (all, or the indices `frames`) of a planned video."""
  p = presets.get_preset(preset)
  video = _Frames(_draw_video(p, spec))
  ts = _frame_list(spec.num_frames, frames)
  out = np.empty((len(ts), p.frame_size, p.frame_width, 3), np.uint8)
  for start in range(0, len(ts), _CHUNK):
    video.render(ts[start:start + _CHUNK], out[start:start + _CHUNK])
  return out


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
