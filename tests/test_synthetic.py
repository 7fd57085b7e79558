"""Tests for the embedded synthetic data set (stcnn.data.synthetic), on the tiny preset."""
import dataclasses
import json
import re
import subprocess
import sys
import time

import av
import numpy as np
import pytest

from stcnn.data import synthetic, video_io
from stcnn.data.synthetic import draws, probe

TINY = synthetic.get_preset("tiny")
# Mean |decoded - rendered| beyond the yuv420p round trip (which alone costs 2-9/255 on 32 px scenes
# with fine colour detail); measured 2.0-2.9 with a fixed quantiser 2.
CODEC_MEAN_ABS = 4.0


def _yuv420(frames):
  """The frames after the lossless part of encoding: RGB → yuv420p → RGB."""
  return np.stack([av.VideoFrame.from_ndarray(f, format="rgb24").reformat(format="yuv420p")
                   .to_ndarray(format="rgb24") for f in frames])


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
  return synthetic.generate("tiny", tmp_path_factory.mktemp("syn") / "tiny", seed=0)


def _manifest(root):
  rows = [line.split(",") for line in (root / "manifest.csv").read_text().splitlines()]
  return [(path, labels.split(";"), split) for path, labels, split in rows]


# --------------------------------------------------------------------------------------- class tree


@pytest.mark.parametrize("name", ["tiny", "cpu", "paper", "transfer"])
def test_hierarchy_is_a_two_level_tree(name):
  p = synthetic.get_preset(name)
  h = synthetic.hierarchy(p)
  num = p.num_groups * p.looks_per_group * p.motions_per_look
  assert h["num_leaves"] == num == len(synthetic.class_names(p))
  assert len(h["names"]) == len(h["parents"]) == num + p.num_groups
  assert len(set(h["names"])) == len(h["names"])
  assert all(num <= g < num + p.num_groups for g in h["parents"][:num])  # every leaf has a group
  assert h["parents"][num:] == [-1] * p.num_groups
  counts = np.bincount(np.array(h["parents"][:num]) - num, minlength=p.num_groups)
  assert counts.tolist() == [p.leaves_per_group] * p.num_groups


def test_expected_sizes_and_names():
  assert synthetic.get_preset("cpu").num_leaves == 24
  assert synthetic.get_preset("paper").frame_size == 200
  assert TINY.num_leaves == 8 and TINY.frame_size == 32
  assert synthetic.class_names("tiny")[:2] == ["red_disc_slide_up", "red_disc_slide_down"]
  assert synthetic.group_names("cpu") == ["ball_sports", "water_sports", "winter_sports",
                                          "combat_sports"]
  for name in synthetic.class_names("transfer"):
    assert re.fullmatch(r"[A-Z][A-Za-z]+", name), name  # UCF-101 style CamelCase


def test_transfer_classes_are_new_combinations():
  look = lambda leaf: (leaf.shape, leaf.colour)
  sports = {look(leaf) for name in ("cpu", "paper") for leaf in synthetic.leaves(name)}
  transfer = {look(leaf) for leaf in synthetic.leaves("transfer")}
  assert len(transfer) == 9 and not transfer & sports


@pytest.mark.parametrize("name", ["tiny", "cpu", "paper"])
def test_motion_siblings_differ_only_in_motion(name):
  p = synthetic.get_preset(name)
  ls = synthetic.leaves(p)
  sets = synthetic.motion_siblings(p)
  assert sorted(c for s in sets for c in s) == list(range(p.num_leaves))
  for s in sets:
    assert len(s) == p.motions_per_look
    assert len({(ls[c].group, ls[c].shape, ls[c].colour) for c in s}) == 1
    assert len({ls[c].motion for c in s}) == len(s)
    if ls[s[0]].shape in synthetic.ROTATION_INVARIANT:
      assert not any(ls[c].motion.startswith(("spin", "wobble")) for c in s)


def test_bad_preset_is_refused():
  with pytest.raises(ValueError, match="num_groups"):
    synthetic.get_preset(dataclasses.replace(TINY, num_groups=9))
  with pytest.raises(ValueError, match="unknown synthetic preset"):
    synthetic.get_preset("huge")


# --------------------- the plan (labels, noise, lengths) — checked on many videos without rendering


