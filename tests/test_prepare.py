"""Offline preparation end to end on tiny real videos, and reading back through prepared.load()."""
import dataclasses
import json
import os
import shutil
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds
from tensorflow_datasets.core import shuffle

from stcnn.data import builders, encode, prepare, prepared, video_io
from tests.helpers import ramp, write_videos

CLASSES = ("ApplyEyeMakeup", "Basketball", "HandstandPushups")
# (width, height, fps, frames) per group: mixed aspect ratios and frame rates.
# Lossy codecs move a frame's mean a little; less than half a ramp step still names the frame.
TOL = 5.5
SHAPES = {1: (32, 24, 25, 12), 2: (24, 32, 30, 8), 3: (40, 20, 15, 20)}


@pytest.fixture(scope="module")
def ucf_root(tmp_path_factory, write_ucf_lists):
  """A UCF-101 tree: 9 listed videos; a corrupt one, an empty one and a missing one."""
  root = tmp_path_factory.mktemp("ucf")
  write_ucf_lists(root, CLASSES)
  for c in CLASSES:
    os.makedirs(root / "UCF-101" / c)
    for g, (w, h, fps, n) in SHAPES.items():
      path = root / "UCF-101" / c / f"v_{c}_g{g:02d}_c01.avi"
      if (c, g) == ("Basketball", 3):
        path.write_bytes(np.random.RandomState(0).bytes(3000))  # Corrupt.
      elif (c, g) == ("ApplyEyeMakeup", 2):
        path.write_bytes(b"")  # 0 frames.
      elif (c, g) != ("HandstandPushups", 1):  # Listed, missing.
        video_io.write_video(path, ramp(n, w, h), fps=fps)
  return root


@pytest.fixture(scope="module")
def ucf_prepared(ucf_root, tmp_path_factory):
  out = tmp_path_factory.mktemp("out")
  return out, prepare.prepare("ucf101", ucf_root, out, split=1, frame_size=16)


def test_ucf101_exact_counts_and_report(ucf_prepared):
  out, builder_dir = ucf_prepared
  assert builder_dir == str(out / "ucf101_clips" / "split1" / "1.0.0")
  with open(prepare.report_path(builder_dir)) as f:
    report = json.load(f)
  counts = {s: {k: c[k] for k in ("listed", "written", "missing", "unreadable", "segments",
                                  "frames")} for s, c in report["splits"].items()}
  assert counts == {
      "train": {"listed": 6, "written": 4, "missing": 0, "unreadable": 2, "segments": 4,
                "frames": 20 + 8 + 8 + 20},
      "test": {"listed": 3, "written": 2, "missing": 1, "unreadable": 0, "segments": 2,
               "frames": 12 + 12}}
  bad = {os.path.basename(u["path"]): u["reason"] for u in report["unreadable"]["train"]}
  assert sorted(bad) == ["v_ApplyEyeMakeup_g02_c01.avi", "v_Basketball_g03_c01.avi"]
  assert all(name in reason for name, reason in bad.items())
  assert report["missing"] == {"train": [], "test": ["v_HandStandPushups_g01_c01"]}
  assert report["status"] == "ok" and report["videos_per_s"] > 0
  assert prepared.load(out).counts["train"]["unreadable"] == 2


