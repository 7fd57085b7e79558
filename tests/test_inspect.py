"""The inspect CLI's library function: statistics printed, contact sheets of the network's clips."""
import numpy as np
from PIL import Image
import pytest

from stcnn import inspect
from tests.helpers import CROP, Counting, decode, make_index, make_record

NAMES = ["zero", "one", "two", "three"]


def _source():
  # 4 videos, one of them ("b") in two segments, one multi-label ("m"), one short ("s": 4 frames).
  return [make_record("a", [0], 20), make_record("b", [1], 20, 0, 2),
          make_record("b", [1], 18, 1, 2), make_record("m", [0, 1], 20), make_record("s", [2], 4)]


def test_stats_printed(tmp_path, capsys):
  out = inspect.inspect(_source(), NAMES, num_frames=2, frame_offsets=(0, 15), crop_size=CROP,
                        out_dir=str(tmp_path), num_clips=3, index=make_index(_source()))
  lines = capsys.readouterr().out.splitlines()
  assert lines[:8] == [
      "  videos 4, segments 5 (incomplete videos 0)",
      "  segments/video min 1 / mean 1.2 / max 2",
      "  frames/video   min 4 / mean 20.5 / max 38",
      "  frames/segment min 4 / mean 16.4 / max 20   fps mean n/a",  # the index has no fps
      "  multi-label videos 25.00%",
      "  videos/class min 0 / mean 1.2 / max 2; classes without videos 1",
      "  most frequent: zero 2, one 2, two 1, three 0",
      "  segments shorter than a clip (last frame repeated) 1",  # s: 4 frames < span 16
  ]
  assert out["stats"]["short_segments"] == 1


def test_late_fusion_sheets(tmp_path, capsys):
  out = inspect.inspect(_source(), NAMES, num_frames=2, frame_offsets=(0, 15), crop_size=CROP,
                        out_dir=str(tmp_path), num_clips=3, mean=100.0)
  assert "fps mean 25.00" in capsys.readouterr().out  # scanned records have fps
  for key, rows in (("train_png", 3), ("eval_png", 4)):
    with Image.open(out[key]) as png:
      assert png.format == "PNG" and png.size == (400, 150 * rows)  # 1.5 in a row at 100 dpi
  # The clips are the network's: frames t and t + 15 (or the last), mean 100 subtracted.
  assert out["train_video"].shape == (3, 2, CROP, CROP, 3)
  assert out["eval_video"].shape == (4, 2, CROP, CROP, 3)
  for clip in np.concatenate([out["train_video"], out["eval_video"]]):
    (top, left, flip, t0), (top1, left1, flip1, t1) = (decode(f + 100 - 117) for f in clip)
    assert (top, left, flip) == (top1, left1, flip1)
    assert t1 - t0 == 15 or (t0 <= 3 and t1 == 3)  # video "s" repeats its last frame
  # Eval views: the first video's clip, centre / centre flipped / top-left / bottom-right flipped.
  assert [decode(clip[0] - 17)[:3] for clip in out["eval_video"]] == [
      (2, 2, False), (2, 2, True), (0, 0, False), (5, 5, True)]


def test_dataset_stats():
  source = [make_record("a", [1], 12), make_record("b", [0, 2], 12, 0, 2),
            make_record("c", [2], 3), make_record("b", [0, 2], 20, 1, 2)]
  stats = inspect.dataset_stats(source, num_classes=4, clip_frames=10)
  assert stats["records"] == 4 and stats["videos"] == 3
  assert stats["segments_per_video"] == (1, 4 / 3, 2)
  assert stats["frames_per_video"] == (3, 47 / 3, 32)
  np.testing.assert_array_equal(stats["videos_per_class"], [1, 1, 2, 0])
  assert stats["multi_label_fraction"] == pytest.approx(1 / 3)
  assert stats["short_segments"] == 1 and stats["incomplete_videos"] == 0
  assert stats["fps_mean"] == 25.0
  counting = Counting(source)
  from_index = inspect.dataset_stats(counting, num_classes=4, clip_frames=10,
                                      index=make_index(source))
  assert counting.reads == 0 and from_index["fps_mean"] is None  # this index has no fps
  for k in stats:
    if k != "fps_mean":
      np.testing.assert_array_equal(from_index[k], stats[k], err_msg=k)
  assert inspect.dataset_stats(source, index=make_index(source, fps=True))["fps_mean"] == 25.0
  incomplete = inspect.dataset_stats(source[:3])
  assert incomplete["incomplete_videos"] == 1 and incomplete["videos"] == 3
