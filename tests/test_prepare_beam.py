"""`prepare(..., runner="beam")` on the DirectRunner writes what the local runner writes.

One test per reader tree (UCF-101, folder), each with a corrupt and a missing video, segments and
several shards: the Beam run (2 worker threads; the folder tree read from and written to gs:// URIs,
mocked onto local files) against the local run of the same source: the same counts, report (but
its timings and where it lives), fingerprint, index, dataset_info.json and ArrayRecord shards, byte
for byte.
"""
import json
import os

from array_record.python import array_record_module
from etils.epath import testing as epath_testing
import pytest

from stcnn.data import builders, prepare, prepared
from tests.helpers import write_videos

pytest.importorskip("apache_beam", reason="the Beam runner is optional: pip install -e '.[beam]'")

SETTINGS = dict(frame_size=8, segment_frames=4, max_segments=3)  # videos of 5+ frames: segments
SHARD_BYTES = 3000  # several shards per split, each of a few records
OPTIONS = "--runner=DirectRunner --direct_num_workers=2 --direct_running_mode=multi_threading"
TIMINGS = ("seconds", "videos_per_s", "frames_per_s")


def _run(dataset, source, output, **kwargs):
  with pytest.MonkeyPatch.context() as m:
    m.setattr(builders, "SHARD_BYTES", SHARD_BYTES)
    return prepare.prepare(dataset, source, output, **SETTINGS, **kwargs)


def _contents(builder_dir, replace=()) -> dict:
  """What a prepared data set holds: every file's bytes, the records of each shard, the report
  and the metadata, timings left out, `replace`d (old, new) prefixes in paths."""
  out = {}
  for name in sorted(os.listdir(builder_dir)):
    with open(os.path.join(builder_dir, name), "rb") as f:
      out[name] = f.read()
    if ".array_record-" in name:
      out["records " + name] = array_record_module.ArrayRecordReader(
          os.path.join(builder_dir, name)).read_all()
  for name, path in (("metadata.json", os.path.join(builder_dir, "metadata.json")),
                     ("report", prepare.report_path(builder_dir))):
    with open(path) as f:
      text = f.read()
    for old, new in replace:
      text = text.replace(old, new)
    data = json.loads(text)
    for split in (data.get("counts") or data["splits"]).values():
      del split["seconds"]
    out[name] = {k: v for k, v in data.items() if k not in TIMINGS}
  return out


@pytest.fixture(scope="module")
def ucf_root(tmp_path_factory, write_ucf_lists):
  """A UCF-101 tree: 8 videos of 6-10 frames, one of them corrupt, and one listed but missing."""
  root = tmp_path_factory.mktemp("ucf")
  classes = ("ApplyEyeMakeup", "Basketball", "HandstandPushups")
  write_ucf_lists(root, classes)
  videos = {}
  for i, c in enumerate(classes):
    for g in (1, 2, 3):
      videos[f"UCF-101/{c}/v_{c}_g{g:02d}_c01.avi"] = (12 + 4 * g, 12, 25, 5 + i + g)
  videos["UCF-101/Basketball/v_Basketball_g03_c01.avi"] = "corrupt"
  del videos["UCF-101/HandstandPushups/v_HandstandPushups_g01_c01.avi"]
  write_videos(root, videos)
  return root


@pytest.fixture(scope="module")
def folder_root(tmp_path_factory):
  """A folder tree: train/val, 6 videos, a corrupt one and one whose file is gone (a dangling
  link: a folder is scanned, so a vanished video is listed and found unreadable)."""
  root = tmp_path_factory.mktemp("folder")
  write_videos(root, {"train/dog/a.mp4": (16, 12, 25, 9), "train/dog/b.mkv": (12, 16, 20, 5),
                      "train/cat/c.mp4": (16, 16, 25, 6), "train/cat/bad.mp4": "corrupt",
                      "train/cat/gone.mp4": "dangling", "val/dog/d.mp4": (20, 12, 30, 7),
                      "val/cat/e.avi": (16, 12, 25, 8)})
  return root


def test_ucf101_beam_equals_local(ucf_root, tmp_path):
  local = _run("ucf101", ucf_root, tmp_path / "local", split=1)
  beam = _run("ucf101", ucf_root, tmp_path / "beam", split=1, runner="beam", beam_options=OPTIONS)
  got, want = _contents(beam, [(str(tmp_path / "beam"), "OUT")]), _contents(
      local, [(str(tmp_path / "local"), "OUT")])
  assert got == want
  report = want["report"]
  assert {s: (c["listed"], c["written"], c["missing"], c["unreadable"], c["segments"])
          for s, c in report["splits"].items()} == {"train": (6, 5, 0, 1, 12),
                                                    "test": (3, 2, 1, 0, 4)}
  assert [u["video_id"] for u in report["unreadable"]["train"]] == ["v_Basketball_g03_c01"]
  assert report["missing"]["test"] == ["v_HandStandPushups_g01_c01"]
  shards = [len(v) for k, v in want.items() if k.startswith("records ucf101_clips-train")]
  assert len(shards) > 2 and max(shards) > 1
  # A record's bytes do not depend on the process: its feature map is serialised in key order.
  record = next(v for k, v in want.items() if k.startswith("records "))[0]
  keys = [bytes([len(k)]) + k for k in (b"fps", b"frames", b"labels", b"num_segments",
                                         b"segment", b"video_id")]
  assert sorted(keys, key=record.index) == keys
  data = prepared.load(beam)
  assert data.fingerprint == prepared.load(local).fingerprint
  assert data.index("train") == [builders.index_entry(r) for r in data.source("train")]


def test_folder_beam_from_and_to_gs_equals_local(folder_root, tmp_path, monkeypatch):
  local = _run("folder", folder_root, tmp_path / "local")
  # gs://bucket/... is read and written through etils.epath; mocked, it names files under cwd.
  monkeypatch.chdir(tmp_path)
  os.makedirs("gs:/bucket")
  os.symlink(folder_root, "gs:/bucket/src")
  with epath_testing.mock_epath():
    beam = _run("folder", "gs://bucket/src", "gs://bucket/out", runner="beam",
                beam_options=OPTIONS)
  assert beam == "gs://bucket/out/folder_clips/1.0.0"
  beam = str(tmp_path / "gs:" / "bucket" / "out" / "folder_clips" / "1.0.0")
  got = _contents(beam, [("gs://bucket/src", str(folder_root)), ("gs://bucket/out", "OUT")])
  want = _contents(local, [(str(tmp_path / "local"), "OUT")])
  assert got == want
  assert {s: (c["written"], c["unreadable"]) for s, c in want["report"]["splits"].items()} == {
      "train": (3, 2), "val": (2, 0)}
  assert sorted(u["video_id"] for u in want["report"]["unreadable"]["train"]) == [
      "cat/bad", "cat/gone"]
  assert sorted(os.listdir(tmp_path / "gs:" / "bucket" / "out" / "folder_clips")) == [
      "1.0.0", prepare.REPORT_FILE]  # no temporaries left
