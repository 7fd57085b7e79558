"""The evaluate CLI's guards: the data it trained on, the flag, results of other protocols; where
the evaluator's input is read."""
import json
import multiprocessing
import subprocess
import sys
import types

import pytest

from stcnn import evaluate, parallel
from stcnn.data import datasets
from tests.helpers import ROOT, tiny_config


def test_another_data_set_is_refused(tmp_path):
  (tmp_path / "data_fingerprint.txt").write_text("a" * 64 + "\n")
  same = types.SimpleNamespace(fingerprint="a" * 64, builder_dir="/d")
  evaluate.check_same_data(str(tmp_path), same)
  other = types.SimpleNamespace(fingerprint="b" * 64, builder_dir="/elsewhere")
  with pytest.raises(ValueError, match=r"trained on data set aaaaaaaaaaaa.*/elsewhere"):
    evaluate.check_same_data(str(tmp_path), other)


def test_bad_checkpoint_flag_is_named():
  r = subprocess.run([sys.executable, "-m", "stcnn.evaluate", "--workdir=/nonexistent",
                      "--checkpoint=abc"], cwd=ROOT, capture_output=True, text=True)
  assert r.returncode != 0
  assert "--checkpoint must be best, latest or a step number" in r.stderr
  assert "Traceback" not in r.stderr


def test_a_result_of_another_protocol_gets_its_own_file(tmp_path):
  protocol = {"clips_per_video": 20, "views": 4, "num_videos": 3, "data_fingerprint": "f"}
  first = evaluate.save_result(str(tmp_path), "test", 7, {"video_hit@1": 0.5}, protocol)
  again = evaluate.save_result(str(tmp_path), "test", 7, {"video_hit@1": 0.5}, protocol)
  other = evaluate.save_result(str(tmp_path), "test", 7, {"video_hit@1": 0.4},
                               {**protocol, "clips_per_video": 5})
  assert first == again == str(tmp_path / "eval_test_7.json")
  assert other == str(tmp_path / "eval_test_7_5x4.json")
  with open(first) as f:
    assert json.load(f)["metrics"]["video_hit@1"] == 0.5


@pytest.mark.parametrize("cache_frames,workers", [(True, 0), (False, 1)])
def test_cached_frames_are_read_in_process_jpeg_by_workers(cache_dir, cache_frames, workers):
  """A pass over cached frames starts no worker process (they cost more than its crops);
  JPEG is decoded by config.data.worker_count workers. The batches are the same either way
  (tests/test_frame_cache.py)."""
  cfg = tiny_config(cache_dir, **{"data.worker_count": 1, "data.cache_frames": cache_frames})
  ev = evaluate.Evaluator(cfg, datasets.load(cfg), parallel.make_mesh(), "test", max_videos=2)
  batches = iter(ev.batches)
  next(batches)
  assert len(multiprocessing.active_children()) == workers
  batches.close()
