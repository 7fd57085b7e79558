"""metrics.jsonl stays one parseable row a line, one row per (step, split), across crashes."""
import json

from stcnn import writers


def _rows(workdir):
  with open(workdir / "metrics.jsonl") as f:
    return [json.loads(line) for line in f]


def test_a_half_written_last_row_is_dropped(tmp_path):
  w = writers.MetricWriter(str(tmp_path))
  w.write(5, "train", {"loss": 1.5})
  w.close()
  with open(tmp_path / "metrics.jsonl", "a") as f:
    f.write('{"step": 10, "split": "tra')  # a crash mid-write
  w = writers.MetricWriter(str(tmp_path))
  w.write(10, "train", {"loss": 1.25})
  w.close()
  assert [(r["step"], r["loss"]) for r in _rows(tmp_path)] == [(5, 1.5), (10, 1.25)]


def test_resume_drops_the_rows_after_the_checkpoint(tmp_path):
  w = writers.MetricWriter(str(tmp_path), resume_step=0)
  for step in (5, 10, 15):
    w.write(step, "train", {"loss": 3.0 - step / 10})
  w.write(10, "val", {"video_hit@1": 0.5})
  w.close()  # then a crash at step 17; the last checkpoint is step 10
  w = writers.MetricWriter(str(tmp_path), resume_step=10)
  w.write(15, "train", {"loss": 1.75})
  w.close()
  rows = _rows(tmp_path)
  keys = [(r["step"], r["split"]) for r in rows]
  assert keys == [(5, "train"), (10, "train"), (10, "val"), (15, "train")]
  assert len(set(keys)) == len(keys) and rows[-1]["loss"] == 1.75


def test_nothing_is_rewritten_when_nothing_is_wrong(tmp_path):
  w = writers.MetricWriter(str(tmp_path))
  w.write(1, "train", {"loss": 1.0})
  w.close()
  before = (tmp_path / "metrics.jsonl").stat().st_ino
  writers.repair_metrics(str(tmp_path), resume_step=1)
  assert (tmp_path / "metrics.jsonl").stat().st_ino == before
