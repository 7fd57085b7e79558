"""The plan: every video's labels, content, length and nuisances, without rendering a pixel.

Video i of a data set draws its `VideoSpec` from `np.random.default_rng([seed, i])` alone, so it
depends on no other video, on no worker count and on no generation order. The nuisances imitate
Sports-1M's weak YouTube labels [docs/paper.md §2]: `label_noise` of the videos show another leaf
(drawn uniformly) than their label says; `multilabel_frac` carry a second label, a leaf of the same
group whose subject is also shown; with probability `cutaway_prob` one run of 10-30% of a video's
frames cuts away to an off-topic shot; `camera_motion_frac` of the videos pan or zoom the
background. Lengths are uniform in frames over `min_seconds`..`max_seconds`. See docs/design.md.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from stcnn.data.synthetic import presets, taxonomy


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


def draw_spec(p: presets.Preset, rng: np.random.Generator, label: int, **fields) -> VideoSpec:
  """Draws one video of leaf `label`: its labels, content and nuisances, from rng (its own).

  `fields` are the VideoSpec fields that are not drawn (index, video_id, path, split, ...);
  scene_seed defaults to one drawn here.
  """
  ls = taxonomy.leaves(p)
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


def plan(preset: str | presets.Preset, seed: int = 0) -> list[VideoSpec]:
  """All videos of a data set, in file order. Video i depends only on (seed, i)."""
  p = presets.get_preset(preset)
  return _plan_ucf(p, seed) if p.layout == "ucf101" else _plan_sports(p, seed)


def _plan_sports(p: presets.Preset, seed: int) -> list[VideoSpec]:
  specs = []
  for split, count in zip(presets.SPLITS, p.videos_per_class):
    for label in range(p.num_leaves):
      for _ in range(count):
        i = len(specs)
        vid = f"syn{i:07d}"
        specs.append(draw_spec(p, np.random.default_rng([seed, i]), label, index=i, video_id=vid,
                               path=f"videos/{vid}.mp4", split=split))
  return specs


def _plan_ucf(p: presets.Preset, seed: int) -> list[VideoSpec]:
  """UCF-101 style: clips of one (class, group) share their scene (the same 'place and actor')."""
  specs = []
  for label, name in enumerate(taxonomy.class_names(p)):
    for g in range(1, p.ucf_groups + 1):
      for c in range(1, p.ucf_clips + 1):
        i = len(specs)
        stem = f"v_{name}_g{g:02d}_c{c:02d}"
        specs.append(draw_spec(p, np.random.default_rng([seed, i]), label, index=i,
                               video_id=stem, path=f"UCF-101/{name}/{stem}.avi", split="",
                               scene_seed=(seed, label, g, 1), ucf_group=g, ucf_clip=c))
  return specs


def ucf_test_groups(split: int) -> tuple[int, int]:
  """UCF layout: split k (1..3) tests groups 2k-1 and 2k [choice: the official splits test groups
  1-7, 8-14, 15-21 of 25; scaled down to pairs of our groups]."""
  return 2 * split - 1, 2 * split
