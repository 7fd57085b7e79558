"""Predicting video files with a trained workdir: containers, bad files, API = CLI = evaluation."""
import json
import os
import re
import shutil
import subprocess
import sys

import av
import numpy as np
import pytest

from stcnn.data import datasets, pipeline, sampling, video_io
from stcnn.predictor import Predictor
from tests.helpers import CLIPS, ROOT, VIEWS


def run_predict(workdir, *args, cwd=None):
  return subprocess.run([sys.executable, "-m", "stcnn.predict", f"--workdir={workdir}", *args],
                        cwd=cwd or ROOT, env={**os.environ, "JAX_PLATFORMS": "cpu"},
                        capture_output=True, text=True)


@pytest.fixture(scope="module")
def data(predictor):
  """The prepared tiny data set the workdir trained on (already made by the training run)."""
  return datasets.load(predictor.config)


def _letterbox(frames, height, width):
  """The frames centred on a grey canvas of height × width (a non-square video)."""
  t, h, w, _ = frames.shape
  out = np.full((t, height, width, 3), 90, np.uint8)
  top, left = (height - h) // 2, (width - w) // 2
  out[:, top:top + h, left:left + w] = frames
  return out


@pytest.fixture(scope="module")
def videos(tmp_path_factory, data):
  """Good files in several containers and codecs (from a test video of the data set), one
  shorter than the clip, and bad ones: {name: path}."""
  d = tmp_path_factory.mktemp("videos")
  record = data.source("test")[0]
  frames = sampling.decode_clip(record["frames"], range(len(record["frames"])))  # 32×32
  big = np.repeat(np.repeat(frames, 2, axis=1), 2, axis=2)  # 64×64
  made = {
      "wide.mp4": (_letterbox(big, 64, 112), 25, "libx264"),  # h264, 16:9-ish
      "tall.avi": (_letterbox(frames, 48, 32), 30, "mpeg4"),  # mpeg4, portrait
      "square.mkv": (big, 24, "libx264"),
      "vp9.webm": (_letterbox(frames, 32, 48), 25, "libvpx-vp9"),
      "short.mp4": (big[:5], 25, "libx264"),  # 5 frames < the 16-frame clip
  }
  paths = {}
  for name, (pixels, fps, codec) in made.items():
    if codec not in av.codecs_available:
      continue
    paths[name] = str(d / name)
    video_io.write_video(paths[name], pixels, fps, codec)
  paths["corrupt.mp4"] = str(d / "corrupt.mp4")
  with open(paths["corrupt.mp4"], "wb") as f:
    f.write(b"\x00\x00\x00\x18ftypmp42" + np.random.default_rng(0).bytes(4000))
  paths["empty.mp4"] = str(d / "empty.mp4")
  open(paths["empty.mp4"], "wb").close()
  paths["missing.mp4"] = str(d / "missing.mp4")
  paths["audio.wav"] = str(d / "audio.wav")
  with av.open(paths["audio.wav"], "w") as container:
    stream = container.add_stream("pcm_s16le", rate=8000)
    frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
    frame.rate = 8000
    for packet in [*stream.encode(frame), *stream.encode()]:
      container.mux(packet)
  return paths


GOOD = ("wide.mp4", "tall.avi", "square.mkv", "vp9.webm", "short.mp4")
BAD = {"corrupt.mp4": "", "missing.mp4": "no such file", "empty.mp4": "empty file",
       "audio.wav": "no video stream"}


@pytest.fixture(scope="module")
def cli_json(workdir, videos):
  """One `--json` run over good and bad files, interleaved: (process, {name: row})."""
  names = [n for n in ("wide.mp4", "corrupt.mp4", "tall.avi", "missing.mp4", "square.mkv",
                       "empty.mp4", "vp9.webm", "audio.wav", "short.mp4") if n in videos]
  r = run_predict(workdir, "--json", *[videos[n] for n in names])
  rows = [json.loads(line) for line in r.stdout.splitlines()]
  assert [row["video"] for row in rows] == [videos[n] for n in names], r.stdout + r.stderr
  return r, dict(zip(names, rows))


