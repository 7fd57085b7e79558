"""Generator settings: the `Preset` dataclass, the named presets and their validation.

A preset fixes everything about a data set but its seed: the class tree's size (groups × looks ×
motions, drawn from the tables of `taxonomy`), frame size, video counts, lengths and nuisance rates.
FORMAT_VERSION is part of every data set's marker (and of the data set cache key): bump it whenever
the same preset and seed would generate different videos. See docs/design.md.
"""
from __future__ import annotations

import dataclasses

FORMAT_VERSION = 2  # 2: mirror-symmetric motion classes (no left/right or cw/ccw siblings)
SPLITS = ("train", "val", "test")


@dataclasses.dataclass(frozen=True)
class Preset:
  """Generator settings. Sizes are the *stored* (pre-crop) frame size; cropping happens elsewhere.

  Attributes:
    name: preset name, written to the README.
    num_groups: coarse groups (= scenes); at most len(SCENES) - scene_offset.
    looks_per_group: subject looks (shape + colour) per group.
    motions_per_look: motion siblings per look (2..4); leaves per group = looks × motions.
    frame_size: stored frame height (and width when aspect == 1).
    aspect: width / height of the stored frames (UCF-101 is 4:3-ish; readers crop the centre
      square).
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
  def num_videos(self) -> int:
    per_class = (sum(self.videos_per_class) if self.layout == "sports"
                 else self.ucf_groups * self.ucf_clips)
    return self.num_leaves * per_class

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
    # like Sports-1M [docs/paper.md §2]; 96,000 videos of 2-6 s. Never generated in tests.
    "paper": Preset("paper", num_groups=8, looks_per_group=4, motions_per_look=3, frame_size=200,
                    videos_per_class=(700, 100, 200), min_seconds=2.0, max_seconds=6.0),
    # The UCF-101 role: 18 OTHER leaves (new shape/colour/motion combinations, scenes 4-6), 12
    # clean videos a leaf (6 groups × 2 clips; clips of a group share their scene), 80×64 frames,
    # 3 splits.
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
  # Imported here, not at the top: taxonomy resolves preset names with get_preset.
  from stcnn.data.synthetic import taxonomy  # pylint: disable=import-outside-toplevel

  num_scenes, num_looks = len(taxonomy.SCENES), taxonomy.NUM_LOOKS
  if not 1 <= p.num_groups <= num_scenes - p.scene_offset:
    raise ValueError(f"preset {p.name}: num_groups={p.num_groups} needs scenes "
                     f"{p.scene_offset}..{p.scene_offset + p.num_groups - 1}; "
                     f"only {num_scenes} exist")
  if not 1 <= p.motions_per_look <= 4:
    raise ValueError(f"preset {p.name}: motions_per_look must be in 1..4, got {p.motions_per_look}")
  if p.look_offset + p.num_groups * p.looks_per_group > num_looks:
    raise ValueError(f"preset {p.name}: more looks than shape × colour combinations")
  if p.layout not in ("sports", "ucf101"):
    raise ValueError(f"preset {p.name}: layout must be 'sports' or 'ucf101', got {p.layout!r}")
  if p.layout == "ucf101" and p.ucf_groups < 6:
    raise ValueError(f"preset {p.name}: ucf101 layout needs ucf_groups >= 6 for 3 splits")
  if not 0 < p.min_seconds <= p.max_seconds:
    raise ValueError(f"preset {p.name}: need 0 < min_seconds <= max_seconds")