def test_plan_noise_rates_and_lengths():
  p = dataclasses.replace(synthetic.get_preset("cpu"), videos_per_class=(250, 0, 0))
  specs = synthetic.plan(p, seed=3)
  n = len(specs)
  assert n == 6000
  two = np.mean([len(s.labels) == 2 for s in specs])
  wrong = np.mean([s.content[0] != s.labels[0] for s in specs])
  moving = np.mean([s.camera != "static" for s in specs])
  cut = sum(s.cutaway[1] for s in specs) / sum(s.num_frames for s in specs)
  assert abs(two - 0.05) < 0.012, two
  assert abs(wrong - 0.03) < 0.01, wrong
  assert abs(moving - 0.3) < 0.03, moving
  assert abs(cut - 0.05) < 0.01, cut
  ls = synthetic.leaves(p)
  for s in specs:
    if len(s.labels) == 2:
      assert s.labels[1] != s.labels[0] and ls[s.labels[1]].group == ls[s.labels[0]].group
      assert s.content[1] == s.labels[1]
    assert 0 <= s.cutaway[0] and s.cutaway[0] + s.cutaway[1] <= s.num_frames
  lengths = np.array([s.num_frames for s in specs])
  assert lengths.min() == 50 and lengths.max() == 100  # 2-4 s at 25 fps, uniform
  assert len(set(lengths.tolist())) == 51


def test_plan_is_deterministic_per_video():
  a, b = synthetic.plan("tiny", seed=0), synthetic.plan("tiny", seed=0)
  assert a == b
  assert synthetic.plan("tiny", seed=1) != a
  bigger = dataclasses.replace(TINY, videos_per_class=(4, 2, 3))
  # Video i depends only on (seed, i): the first splits' videos are unchanged by more test videos.
  assert synthetic.plan(bigger)[:48] == a[:48]


# ---------------------------------------------------------------------------------------- rendering


def test_render_is_deterministic():
  a = synthetic.render_video("tiny", 3, np.random.default_rng([0, 7]))
  b = synthetic.render_video("tiny", 3, np.random.default_rng([0, 7]))
  c = synthetic.render_video("tiny", 3, np.random.default_rng([0, 8]))
  assert a.dtype == np.uint8 and a.ndim == 4 and a.shape[1:] == (32, 32, 3)
  assert 25 <= len(a) <= 50
  np.testing.assert_array_equal(a, b)
  assert a.shape != c.shape or np.abs(a.astype(int) - c).mean() > 5