def test_ucf101_reads_back_through_load(ucf_prepared):
  out, builder_dir = ucf_prepared
  for path in (out, builder_dir, os.path.dirname(builder_dir)):
    data = prepared.load(path)
    assert data.builder_dir == builder_dir
  assert sorted(data.splits) == ["test", "train"]
  assert data.class_names == CLASSES and data.num_classes == 3 and data.frame_size == 16
  assert data.hierarchy is None and len(data.fingerprint) == 64
  assert data.metadata["source_kind"] == "ucf101"
  info = tfds.builder_from_directory(builder_dir).info  # The metadata round-trips through TFDS.
  assert info.metadata["fingerprint"] == data.fingerprint
  assert info.metadata["class_names"] == list(CLASSES) and info.metadata["frame_size"] == 16
  assert sorted(data.metadata["source_checksums"]) == [
      "ucfTrainTestlist/classInd.txt", "ucfTrainTestlist/testlist01.txt",
      "ucfTrainTestlist/trainlist01.txt"]
  records = {r["video_id"].decode(): r for r in data.source("test")}
  assert sorted(records) == ["v_ApplyEyeMakeup_g01_c01", "v_Basketball_g01_c01"]
  train = {r["video_id"].decode(): r for r in data.source("train")}
  assert sorted(train) == ["v_ApplyEyeMakeup_g03_c01", "v_Basketball_g02_c01",
                           "v_HandStandPushups_g02_c01", "v_HandStandPushups_g03_c01"]
  index = data.index("train")  # The records without their frames, in stored order.
  assert index == [builders.index_entry(r) for r in data.source("train")]
  assert index[0] == {"video_id": "v_ApplyEyeMakeup_g03_c01", "labels": [0], "segment": 0,
                      "num_segments": 1, "num_frames": 20, "fps": 15.0}
  for vid, r in train.items():
    g = int(vid.split("_g")[1][:2])
    label = [c.lower() for c in CLASSES].index(vid.split("_")[1].lower())
    w, h, fps, n = SHAPES[g]
    assert r["labels"].tolist() == [label]
    assert (r["segment"], r["num_segments"]) == (0, 1)
    assert r["fps"] == pytest.approx(fps)
    frames = np.stack([video_io.decode_jpeg(f) for f in r["frames"]])
    assert frames.shape == (n, 16, 16, 3)
    expected = 10 + 12 * np.arange(n)
    np.testing.assert_allclose(frames.mean(axis=(1, 2, 3)), expected, atol=TOL)


def test_rerun_resumes_or_refuses(ucf_root, ucf_prepared, capsys):
  out, builder_dir = ucf_prepared
  info = os.path.join(builder_dir, builders.INFO_FILE)
  mtime = os.path.getmtime(info)
  assert prepare.prepare("ucf101", ucf_root / "UCF-101", out, split=1, frame_size=16) == builder_dir
  assert os.path.getmtime(info) == mtime
  assert "Already prepared" in capsys.readouterr().out
  with pytest.raises(ValueError, match=r"different source or settings \(settings.frame_size: "
                     r"16 -> 24\)"):
    prepare.prepare("ucf101", ucf_root, out, split=1, frame_size=24)
  with pytest.raises(ValueError, match="already holds a different prepared data set"):
    prepare.prepare("folder", ucf_root / "UCF-101", out, frame_size=16)
  assert prepared.find_builder_dirs(out) == [builder_dir]


def test_rerun_refuses_a_changed_list_or_an_added_video(ucf_root, ucf_prepared, tmp_path):
  out, builder_dir = ucf_prepared
  root = tmp_path / "moved"
  shutil.copytree(ucf_root, root)  # Same files elsewhere: the same data set.
  assert prepare.prepare("ucf101", root, out, split=1, frame_size=16) == builder_dir
  video_io.write_video(root / "UCF-101" / "HandstandPushups" / "v_HandstandPushups_g01_c01.avi",
                       ramp(4, 16, 16), fps=25)  # The listed, missing video turns up.
  with pytest.raises(ValueError, match=r"different source or settings \(listed videos"):
    prepare.prepare("ucf101", root, out, split=1, frame_size=16)
  os.remove(root / "UCF-101" / "HandstandPushups" / "v_HandstandPushups_g01_c01.avi")
  with open(root / "ucfTrainTestlist" / "testlist01.txt", "ab") as f:
    f.write(b"\r\n")  # Same videos, another file: refused too.
  with pytest.raises(ValueError, match=r"source_checksums.ucfTrainTestlist/testlist01.txt: '"):
    prepare.prepare("ucf101", root, out, split=1, frame_size=16)


