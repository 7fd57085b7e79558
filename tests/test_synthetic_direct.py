"""The synthetic renderer's fast paths and the records rendered straight from it (no video files).

`synthetic.prepare_records` must write what `synthetic.generate` + `prepare.prepare("csv", ...)`
writes, less the video codec's loss; rendering must stay bit-identical to the pinned hashes.
"""
import dataclasses
import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from stcnn import fileio
from stcnn.data import datasets, prepare, prepared, synthetic, video_io
from stcnn.data.synthetic import records, render
from tests.helpers import ROOT, tiny_config

TINY = synthetic.get_preset("tiny")
# A small plan of paper-size (200 px) videos: spec i depends only on (seed, i, its label, split).
PAPER_SLICE = dataclasses.replace(synthetic.get_preset("paper"), videos_per_class=(2, 0, 0))


# ---------------------------------------------------------------------------------------- rendering
def _pinned(name):
  """(preset, [(spec, frames or None)]) whose frames the hashes below pin."""
  if name == "tiny":
    return TINY, [(s, None) for s in synthetic.plan(TINY)]
  if name == "cpu":
    return synthetic.get_preset("cpu"), [(s, None) for s in synthetic.plan("cpu")[::50]]
  specs = synthetic.plan(PAPER_SLICE)
  picks = []
  for want in (lambda s: s.camera == "static" and len(s.content) == 1,
               lambda s: s.camera == "pan", lambda s: s.camera == "zoom",
               lambda s: len(s.content) == 2, lambda s: s.cutaway[1] > 0):
    for s in [s for s in specs if want(s)][:3]:
      start = s.cutaway[0]
      picks.append((s, [0, s.num_frames // 2, s.num_frames - 1, start, start + 1]))
  return PAPER_SLICE, picks


# sha256 of the frames of `_pinned`, from the renderer of FORMAT_VERSION 2 before it was made
# faster (per-frame patches, chunks, planes): the fast paths changed no pixel. Pixels that change
# need a new FORMAT_VERSION (and new hashes).
PINNED = {
    "tiny": "34565a32d55a1a4204e3e6862ee28b8c0eca6f21060975f4584cf1b8295130c9",
    "cpu": "cbed5a922f99b40334d6eff3daaa986d62e223646f4c820775c7ad7daddbbe45",
    "paper": "8ab88d0bcecfc5633a47b677974d3066198046942f5d56b71b9881e72ae453e6",
}


def _hash(name, render_spec=synthetic.render_spec):
  p, picks = _pinned(name)
  h = hashlib.sha256()
  for spec, frames in picks:
    h.update(render_spec(p, spec, frames).tobytes())
  return h.hexdigest()


@pytest.mark.parametrize("name", sorted(PINNED))
def test_rendering_is_pinned(name):
  assert synthetic.FORMAT_VERSION == 2
  assert _hash(name) == PINNED[name]


def test_patches_and_chunks_render_like_the_whole_window(monkeypatch):
  """Subject patches (coverage is 0 outside them) and chunking change no pixel."""
  p = synthetic.get_preset("cpu")
  plan = synthetic.plan(p)
  specs = [next(s for s in plan if s.content[0] == leaf) for leaf in range(p.num_leaves)]
  specs += [s for s in plan if len(s.content) == 2][:4]
  assert {render._draw_video(p, s).subjects[0].shape for s in specs} == set(synthetic.SHAPES)
  assert {s.camera for s in specs} == {"static", "pan", "zoom"}
  frames = [0, 1, 2, 17, 33, 49]
  fast = [synthetic.render_spec(p, s, frames) for s in specs]
  monkeypatch.setattr(render, "_EXTENT", {k: 100.0 for k in render._EXTENT})  # whole window
  monkeypatch.setattr(render, "_CHUNK", 4)
  for spec, frames_fast in zip(specs, fast):
    np.testing.assert_array_equal(synthetic.render_spec(p, spec, frames), frames_fast)


def test_iter_frames_skips_only_repeated_frames():
  specs = synthetic.plan(TINY)
  skipped = 0
  for spec in specs[:24]:
    full = synthetic.render_spec(TINY, spec)
    frames = list(synthetic.iter_frames(TINY, spec, skip_repeats=True))
    assert len(frames) == len(full) and frames[0] is not None
    for t, frame in enumerate(frames):
      if frame is None:
        np.testing.assert_array_equal(full[t], full[t - 1])
        skipped += 1
      else:
        np.testing.assert_array_equal(frame, full[t])
  assert skipped > 0
  np.testing.assert_array_equal(np.stack(list(synthetic.iter_frames(TINY, specs[3]))),
                                synthetic.render_spec(TINY, specs[3]))


# --------------------------------------------------------------- records straight from the renderer
@pytest.fixture(scope="module")
def tiny_source(tmp_path_factory):
  return synthetic.generate(TINY, tmp_path_factory.mktemp("syn") / "tiny")


def _records(path):
  """Per split, the records of a prepared data set (frames decoded)."""
  data = prepared.load(path)
  return data, {split: [{**r, "frames": np.stack([video_io.decode_jpeg(f) for f in r["frames"]])}
                        for r in data.source(split)] for split in data.splits}


SETTINGS = [{}, {"segment_frames": 10, "max_segments": 3}, {"segment_frames": 8, "fps": 10.0}]


@pytest.mark.parametrize("settings", SETTINGS, ids=["default", "segments", "fps"])
def test_records_match_the_video_round_trip(tiny_source, tmp_path, settings):
  direct = synthetic.prepare_records(TINY, tmp_path / "direct", frame_size=32, **settings)
  trip = prepare.prepare("csv", tiny_source / "manifest.csv", tmp_path / "trip", frame_size=32,
                         **settings)
  (a, recs_a), (b, recs_b) = _records(direct), _records(trip)
  assert a.splits == b.splits == ("train", "val", "test")
  assert (a.class_names, a.hierarchy, a.frame_size) == (b.class_names, b.hierarchy, b.frame_size)
  assert a.metadata["settings"] == b.metadata["settings"]
  assert a.fingerprint != b.fingerprint  # other source, other data set
  drop_seconds = lambda counts: {k: {**v, "seconds": 0} for k, v in counts.items()}
  assert drop_seconds(a.counts) == drop_seconds(b.counts)
  errors, rendered_errors, trip_errors = [], [], []
  specs = iter(synthetic.plan(TINY))
  for split in a.splits:
    assert a.index(split) == b.index(split)
    for ra, rb in zip(recs_a[split], recs_b[split], strict=True):
      for key in ("video_id", "labels", "segment", "num_segments", "fps"):
        np.testing.assert_array_equal(ra[key], rb[key])
      assert ra["frames"].shape == rb["frames"].shape
      errors.append(np.abs(ra["frames"].astype(int) - rb["frames"]).mean())
      if not settings:  # one segment a video, every frame: compare with the rendered frames
        rendered = synthetic.render_spec(TINY, next(specs)).astype(int)
        rendered_errors.append(np.abs(ra["frames"] - rendered).mean())
        trip_errors.append(np.abs(rb["frames"] - rendered).mean())
  # JPEGs of the same frames but for the codec's loss (measured: 4.1 mean, 5.8 at most a video).
  assert np.mean(errors) < 5.5 and max(errors) < 8, (np.mean(errors), max(errors))
  if not settings:  # and without that loss the records are closer to the rendered frames
    assert np.mean(rendered_errors) < np.mean(trip_errors)
  with open(prepare.report_path(direct)) as f:
    report = json.load(f)
  assert report["status"] == "ok" and report["source"] == str(tmp_path / "direct")


def test_worker_processes_write_the_same_records(tmp_path):
  a = prepared.load(synthetic.prepare_records(TINY, tmp_path / "one", frame_size=32, workers=1))
  b = prepared.load(synthetic.prepare_records(TINY, tmp_path / "two", frame_size=32, workers=2))
  assert a.fingerprint == b.fingerprint
  for split in a.splits:
    assert a.index(split) == b.index(split)
    for ra, rb in zip(a.source(split), b.source(split), strict=True):
      assert ra["frames"] == rb["frames"]


def test_records_are_reused_and_other_data_refused(tmp_path, monkeypatch):
  out = synthetic.prepare_records(TINY, tmp_path / "rec", frame_size=32)
  monkeypatch.setattr(render, "iter_frames", lambda *a, **k: pytest.fail("rendered again"))
  assert synthetic.prepare_records(TINY, tmp_path / "rec", frame_size=32) == out
  with pytest.raises(ValueError, match="different source or settings"):
    synthetic.prepare_records(TINY, tmp_path / "rec", seed=1, frame_size=32)
  with pytest.raises(ValueError, match="sports layout only"):
    synthetic.prepare_records("transfer", tmp_path / "ucf")


def test_failed_build_leaves_nothing_complete(tmp_path, monkeypatch):
  calls, real = [], video_io.encode_jpeg

  def flaky(frame, quality=90):
    calls.append(1)
    if len(calls) == 400:  # a few videos in: records of the train split are being written
      raise KeyboardInterrupt("killed")
    return real(frame, quality)

  monkeypatch.setattr(video_io, "encode_jpeg", flaky)
  out = tmp_path / "rec"
  with pytest.raises(KeyboardInterrupt):
    synthetic.prepare_records(TINY, out, frame_size=32)
  assert prepared.find_builder_dirs(out) == []
  assert sorted(os.listdir(out)) == ["csv_clips", records.SOURCE_FILE]
  assert os.listdir(out / "csv_clips") == [prepare.REPORT_FILE]  # no temporary left either
  assert json.loads((out / "csv_clips" / prepare.REPORT_FILE).read_text())["status"] == "failed"
  monkeypatch.setattr(video_io, "encode_jpeg", real)
  assert prepared.load(synthetic.prepare_records(TINY, out, frame_size=32)).counts["train"][
      "written"] == 32


def test_killed_build_leaves_nothing_complete(tmp_path):
  """SIGKILL while records are written: no data set, a hidden temporary that the next run clears."""
  p = dataclasses.replace(TINY, videos_per_class=(60, 0, 0))
  out = tmp_path / "rec"
  code = ("import dataclasses, sys\nfrom stcnn.data import synthetic\n"
          "p = dataclasses.replace(synthetic.get_preset('tiny'), videos_per_class=(60, 0, 0))\n"
          "synthetic.prepare_records(p, sys.argv[1], frame_size=32)\n")
  proc = subprocess.Popen([sys.executable, "-c", code, str(out)], cwd=ROOT,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  builder_dir = out / "csv_clips" / "1.0.0"
  deadline = time.time() + 120
  while not any(t.glob("train.partial-*") for t in fileio.stale_temporaries(builder_dir)):
    assert proc.poll() is None and time.time() < deadline, "finished before it could be killed"
    time.sleep(0.02)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  assert prepared.find_builder_dirs(out) == [] and fileio.stale_temporaries(builder_dir)
  data = prepared.load(synthetic.prepare_records(p, out, frame_size=32))
  assert data.counts["train"]["written"] == 480 and not fileio.stale_temporaries(builder_dir)


# ---------------------------------------------------------------------- the cache of stcnn.data
def test_ensure_synthetic_renders_sports_presets_to_records(tmp_path):
  path = datasets.ensure_synthetic(tiny_config(tmp_path))
  assert path.startswith(os.path.join(datasets.synthetic_path(tiny_config(tmp_path)),
                                      f"records-v{records.RECORDS_VERSION}-32px"))
  assert not os.path.exists(os.path.join(datasets.synthetic_path(tiny_config(tmp_path)),
                                         "source"))  # no video files
  assert datasets.ensure_synthetic(tiny_config(tmp_path)) == path  # reused
  data = prepared.load(path)
  assert data.metadata["source_kind"] == "csv" and sum(
      c["written"] for c in data.counts.values()) == TINY.num_videos


def test_default_workers():
  assert records.default_workers(TINY.num_videos) == 1
  assert 1 <= records.default_workers(96_000) <= (os.cpu_count() or 1)