def test_every_container_is_answered_and_bad_files_are_named(cli_json, videos, data):
  r, rows = cli_json
  assert r.returncode == 1  # some files failed
  assert f"{len(BAD)} of {len(rows)} videos failed" in r.stderr
  classes = set(data.class_names)
  for name in GOOD:
    if name not in videos:
      continue  # an encoder this PyAV lacks
    row = rows[name]
    assert "error" not in row, row
    assert [t["class"] for t in row["top5"]] == [data.class_names[t["index"]] for t in row["top5"]]
    assert {t["class"] for t in row["top5"]} <= classes and len(row["top5"]) == 5
    assert len(row["probs"]) == len(classes)
    assert abs(sum(row["probs"]) - 1) < 1e-5
    assert [t["prob"] for t in row["top5"]] == sorted(row["probs"], reverse=True)[:5]
    assert len(row["timeline"]) == CLIPS and row["views"] == VIEWS
    assert row["step"] == 10
  assert rows["wide.mp4"]["num_frames"] == 40 and rows["wide.mp4"]["fps"] == 25
  short = rows["short.mp4"]
  assert short["num_frames"] == 5 and short["padded_frames"] == 1  # frame 15 → frame 4
  assert "shorter than the 16-frame clip" in short["note"] and "repeats" in short["note"]
  assert rows["wide.mp4"]["padded_frames"] == 0 and rows["wide.mp4"]["note"] is None
  for name, why in BAD.items():
    assert set(rows[name]) == {"video", "error"}, rows[name]
    assert why in rows[name]["error"] and rows[name]["error"].strip()


def test_api_gives_the_cli_probabilities(cli_json, predictor, videos):
  _, rows = cli_json
  for name in GOOD:
    if name not in videos:
      continue
    result = predictor.predict(videos[name])
    np.testing.assert_allclose(result["probs"], np.float32(rows[name]["probs"]), rtol=0,
                               atol=1e-6)
    np.testing.assert_allclose(result["clip_probs"],
                               np.float32([c["probs"] for c in rows[name]["timeline"]]),
                               rtol=0, atol=1e-6)
    assert [t["class"] for t in result["top5"]] == [t["class"] for t in rows[name]["top5"]]
  # The same frames as an array: the same numbers (the same decode and preprocessing).
  frames = video_io.read_video(videos["tall.avi"])
  np.testing.assert_array_equal(predictor.predict_array(frames, fps=30)["probs"],
                                predictor.predict(videos["tall.avi"])["probs"])
  with pytest.raises(video_io.VideoDecodeError, match="no video stream"):
    predictor.predict(videos["audio.wav"])
  with pytest.raises(FileNotFoundError, match="missing.mp4"):
    predictor.predict(videos["missing.mp4"])


def test_text_output_timeline_and_png(workdir, videos, tmp_path):
  out = tmp_path / "res" / "predictions.txt"
  r = run_predict(workdir, "--timeline", f"--out={out}", videos["wide.mp4"],
                  videos["missing.mp4"], videos["short.mp4"], cwd=str(tmp_path))
  assert r.returncode == 1, r.stderr
  text = r.stdout
  assert out.read_text() == text
  assert f"{videos['missing.mp4']}: cannot predict: no such file" in text
  blocks = text.split(f"{videos['short.mp4']}: ")
  assert "note: 5 frames, shorter than the 16-frame clip" in blocks[1]
  for name in ("wide.mp4", "short.mp4"):
    png = tmp_path / "res" / f"{name}.timeline.png"
    assert f"timeline plot: {png}" in text
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  wide = blocks[0].split(f"{videos['wide.mp4']}: ")[1]
  assert wide.startswith("40 frames, 25.00 fps, 3 clips × 2 views (checkpoint step 10)")
  ranked = [line for line in wide.splitlines() if re.match(r"  \d\. ", line)]
  assert [line[:5] for line in ranked] == [f"  {k}. " for k in range(1, 6)]
  times = [line.split()[0] for line in wide.split("timeline (")[1].splitlines()[1:CLIPS + 1]]
  # 40 frames, span 16: 25 valid starts; clip i at (2i + 1) · 25 // 6 = 4, 12, 20: at 25 fps
  assert times == ["0.16", "0.48", "0.80"]