def test_ucf101_splits_share_an_output_each_with_its_report(ucf_root, tmp_path):
  dirs = [prepare.prepare("ucf101", ucf_root, tmp_path, split=k, frame_size=8) for k in (1, 2)]
  assert prepared.find_builder_dirs(tmp_path) == dirs
  for k, d in zip((1, 2), dirs):
    assert prepare.report_path(d) == str(tmp_path / "ucf101_clips" / f"split{k}" /
                                         prepare.REPORT_FILE)
    with open(prepare.report_path(d)) as f:
      assert json.load(f)["config"] == f"split{k}"


def test_failed_run_leaves_nothing_complete(tmp_path):
  for name in ("a.mp4", "b.avi"):
    os.makedirs(tmp_path / "src" / "cls", exist_ok=True)
    (tmp_path / "src" / "cls" / name).write_bytes(b"not a video")
  with pytest.raises(ValueError, match="split train: none of its 2 videos could be read"):
    prepare.prepare("folder", tmp_path / "src", tmp_path / "out", frame_size=16)
  assert prepared.find_builder_dirs(tmp_path / "out") == []
  leftovers = [d for _, dirs, _ in os.walk(tmp_path / "out") for d in dirs if "incomplete" in d]
  assert leftovers == []
  with open(tmp_path / "out" / "folder_clips" / prepare.REPORT_FILE) as f:
    report = json.load(f)
  assert report["status"] == "failed" and report["splits"]["train"]["unreadable"] == 2
  with pytest.raises(FileNotFoundError, match="no prepared data set"):
    prepared.load(tmp_path / "out")
  with pytest.raises(ValueError, match="inside the source folder"):
    prepare.prepare("folder", tmp_path / "src", tmp_path / "src" / "prepared", frame_size=16)


def test_a_dead_or_hung_worker_costs_only_its_task():
  tasks = ["1", "__import__('os')._exit(3)", "2", "1 / 0", "__import__('time').sleep(60)", "3"]
  results = list(encode.run_isolated(eval, tasks, workers=2, timeout=2))
  assert results[:4] == [1, results[1], 2, "ZeroDivisionError: division by zero"]
  assert results[1].startswith("worker died") and results[4].startswith("timed out after 2 s")
  assert results[5] == 3


def test_segment_windows():
  assert encode.segment_windows(5, 6, 3) == [range(0, 5)]
  # Up to max_segments x segment_frames: the whole video, contiguous, no overlap.
  assert encode.segment_windows(301, 300, 10) == [range(0, 151), range(151, 301)]
  assert encode.segment_windows(1000, 300, 10) == [
      range(0, 250), range(250, 500), range(500, 750), range(750, 1000)]
  assert encode.segment_windows(18, 6, 3) == [range(0, 6), range(6, 12), range(12, 18)]
  # Longer: max_segments windows, evenly spaced from the first frame to the last.
  assert encode.segment_windows(20, 6, 3) == [range(0, 6), range(7, 13), range(14, 20)]
  windows = encode.segment_windows(9600, 300, 10)
  assert [w.start for w in windows][-2:] == [8267, 9300] and windows[-1].stop == 9600


def test_probe_reads_headers_and_decode_frames_converts_only_wanted_frames(tmp_path):
  for ext in ("mp4", "mkv", "avi"):  # mkv stores no frame count: estimated from its duration.
    path = tmp_path / f"r.{ext}"
    video_io.write_video(path, ramp(9, 16, 16), fps=15)
    assert video_io.probe(path) == (9, 15.0) and video_io.video_fps(path) == 15
    got = list(video_io.decode_frames(path, {1, 4, 20}))
    assert [i for i, _ in got] == [1, 4]
    np.testing.assert_allclose([f.mean() for _, f in got], [22, 58], atol=TOL)
  (tmp_path / "bad.mp4").write_bytes(b"not a video")
  with pytest.raises(video_io.VideoDecodeError, match="bad.mp4: InvalidDataError"):
    video_io.probe(tmp_path / "bad.mp4")


