"""The inspect CLI's library function: statistics printed, contact sheets of the network's clips."""
import numpy as np
from PIL import Image

from stcnn.data import inspect
from tests.test_pipeline import CROP, _decode, _index, _record

NAMES = ["zero", "one", "two", "three"]


def _source():
  # 4 videos, one of them ("b") in two segments, one multi-label ("m"), one short ("s": 4 frames).
  return [_record("a", [0], 20), _record("b", [1], 20, 0, 2), _record("b", [1], 18, 1, 2),
          _record("m", [0, 1], 20), _record("s", [2], 4)]


def test_stats_printed(tmp_path, capsys):
  out = inspect.inspect(_source(), NAMES, num_frames=2, frame_offsets=(0, 15), crop_size=CROP,
                        out_dir=str(tmp_path), num_clips=3, index=_index(_source()))
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
    (top, left, flip, t0), (top1, left1, flip1, t1) = (_decode(f + 100 - 117) for f in clip)
    assert (top, left, flip) == (top1, left1, flip1)
    assert t1 - t0 == 15 or (t0 <= 3 and t1 == 3)  # video "s" repeats its last frame
  # Eval views: the first video's clip, centre / centre flipped / top-left / bottom-right flipped.
  assert [_decode(clip[0] - 17)[:3] for clip in out["eval_video"]] == [
      (2, 2, False), (2, 2, True), (0, 0, False), (5, 5, True)]