def test_a_prepared_video_gets_the_evaluation_probabilities(predictor, data):
  """predict_stored on a test video's stored frames == the evaluation pipeline's mean softmax."""
  config = predictor.config
  source, videos = data.source("test"), 3
  plan = pipeline.eval_plan(source, num_frames=len(predictor.offsets),
                            num_classes=config.num_classes, clips_per_video=CLIPS, views=VIEWS,
                            frame_offsets=predictor.offsets, index=data.index("test"),
                            max_videos=videos)
  batches = pipeline.EvalBatches(source, plan, crop_size=config.model.input_size,
                                 batch_size=config.eval_batch_size, mean=config.data.mean)
  probs = np.concatenate([np.asarray(predictor._probs(predictor.params, b["video"]))
                          for b in batches])[:plan.num_examples]
  for v in range(videos):
    records = set(plan.clips[v * CLIPS:(v + 1) * CLIPS, 1].tolist())
    assert len(records) == 1  # one segment: the whole video
    record = source[records.pop()]
    frames = sampling.decode_clip(record["frames"], range(len(record["frames"])))
    result = predictor.predict_stored(frames)
    want = probs[v * CLIPS * VIEWS:(v + 1) * CLIPS * VIEWS]
    np.testing.assert_allclose(result["probs"], want.mean(0), rtol=0, atol=1e-6)
    np.testing.assert_allclose(result["clip_probs"], want.reshape(CLIPS, VIEWS, -1).mean(1),
                               rtol=0, atol=1e-6)


def test_any_frame_size_and_a_video_shorter_than_the_clip(predictor):
  frames = np.random.default_rng(1).integers(0, 256, (3, 50, 70, 3), dtype=np.uint8)
  result = predictor.predict_array(frames)
  assert result["num_frames"] == 3 and result["padded_frames"] == 1
  assert [c["start_s"] for c in result["timeline"]] == [None] * CLIPS
  assert result["probs"].shape == (8,) and result["clip_probs"].shape == (CLIPS, 8)
  with pytest.raises(ValueError, match="uint8"):
    predictor.predict_array(frames.astype(np.float32))


def test_a_data_set_prepared_at_a_fixed_fps(predictor):
  """prepare --fps=12.5 keeps every other frame of a 25 fps video: predict picks the same."""
  p = Predictor(predictor.config, predictor.params, predictor.class_names, fps=12.5)
  frames = np.random.default_rng(2).integers(0, 256, (40, 40, 40, 3), dtype=np.uint8)
  got = p.predict_array(frames, fps=25)
  want = p.predict_stored(np.stack([p.stored_frame(f) for f in frames[::2]]), fps=12.5)
  assert got["num_frames"] == want["num_frames"] == 20 and got["fps"] == 12.5
  np.testing.assert_array_equal(got["probs"], want["probs"])
  assert [c["start_s"] for c in got["timeline"]] == [c["start_s"] for c in want["timeline"]]


def test_a_header_that_announces_more_frames_than_decode(predictor, videos, monkeypatch):
  """The frames are counted and the clips placed again (prepare keeps the frames that decode)."""
  want = predictor.predict(videos["tall.avi"])
  probe = video_io.probe
  monkeypatch.setattr(video_io, "probe", lambda path: (probe(path)[0] + 7, probe(path)[1]))
  got = predictor.predict(videos["tall.avi"])
  assert got["num_frames"] == want["num_frames"]
  np.testing.assert_array_equal(got["probs"], want["probs"])


def test_class_names_without_the_data_set(workdir, tmp_path, data):
  """A workdir moved to a machine without its data set: class_names.json, else class_<i>."""
  moved = tmp_path / "moved"
  shutil.copytree(workdir, moved, ignore=shutil.ignore_patterns("tensorboard"))
  config = json.loads((moved / "config.json").read_text())
  config["data"]["cache_dir"] = str(tmp_path / "no_such_cache")
  (moved / "config.json").write_text(json.dumps(config))
  assert json.loads((moved / "class_names.json").read_text()) == list(data.class_names)
  (moved / "class_names.json").unlink()  # what the trainer writes: first, the fallback without it
  p = Predictor.from_workdir(moved, checkpoint=10)
  assert p.class_names == tuple(f"class_{i}" for i in range(8))
  assert "none found" in p.sources["class_names"]
  (moved / "class_names.json").write_text(json.dumps(list(data.class_names)))
  p = Predictor.from_workdir(moved, checkpoint="latest")
  assert p.class_names == data.class_names and p.step == 10
  assert p.sources["class_names"] == str(moved / "class_names.json")
  (moved / "class_names.json").write_text(json.dumps(["a", "b"]))
  with pytest.raises(ValueError, match=r"class_names.json: expected a JSON list of 8"):
    Predictor.from_workdir(moved)


def test_flags_are_checked(workdir):
  r = run_predict(workdir, "--checkpoint=abc", "x.mp4")
  assert r.returncode != 0 and "--checkpoint must be best, latest or a step number" in r.stderr
  r = run_predict(workdir)
  assert r.returncode != 0 and "name at least one video" in r.stderr