def test_settings_types_are_normalised():
  assert builders.Settings(fps=10) == builders.Settings(fps=10.0)
  a, b = (dataclasses.asdict(builders.Settings(frame_size=n, fps=f))
          for n, f in ((16, 10), (16.0, np.float32(10))))
  assert json.dumps(a) == json.dumps(b) and type(a["fps"]) is float  # One fingerprint.
  with pytest.raises(ValueError, match="frame_size must be an integer"):
    builders.Settings(frame_size=16.5)


def test_long_video_segments_and_fps_resampling(tmp_path, monkeypatch):
  src = tmp_path / "src"
  os.makedirs(src / "ramp")
  video_io.write_video(src / "ramp" / "long.mp4", ramp(20, 24, 32), fps=20)
  video_io.write_video(src / "ramp" / "short.avi", ramp(5, 32, 24), fps=20)
  # TFDS's shuffler would spill to disk through TensorFlow past this; our writer never uses it.
  monkeypatch.setattr(shuffle, "MAX_MEM_BUFFER_SIZE", 100)
  monkeypatch.setattr(builders, "SHARD_BYTES", 1000)  # A shard per record.
  data = prepared.load(prepare.prepare("folder", src, tmp_path / "out", frame_size=8,
                                       segment_frames=6, max_segments=3))
  info = tfds.builder_from_directory(data.builder_dir).info
  assert info.splits["train"].shard_lengths == [1, 1, 1, 1]
  records = [data.source("train")[i] for i in range(len(data.source("train")))]
  assert data.index("train") == [builders.index_entry(r) for r in records]
  got = [(r["video_id"].decode(), int(r["segment"]), int(r["num_segments"]),
          [int(round(video_io.decode_jpeg(f).mean())) for f in r["frames"]]) for r in records]
  assert [g[:3] for g in got] == [("ramp/long", 0, 3), ("ramp/long", 1, 3), ("ramp/long", 2, 3),
                                  ("ramp/short", 0, 1)]
  assert [len(g[3]) for g in got] == [6, 6, 6, 5]
  for (_, _, _, means), first in zip(got, (0, 7, 14, 0)):
    np.testing.assert_allclose(means, 10 + 12 * np.arange(first, first + len(means)), atol=TOL)
  # Resampled to 10 fps: every other frame, 10 frames kept whole in 2 segments of at most 6.
  data = prepared.load(prepare.prepare("folder", src, tmp_path / "out10", frame_size=8,
                                       segment_frames=6, max_segments=3, fps=10, workers=2))
  records = [data.source("train")[i] for i in range(len(data.source("train")))]
  assert [(int(r["segment"]), len(r["frames"])) for r in records] == [(0, 5), (1, 5), (0, 3)]
  assert all(r["fps"] == 10 for r in records)
  long_means = [video_io.decode_jpeg(f).mean() for r in records[:2] for f in r["frames"]]
  np.testing.assert_allclose(long_means, 10 + 12 * np.arange(0, 20, 2), atol=TOL)


def test_csv_multilabel_hierarchy_round_trip(tmp_path):
  os.makedirs(tmp_path / "v")
  video_io.write_video(tmp_path / "v" / "x.mp4", ramp(6, 32, 24), fps=25)
  video_io.write_video(tmp_path / "v" / "y.mkv", ramp(7, 20, 30), fps=12)
  with open(tmp_path / "list.csv", "w") as f:
    f.write("path,label,split\nv/x.mp4,dog;bird\nv/y.mkv,cat,test\nv/gone.mp4,cat,test\n")
  hierarchy = {"names": ["bird", "cat", "dog", "mammal", "animal"],
               "parents": [4, 3, 3, 4, -1], "num_leaves": 3}
  with open(tmp_path / "hierarchy.json", "w") as f:
    json.dump(hierarchy, f)
  data = prepared.load(prepare.prepare("csv", tmp_path / "list.csv", tmp_path / "out",
                                       frame_size=8))
  assert data.hierarchy == hierarchy and data.class_names == ("bird", "cat", "dog")
  assert data.counts["test"] == {**data.counts["test"], "listed": 2, "written": 1, "missing": 1}
  (x,), (y,) = data.source("train"), data.source("test")
  assert (x["video_id"], x["labels"].tolist(), len(x["frames"])) == (b"v/x", [2, 0], 6)
  assert (y["video_id"], y["labels"].tolist(), len(y["frames"])) == (b"v/y", [1], 7)
  assert y["fps"] == 12