def test_any_frames_render_like_the_whole_video():
  for spec in synthetic.plan("tiny")[:12]:
    full = synthetic.render_spec("tiny", spec)
    idx = [spec.num_frames - 1, 0, spec.num_frames // 2]
    np.testing.assert_array_equal(synthetic.render_spec("tiny", spec, idx), full[idx])


def _frame_stats(class_id, n=256, frames=8):
  """Mean colour and mean image of the subject window over n videos × frames."""
  fr = np.concatenate([
      synthetic.render_video(TINY, class_id, np.random.default_rng([11, class_id, i]),
                             num_frames=frames) for i in range(n)])
  window = probe.centre_window(TINY, fr).astype(np.float64) / 255
  return window.reshape(-1, 3).mean(0), window.mean(0)


def test_motion_siblings_have_the_same_frame_statistics():
  stats = {c: _frame_stats(c) for c in range(4)}  # group 0: looks {0, 1} and {2, 3}
  diff = lambda a, b: (np.abs(stats[a][0] - stats[b][0]).max(),
                       np.abs(stats[a][1] - stats[b][1]).mean())
  for a, b in [(0, 1), (2, 3)]:  # siblings (measured: <= 0.008 and <= 0.01)
    colour, image = diff(a, b)
    assert colour < 0.02 and image < 0.02, (a, b, colour, image)
  for a, b in [(0, 2), (1, 3)]:  # same group, other look (measured: >= 0.049 and >= 0.037)
    colour, image = diff(a, b)
    assert colour > 0.035 and image > 0.03, (a, b, colour, image)


@pytest.mark.parametrize("motion", sorted({m for s in synthetic.MOTION_SETS for m in s}))
def test_every_motion_keeps_position_and_orientation_uniform(motion):
  leaf = synthetic.Leaf(0, "x", 0, 0, "square", "red", motion)
  rng = np.random.default_rng(0)
  subs = [draws.draw_subject(TINY, leaf, rng, 50) for _ in range(800)]
  w = TINY.window
  for t in (0, 17, 49):
    for values in ([s.x[t] / w for s in subs], [s.y[t] / w for s in subs],
                   [np.arctan2(s.sin[t], s.cos[t]) / (2 * np.pi) + 0.5 for s in subs]):
      counts = np.histogram(values, bins=8, range=(0, 1))[0]
      chi2 = ((counts - 100) ** 2 / 100).sum()
      assert chi2 < 26.0, (motion, t, counts)  # p = 0.0005 for 7 degrees of freedom


def test_motion_siblings_differ_frame_to_frame():
  def motion(class_id):
    fr = np.stack([synthetic.render_video(TINY, class_id, np.random.default_rng([5, class_id, i]),
                                          num_frames=8, nuisance=False) for i in range(24)])
    return synthetic.motion_features(TINY, fr[:, :-2].reshape(-1, 32, 32, 3),
                                     fr[:, 2:].reshape(-1, 32, 32, 3))
  up, down = motion(0), motion(1)  # red_disc_slide_up / _down: 0.5 window/s = 0.76 px / 2 frames
  assert np.median(up[:, 1]) < -0.5 and np.median(down[:, 1]) > 0.5
  assert abs(np.median(up[:, 0])) < 0.1
  glide, hop = motion(6), motion(7)  # yellow_ring_glide / _hop: hopping moves vertically too
  assert np.median(hop[:, 3]) > 3 * np.median(glide[:, 3])


@pytest.mark.parametrize("motion", sorted({m for ms in synthetic.MOTION_SETS for m in ms}))
def test_every_motion_is_mirror_symmetric(motion):
  """A horizontal flip (training augmentation) maps each class onto itself, never onto a sibling:
  the distribution of (dx, dθ) equals that of (−dx, −dθ)."""
  t = np.array([0.4, 1.0])
  ends = np.array([np.concatenate([a[-1:] for a in draws.trajectory(
      motion, np.random.default_rng([3, i]), t, 10.0)]) for i in range(4000)])  # (n, [dx, dy, dθ])
  for col in (0, 2):
    x = ends[:, col]
    assert abs((x > 1e-9).mean() - (x < -1e-9).mean()) < 0.05, (motion, col)
    levels = [0.05, 0.2, 0.35, 0.65, 0.8, 0.95]  # not 0.5: a ± bimodal median is unstable
    q, q_mirror = np.quantile(x, levels), np.quantile(-x, levels)
    assert np.abs(q - q_mirror).max() <= 0.1 * np.abs(x).mean() + 1e-9, (motion, col, q, q_mirror)


def test_difficulty_probe_single_frame_is_at_chance_among_siblings():
  p = dataclasses.replace(TINY, videos_per_class=(30, 0, 12))
  r = synthetic.difficulty_probe(p, gap=2)
  assert r["test_videos"] == 96 and r["num_test"] == 384
  assert r["single_frame"]["look"] > 0.75  # appearance is easy ...
  assert abs(r["single_frame"]["siblings"] - 0.5) < 0.1  # ... motion siblings are not
  assert r["motion_only"]["siblings"] > 0.7
  assert r["frame_pair"]["leaf"] > r["single_frame"]["leaf"] + 0.1
  assert "single_frame" in synthetic.format_probe(r)


# ------------------------------------------------------------------------ writing the sports layout


def test_generate_writes_a_consistent_data_set(tiny_dir):
  names = (tiny_dir / "classes.txt").read_text().splitlines()
  assert names == synthetic.class_names("tiny")
  h = json.loads((tiny_dir / "hierarchy.json").read_text())
  assert h == synthetic.hierarchy("tiny") and h["names"][:8] == names
  rows = _manifest(tiny_dir)
  assert len(rows) == 8 * (4 + 2 + 2)
  for split, count in zip(("train", "val", "test"), TINY.videos_per_class):
    first = [labels[0] for _, labels, s in rows if s == split]
    assert sorted(set(first)) == sorted(names)
    assert all(first.count(n) == count for n in names)
  assert all(label in names for _, labels, _ in rows for label in labels)
  assert len({path for path, _, _ in rows}) == len(rows)
  assert not list(tiny_dir.parent.glob(".tiny.incomplete-*"))
  readme = (tiny_dir / "README.md").read_text()
  assert "preset `tiny`" in readme and "64 videos" in readme


def test_written_videos_decode_to_the_planned_frames(tiny_dir):
  specs = synthetic.plan("tiny")
  assert [s.path for s in specs] == [path for path, _, _ in _manifest(tiny_dir)]
  lengths = set()
  for spec in specs[::5]:
    video = video_io.read_video(tiny_dir / spec.path)
    assert video.shape == (spec.num_frames, 32, 32, 3)
    assert video_io.video_fps(tiny_dir / spec.path) == 25
    err = np.abs(video.astype(int) - _yuv420(synthetic.render_spec("tiny", spec))).mean()
    assert err < CODEC_MEAN_ABS, (spec.path, err)
    lengths.add(spec.num_frames)
  assert len(lengths) >= 6 and min(lengths) >= 25 and max(lengths) <= 50


def test_generate_is_deterministic_and_idempotent(tiny_dir, tmp_path):
  stamp = (tiny_dir / "manifest.csv").stat().st_mtime_ns
  start = time.time()
  assert synthetic.generate("tiny", tiny_dir, seed=0) == tiny_dir
  assert time.time() - start < 0.5 and (tiny_dir / "manifest.csv").stat().st_mtime_ns == stamp
  again = synthetic.generate("tiny", tmp_path / "again", seed=0)
  assert (again / "manifest.csv").read_bytes() == (tiny_dir / "manifest.csv").read_bytes()
  for path, _, _ in _manifest(tiny_dir)[::7]:
    a, b = video_io.read_video(tiny_dir / path), video_io.read_video(again / path)
    assert a.shape == b.shape and np.abs(a.astype(int) - b).max() <= 1


def test_generate_refuses_to_mix_data_sets(tiny_dir, tmp_path):
  with pytest.raises(FileExistsError, match="synthetic.json"):
    synthetic.generate("tiny", tiny_dir, seed=1)
  (tmp_path / "other").mkdir()
  (tmp_path / "other" / "mine.txt").write_text("x")
  with pytest.raises(FileExistsError, match="not a complete synthetic data set"):
    synthetic.generate("tiny", tmp_path / "other")


def test_killed_generation_leaves_no_data_set(tmp_path, monkeypatch):
  calls = []
  real = video_io.write_video

  def flaky(path, frames, fps=25):
    calls.append(path)
    if len(calls) == 5:
      raise KeyboardInterrupt("killed")
    real(path, frames, fps=fps)

  monkeypatch.setattr(video_io, "write_video", flaky)
  with pytest.raises(KeyboardInterrupt):
    synthetic.generate("tiny", tmp_path / "ds")
  assert not (tmp_path / "ds").exists() and list(tmp_path.iterdir()) == []
  monkeypatch.setattr(video_io, "write_video", real)
  out = synthetic.generate(dataclasses.replace(TINY, videos_per_class=(1, 0, 0)), tmp_path / "ds")
  assert len(_manifest(out)) == 8 and (out / "synthetic.json").exists()


def test_cli_on_an_existing_data_set(tiny_dir):
  cmd = [sys.executable, "-m", "stcnn.data.synthetic", "--preset=tiny", f"--out={tiny_dir}"]
  res = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
  assert res.returncode == 0, res.stderr
  assert "preset tiny, seed 0" in res.stdout


# ----------------------------------------------- the transfer preset in the official UCF-101 layout


def test_transfer_writes_the_ucf101_layout(tmp_path):
  p = dataclasses.replace(synthetic.get_preset("transfer"), num_groups=2, looks_per_group=1,
                          frame_size=32, min_seconds=0.4, max_seconds=0.8, ucf_clips=1)
  root = synthetic.generate(p, tmp_path / "ucf")
  lists = root / "ucfTrainTestlist"
  raw = (lists / "classInd.txt").read_bytes()
  assert raw.endswith(b"\r\n") and raw.count(b"\r\n") == raw.count(b"\n") == 4
  ind = dict(line.split(" ")[::-1] for line in raw.decode().splitlines())
  assert sorted(ind.values()) == ["1", "2", "3", "4"]
  assert list(ind) == synthetic.class_names(p)
  videos = sorted(str(f.relative_to(root / "UCF-101")) for f in (root / "UCF-101").rglob("*.avi"))
  assert len(videos) == 4 * 6
  for split in (1, 2, 3):
    train_raw = (lists / f"trainlist0{split}.txt").read_bytes()
    test_raw = (lists / f"testlist0{split}.txt").read_bytes()
    assert train_raw.count(b"\r\n") == train_raw.count(b"\n") == 16
    assert test_raw.count(b"\r\n") == test_raw.count(b"\n") == 8
    train = [line.split(" ") for line in train_raw.decode().splitlines()]
    test = test_raw.decode().splitlines()
    assert sorted([path for path, _ in train] + test) == videos
    for path, label in train:
      cls, stem = path.split("/")
      assert ind[cls] == label
      m = re.fullmatch(rf"v_{cls}_g(\d\d)_c(\d\d)\.avi", stem)
      assert m and int(m.group(1)) not in (2 * split - 1, 2 * split)
    assert {int(re.search(r"_g(\d\d)_", t).group(1)) for t in test} == {2 * split - 1, 2 * split}
  video = video_io.read_video(root / "UCF-101" / videos[0])
  assert video.shape[1:] == (32, 40, 3) and 10 <= len(video) <= 20
