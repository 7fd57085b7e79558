r"""The difficulty probe: linear classifiers on hand-made single-frame and two-frame features.

It checks the data set's design: appearance (group, look) is easy from one frame, while motion
siblings are at chance from one frame and well above it from two, so the data set separates
single-frame from temporal models. Frames are rendered from the plan (no codec) and, like training
clips, mirrored at random. Measured on preset `cpu`, seed 0 (multinomial logistic regression trained
on 4 frames (pairs) of each of the 960 train videos, scored on 4 of each of the 384 val+test videos;
standard error <= 0.026):

  features       leaf   group   look   siblings
  chance        0.042   0.250  0.083   0.500
  single frame  0.482   0.931  0.900   0.537   (colour histograms of one frame)
  frame pair    0.757   0.917  0.870   0.851   (+ Lucas-Kanade subject motion between t and t+1)
  motion only   0.398   0.515  0.428   0.855

Run it with `python -m stcnn.data.synthetic --preset=cpu --probe`. See docs/design.md.
"""
from __future__ import annotations

import functools
import math
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from scipy import ndimage

from stcnn.data.synthetic import planning, presets, render, taxonomy


def _colour_hist(x: np.ndarray, bins: int = 4) -> np.ndarray:
  """(n, bins³) normalised joint colour histograms of uint8 images (n, h, w, 3)."""
  q = (x.astype(np.int64) * bins) // 256
  code = (q[..., 0] * bins + q[..., 1]) * bins + q[..., 2]
  code = code.reshape(len(x), -1) + bins**3 * np.arange(len(x))[:, None]
  hist = np.bincount(code.ravel(), minlength=len(x) * bins**3).reshape(len(x), bins**3)
  return hist / code.shape[1]


def centre_window(p: presets.Preset, x: np.ndarray) -> np.ndarray:
  """The central p.window × p.window window, where the subject lives, of frames x (n, h, w, ...)."""
  top, left = (p.frame_size - p.window) // 2, (p.frame_width - p.window) // 2
  return x[:, top:top + p.window, left:left + p.window]


def appearance_features(p: presets.Preset, frames: np.ndarray) -> np.ndarray:
  """(n, 128) single-frame features: colour histograms of the whole frame and of the window."""
  return np.concatenate([_colour_hist(frames), _colour_hist(centre_window(p, frames))], axis=1)


def _blur(x: np.ndarray) -> np.ndarray:
  """Two passes of a 3×3 box filter over the last two axes (edge-replicated)."""
  for _ in range(2):
    x = ndimage.uniform_filter(x, size=3, mode="nearest", axes=(-2, -1))
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


def motion_features(p: presets.Preset, first: np.ndarray, second: np.ndarray,
                    sigma: float = 0.15) -> np.ndarray:
  """(n, 10) two-frame features of the subject: a Lucas-Kanade similarity-motion fit.

  Inside the window, the pair is rolled on the torus to centre the temporal-difference energy (the
  moving subject), blurred, and the brightness-constancy equations Ix·fx + Iy·fy + It = 0 of all
  three colour channels are solved by least squares for fx = u - ω·y + s·x, fy = v + ω·x + s·y about
  the centre, weighted by a Gaussian of width sigma × window. Returns u, v, |u|, |v|, speed, ω, |ω|,
  s, |s| (pixels or radians per frame gap) and the mean energy.
  """
  a = centre_window(p, first).astype(np.float64) / 255
  b = centre_window(p, second).astype(np.float64) / 255
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
                 learning_rate: float = 0.05,
                 l2: float = 1e-4) -> Callable[[np.ndarray], np.ndarray]:
  """Multinomial logistic regression (Adam, full batch) on standardised features → logits fn."""
  mu, sd = x.mean(0), x.std(0) + 1e-6
  standardise = lambda z: jnp.asarray((z - mu) / sd, jnp.float32)
  params = _train_softmax(standardise(x), jnp.asarray(y), num_classes=num_classes, steps=steps,
                          learning_rate=learning_rate, l2=l2)
  return lambda z: np.asarray(_logits(params, standardise(z)))


def _logits(params: dict, x: jax.Array) -> jax.Array:
  return jnp.dot(x, params["w"], precision=jax.lax.Precision.HIGHEST) + params["b"]