def test_sports1m_attrition(tmp_path):
  out, tmp_path = tmp_path / "out", tmp_path / "src"
  os.makedirs(tmp_path)
  ids = ["vid00000010", "vid00000011", "vid00000012", "vid00000018", "vid00000019"]
  with open(tmp_path / "train_partition.txt", "w") as f:
    f.write("".join(f"https://www.youtube.com/watch?v={v} {n},{n + 100}\n"
                    for n, v in enumerate(ids[:3])))
  with open(tmp_path / "test_partition.txt", "w") as f:
    f.write("".join(f"https://www.youtube.com/watch?v={v} 486\n" for v in ids[3:]))
  os.makedirs(tmp_path / "dl" / "x")
  video_io.write_video(tmp_path / "dl" / "x" / f"{ids[0]}.mp4", ramp(4, 32, 24), fps=25)
  video_io.write_video(tmp_path / "dl" / f"{ids[3]}.mkv", ramp(4, 32, 24), fps=25)
  with pytest.raises(ValueError, match="inside the source folder"):  # Shards would be scanned.
    prepare.prepare("sports1m", tmp_path, tmp_path / "out", frame_size=8)
  data = prepared.load(prepare.prepare("sports1m", tmp_path, out, frame_size=8))
  counts = {s: (c["listed"], c["written"], c["missing"], c["unreadable"])
            for s, c in data.counts.items()}
  assert counts == {"train": (2, 1, 1, 0), "val": (1, 0, 1, 0), "test": (2, 1, 1, 0)}
  assert sorted(data.splits) == ["test", "train"] and data.num_classes == 487
  assert data.source("train")[0]["labels"].tolist() == [0, 100]


@pytest.mark.parametrize("kwargs,error", [
    (dict(dataset="kinetics"), "dataset must be one of"),
    (dict(dataset="folder", split=2), "split=2 only applies to ucf101"),
    (dict(dataset="folder", frame_size=0), "frame_size must be >= 1"),
    (dict(dataset="folder", runner="spark"), "runner must be one of"),
    (dict(dataset="folder", beam_options="--runner=DirectRunner"), "only apply to runner='beam'"),
])
def test_bad_arguments(tmp_path, kwargs, error):
  kwargs = {"source": tmp_path, "output": tmp_path / "out", **kwargs}
  with pytest.raises(ValueError, match=error):
    prepare.prepare(kwargs.pop("dataset"), kwargs.pop("source"), kwargs.pop("output"), **kwargs)


def test_beam_runner_without_beam_says_what_to_install(tmp_path, monkeypatch):
  import stcnn.data  # pylint: disable=import-outside-toplevel
  monkeypatch.setitem(sys.modules, "apache_beam", None)  # `import apache_beam` raises ImportError
  monkeypatch.delitem(sys.modules, "stcnn.data.prepare_beam", raising=False)
  monkeypatch.delattr(stcnn.data, "prepare_beam", raising=False)
  write_videos(tmp_path / "src", {"dog/a.mp4": "empty"})
  with pytest.raises(ImportError, match=r"pip install -e '\.\[beam\]'"):
    prepare.prepare("folder", tmp_path / "src", tmp_path / "out", runner="beam")


def test_public_tfds_ucf101_adapter(tmp_path):
  pytest.importorskip("tensorflow")
  with tfds.testing.mock_data(num_examples=3):
    data = prepared.load_public_tfds("ucf101", tmp_path, 1, frame_size=16)
    record = data.source("train")[0]
  assert data.num_classes == 101 and record["labels"].shape == (1,)
  assert video_io.decode_jpeg(record["frames"][0]).shape == (16, 16, 3)


def test_public_tfds_records_are_adapted_to_the_contract():
  video = ramp(3, 32, 24)
  adapter = prepared._PublicUcf101Source  # pylint: disable=protected-access
  source = adapter([{"video": video, "label": 5}], "test", 16)
  record = source[0]
  assert len(source) == 1 and record["video_id"] == b"test_000000"
  assert record["labels"].tolist() == [5] and (record["segment"], record["num_segments"]) == (0, 1)
  frames = np.stack([video_io.decode_jpeg(f) for f in record["frames"]])
  assert frames.shape == (3, 16, 16, 3)
  np.testing.assert_allclose(frames.mean(axis=(1, 2, 3)), [10, 22, 34], atol=TOL)


def test_public_tfds_without_tensorflow_says_what_to_install():
  try:
    import tensorflow  # pylint: disable=g-import-not-at-top,unused-import  # noqa: F401
    pytest.skip("tensorflow is installed")
  except ImportError:
    pass
  with pytest.raises(ImportError, match="pip install tensorflow-cpu"):
    prepared.load_public_tfds("ucf101", "/nonexistent", 1)


def test_folder_with_a_symlink_loop_counts_and_names_it(tmp_path):
  os.makedirs(tmp_path / "src" / "dog")
  video_io.write_video(tmp_path / "src" / "dog" / "a.mp4", ramp(6, 32, 24), fps=25)
  os.symlink("loop.mp4", tmp_path / "src" / "dog" / "loop.mp4")  # points at itself: ELOOP
  data = prepared.load(prepare.prepare("folder", tmp_path / "src", tmp_path / "out",
                                       frame_size=8))
  assert data.counts["train"] == {**data.counts["train"], "listed": 2, "written": 1,
                                  "unreadable": 1}
  with open(prepare.report_path(data.builder_dir)) as f:
    report = json.load(f)
  assert "loop.mp4" in json.dumps(report) and "symbolic links" in json.dumps(report)


def test_empty_class_folder_is_refused_by_name(tmp_path):
  os.makedirs(tmp_path / "src" / "dog")
  os.makedirs(tmp_path / "src" / "cat")
  video_io.write_video(tmp_path / "src" / "dog" / "a.mp4", ramp(6, 32, 24), fps=25)
  with pytest.raises(ValueError, match=r"class folder 'cat' holds no video files"):
    prepare.prepare("folder", tmp_path / "src", tmp_path / "out", frame_size=8)


@pytest.mark.parametrize("rotation, corner", [(0, (0, 0)), (90, (-1, 0)), (-90, (0, -1)),
                                              (180, (-1, -1))])
def test_rotation_metadata_is_honoured(tmp_path, rotation, corner):
  """A video stored landscape with a display rotation (a phone's portrait video) decodes as a
  player shows it: the stored top-left corner turns with the frame."""
  frames = np.zeros((3, 48, 64, 3), np.uint8)
  frames[:, :16, :16] = 255  # the stored top-left corner
  path = str(tmp_path / f"r{rotation}.mp4")
  video_io.write_video(path, frames, codec="libx264", rotation=rotation)
  decoded = video_io.read_video(path)
  assert decoded.shape == ((3, 48, 64, 3) if rotation in (0, 180) else (3, 64, 48, 3))
  r, c = corner
  h, w = decoded.shape[1:3]
  block = decoded[0, (h - 16 if r else 0):(h if r else 16), (w - 16 if c else 0):(w if c else 16)]
  assert block.mean() > 200 and decoded[0].mean() < 60