@functools.partial(jax.jit, static_argnames=("num_classes", "steps", "learning_rate", "l2"))
def _train_softmax(x: jax.Array, y: jax.Array, *, num_classes: int, steps: int,
                   learning_rate: float, l2: float) -> dict:
  """`steps` full-batch Adam steps on the mean cross-entropy, with an L2 penalty l2/2 ‖params‖²."""
  opt = optax.chain(optax.add_decayed_weights(l2), optax.adam(learning_rate))
  params = {"w": jnp.zeros((x.shape[1], num_classes)), "b": jnp.zeros(num_classes)}
  loss = lambda q: optax.softmax_cross_entropy_with_integer_labels(_logits(q, x), y).mean()

  def step(_, carry):
    q, state = carry
    updates, state = opt.update(jax.grad(loss)(q), state, q)
    return optax.apply_updates(q, updates), state

  params, _ = jax.lax.fori_loop(0, steps, step, (params, opt.init(params)))
  return params


def _probe_samples(p: presets.Preset, specs: list[planning.VideoSpec], seed: int, per_video: int,
                   gap: int, flip: bool = True):
  """Single-frame and two-frame features of `per_video` random frame pairs of every video, each
  pair mirrored with probability 0.5 when `flip` (the paper's augmentation, as a model sees it)."""
  apps, mots, labels = [], [], []
  for s in specs:
    rng = np.random.default_rng([seed, s.index, 7])
    t = rng.integers(0, s.num_frames - gap, per_video)
    frames = render.render_spec(p, s, np.concatenate([t, t + gap]))
    if flip:
      mirror = np.tile(rng.random(per_video) < 0.5, 2)
      frames[mirror] = frames[mirror, :, ::-1]
    apps.append(appearance_features(p, frames[:per_video]))
    mots.append(motion_features(p, frames[:per_video], frames[per_video:]))
    labels += [s.labels[0]] * per_video
  return np.concatenate(apps), np.concatenate(mots), np.array(labels)


def _probe_scores(p: presets.Preset, logits: np.ndarray, y: np.ndarray) -> dict:
  ls = taxonomy.leaves(p)
  group, look = np.array([leaf.group for leaf in ls]), np.array([leaf.look for leaf in ls])
  pred = logits.argmax(1)
  sib = taxonomy.motion_siblings(p)
  restricted = np.array([sib[look[c]][int(np.argmax(logits[i, sib[look[c]]]))]
                         for i, c in enumerate(y)])
  return {"leaf": float((pred == y).mean()), "group": float((group[pred] == group[y]).mean()),
          "look": float((look[pred] == look[y]).mean()),
          "siblings": float((restricted == y).mean())}


def difficulty_probe(preset: str | presets.Preset = "cpu", seed: int = 0,
                     frames_per_video: int = 4, gap: int = 1,
                     max_videos_per_class: int | None = None, flip: bool = True) -> dict:
  """Measures how hard the data set is for single-frame vs two-frame linear baselines.

  Frames are rendered (pre-codec) from the plan and, with `flip`, mirrored at random like training
  clips (so a class told apart only by a left/right sense would show up here at chance); train on
  the train split, score val + test (UCF layout: split 1). Frames of one video are correlated, so
  the standard error reported is the bound 0.5 / sqrt(test videos). Features: "single_frame" =
  colour histograms of one frame (frame + window); "frame_pair" = the same plus `motion_features` of
  frames t and t+gap; "motion_only" = the latter alone. The classifier is multinomial logistic
  regression over all leaves (noisy first labels, as a model would see them). Scores per test frame
  (pair):
    leaf: leaf accuracy; group: predicted leaf in the right group; look: predicted leaf in the
    right motion-sibling set; siblings: accuracy among the true sibling set only (argmax restricted
    to it).

  Returns {"chance": {...}, "single_frame": {...}, "frame_pair": {...}, "motion_only": {...},
  "num_train", "num_test" (frame pairs), "test_videos", "stderr", "seconds"}.
  """
  p = presets.get_preset(preset)
  start = time.time()
  specs = planning.plan(p, seed)
  if p.layout == "ucf101":
    train = [s for s in specs if s.ucf_group not in planning.ucf_test_groups(1)]
    test = [s for s in specs if s.ucf_group in planning.ucf_test_groups(1)]
  else:
    train = [s for s in specs if s.split == "train"]
    test = [s for s in specs if s.split != "train"]
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


def _limit(specs: list[planning.VideoSpec], n: int) -> list[planning.VideoSpec]:
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

