"""Clip sampling and the grain pipelines, on in-memory sources of small position-coded JPEG frames.

Frame t of every record has R = 8·y, G = 8·x, B = 6·t, so a decoded (mean-added) clip tells its crop
offset, flip and frame indices; record i has first label i, so labels tell which record was read.
"""
import os

import numpy as np
import pytest

from stcnn.data import pipeline
from stcnn.data import sampling
from stcnn.data import video_io

SIZE, CROP = 32, 27


def _frame(t):
  y, x = np.mgrid[0:SIZE, 0:SIZE]
  return np.stack([8 * y, 8 * x, np.full_like(y, 6 * t)], -1).astype(np.uint8)


_JPEGS = [video_io.encode_jpeg(_frame(t), quality=95) for t in range(40)]


def _record(vid, labels, num_frames, segment=0, num_segments=1):
  return {"video_id": vid.encode(), "labels": np.asarray(labels, np.int64),
          "frames": _JPEGS[:num_frames], "segment": segment, "num_segments": num_segments,
          "fps": np.float32(25)}


def _source(n=8, num_frames=12):
  return [_record(f"v{i}", [i], num_frames + i % 3) for i in range(n)]


def _decode(frame):
  """(top, left, flip, t) of one mean-subtracted frame of the test source."""
  f = frame.astype(np.float64) + 117
  c = f.shape[0]
  top = int(round(np.mean(f[..., 0].mean(1) / 8 - np.arange(c))))
  cols = f[..., 1].mean(0)
  flip = bool(cols[0] > cols[-1])
  left = int(round(np.mean(np.sort(cols) / 8 - np.arange(c))))
  return top, left, flip, int(round(f[..., 2].mean() / 6))


def _train(source, **kw):
  args = dict(num_frames=3, crop_size=CROP, num_classes=len(source), global_batch_size=4, seed=0)
  args.update(kw)
  return pipeline.train_iterator(source, **args)


def _take(it, n):
  return [next(it) for _ in range(n)]


def _assert_same(batches_a, batches_b):
  assert len(batches_a) == len(batches_b)
  for a, b in zip(batches_a, batches_b):
    assert a.keys() == b.keys()
    for k in a:
      np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_sampling_indices_and_eval_starts():
  idx, padded = sampling.clip_frame_indices(3, 0, range(5))
  np.testing.assert_array_equal(idx, [0, 1, 2, 2, 2])
  assert padded == 2
  idx, padded = sampling.clip_frame_indices(20, 4, (0, 15))
  np.testing.assert_array_equal(idx, [4, 19])
  assert padded == 0
  assert sampling.eval_clip_starts([100], 1, 10) == [(0, 45)]
  assert sampling.eval_clip_starts([30, 30], 3, 10) == [(0, 5), (0, 15), (1, 10)]
  assert sampling.eval_clip_starts([10] * 4, 2, 1) == [(0, 5), (2, 5)]
  assert sampling.eval_clip_starts([4], 3, 10) == [(0, 0)] * 3
  with pytest.raises(ValueError, match="increasing"):
    sampling.frame_offsets(2, (15, 0))


def test_train_batch_format_and_soft_target():
  source = _source(4)
  source[2] = _record("v2", [2, 0], 12)  # Multi-label: first label 2, target 1/2 on 0 and 2.
  batch = next(_train(source, num_frames=3, global_batch_size=8, process_count=2))
  assert batch["video"].shape == (4, 3, CROP, CROP, 3) and batch["video"].dtype == np.float32
  assert batch["label"].dtype == np.int32 and batch["label"].shape == (4,)
  assert batch["target"].dtype == np.float32 and batch["target"].shape == (4, 4)
  assert -117 <= batch["video"].min() and batch["video"].max() <= 138
  assert 0 > batch["video"].min()  # mean subtracted
  for label, target in zip(batch["label"], batch["target"]):
    expected = np.zeros(4, np.float32)
    expected[[0, 2] if label == 2 else [label]] = 0.5 if label == 2 else 1.0
    np.testing.assert_array_equal(target, expected)
  with pytest.raises(ValueError, match="global_batch_size=6.*process_count=4"):
    _train(source, global_batch_size=6, process_count=4)
  with pytest.raises(ValueError, match="v0"):
    next(_train([_record("v0", [7], 5)], num_classes=3))


def test_every_frame_of_a_clip_shares_crop_and_flip():
  source = _source(8, num_frames=12)
  seen = set()
  for batch in _take(_train(source, num_frames=4, global_batch_size=8), 6):
    for clip in batch["video"]:
      decoded = [_decode(frame) for frame in clip]
      top, left, flip, t0 = decoded[0]
      assert [d[:3] for d in decoded] == [(top, left, flip)] * 4
      assert [d[3] for d in decoded] == list(range(t0, t0 + 4))  # consecutive frames
      assert 0 <= top <= SIZE - CROP and 0 <= left <= SIZE - CROP
      seen.add((top, left, flip, t0))
  assert {s[2] for s in seen} == {False, True}
  assert len({s[:2] for s in seen}) > 5 and len({s[3] for s in seen}) > 4


def test_short_segment_repeats_last_frame():
  batch = next(_train([_record("short", [0], 2)], num_frames=4, num_classes=1))
  for clip in batch["video"]:
    assert [_decode(f)[3] for f in clip] == [0, 1, 1, 1]
  late = next(_train(_source(2, 20), num_frames=2, frame_offsets=(0, 15), num_classes=2))
  for clip in late["video"]:
    t0, t1 = _decode(clip[0])[3], _decode(clip[1])[3]
    assert t1 - t0 == 15


def test_seed_order_process_slices_and_epochs():
  source = _source(8)
  ref = _take(_train(source, seed=3), 6)  # 24 examples = 3 epochs of 8 records.
  _assert_same(ref, _take(_train(source, seed=3), 6))
  other = _take(_train(source, seed=4), 6)
  assert not all(np.array_equal(a["video"], b["video"]) for a, b in zip(ref, other))
  # Each epoch reads every record once, in a different order each epoch.
  labels = np.concatenate([b["label"] for b in ref]).reshape(3, 8)
  for epoch in labels:
    assert sorted(epoch) == list(range(8))
  assert len({tuple(e) for e in labels}) == 3
  # Process p of 2 holds [2p, 2p+2) of every global batch of 4.
  halves = [_take(_train(source, seed=3, process_index=p, process_count=2), 6) for p in (0, 1)]
  for full, h0, h1 in zip(ref, *halves):
    for k in full:
      np.testing.assert_array_equal(np.concatenate([h0[k], h1[k]]), full[k])


@pytest.mark.parametrize("skip", [1, 3])  # batch 2 holds the last and first records of epochs 0/1.
def test_restore_mid_epoch_and_across_epochs(skip):
  source = _source(6)
  ref = _take(_train(source, seed=1), skip + 3)
  it = _train(source, seed=1)
  _take(it, skip)
  state = it.get_state()
  resumed = _train(source, seed=1)
  resumed.set_state(state)
  _assert_same(ref[skip:], _take(resumed, 3))
  _assert_same(ref[skip:], _take(_train(source, seed=1, start_step=skip), 3))


def test_multiprocess_workers_same_batches_and_restore():
  source = _source(6)
  ref = _take(_train(source, seed=5), 5)
  it = _train(source, seed=5, worker_count=2)
  try:
    got = _take(it, 2)
    state = it.get_state()
  finally:
    it.close()
  _assert_same(ref[:2], got)
  resumed = _train(source, seed=5, worker_count=2)
  try:
    resumed.set_state(state)
    _assert_same(ref[2:], _take(resumed, 3))
  finally:
    resumed.close()


def test_eval_batches():
  source = [_record("a", [1], 12), _record("b", [2, 0], 12, 0, 2), _record("c", [2], 3),
            _record("b", [2, 0], 20, 1, 2)]
  kw = dict(num_frames=2, crop_size=CROP, num_classes=3, clips_per_video=3, views=4,
            batch_size=8)
  full = pipeline.eval_batches(source, **kw)
  assert full.num_videos == 3 and len(full) == 5  # 36 examples in 5 batches of 8.
  assert full.plan.video_ids == ("a", "b", "c")
  np.testing.assert_array_equal(full.video_labels, [[0, 1, 0], [1, 0, 1], [0, 0, 1]])
  batches = list(full)
  _assert_same(batches, list(full))  # deterministic, re-iterable
  assert all(b["video"].shape == (8, 2, CROP, CROP, 3) for b in batches)
  mask = np.concatenate([b["mask"] for b in batches])
  index = np.concatenate([b["video_index"] for b in batches])
  np.testing.assert_array_equal(mask, np.arange(40) < 36)
  np.testing.assert_array_equal(index[:36], np.repeat([0, 1, 2], 12))
  np.testing.assert_array_equal(index[36:], -1)
  assert not batches[-1]["video"][4:].any() and not batches[-1]["target"][4:].any()
  labels = np.concatenate([b["label"] for b in batches])[:36]
  np.testing.assert_array_equal(labels, np.repeat([1, 2, 2], 12))  # first labels
  np.testing.assert_array_equal(batches[1]["target"][4], [0.5, 0, 0.5])  # example 12 = video b
  # Views of a clip: the same frames, centre / centre+flip / top-left / bottom-right+flip.
  video = np.concatenate([b["video"] for b in batches])
  decoded = [[_decode(f) for f in clip] for clip in video[:36]]
  mid = (SIZE - CROP) // 2
  for c in range(9):
    views = decoded[4 * c:4 * c + 4]
    assert [v[0][:3] for v in views] == [(mid, mid, False), (mid, mid, True), (0, 0, False),
                                         (SIZE - CROP, SIZE - CROP, True)]
    assert len({tuple(f[3] for f in v) for v in views}) == 1
  starts = [decoded[4 * c][0][3] for c in range(9)]
  assert starts == [1, 5, 9, 2, 8, 9, 0, 1, 1]  # b: 2 clips in segment 0, 1 in segment 1.
  assert [f[3] for f in decoded[32]] == [1, 2]  # video c (3 frames): its 3rd clip repeats the 2nd.
  # Process slices of every global batch.
  halves = [list(pipeline.eval_batches(source, process_index=p, process_count=2, plan=full.plan,
                                       **kw)) for p in (0, 1)]
  assert len(halves[0]) == len(halves[1]) == 5
  for whole, h0, h1 in zip(batches, *halves):
    for k in whole:
      np.testing.assert_array_equal(np.concatenate([h0[k], h1[k]]), whole[k])


def test_dataset_stats():
  source = [_record("a", [1], 12), _record("b", [0, 2], 12, 0, 2), _record("c", [2], 3),
            _record("b", [0, 2], 20, 1, 2)]
  stats = pipeline.dataset_stats(source, num_classes=4, clip_frames=10)
  assert stats["records"] == 4 and stats["videos"] == 3
  assert stats["segments_per_video"] == (1, 4 / 3, 2)
  assert stats["frames_per_video"] == (3, 47 / 3, 32)
  np.testing.assert_array_equal(stats["videos_per_class"], [1, 1, 2, 0])
  assert stats["multi_label_fraction"] == pytest.approx(1 / 3)
  assert stats["short_segments"] == 1 and stats["incomplete_videos"] == 0


def test_inspect_writes_contact_sheets(tmp_path, capsys):
  from stcnn.data import inspect  # pylint: disable=g-import-not-at-top
  source = _source(3) + [_record("m", [0, 1], 4)]
  out = inspect.inspect(source, ["zero", "one", "two", "three"], num_frames=5, crop_size=CROP,
                        out_dir=str(tmp_path), seed=0, num_clips=3)
  printed = capsys.readouterr().out
  assert "videos 4, segments 4" in printed and "multi-label videos 25.00%" in printed
  assert "last frame repeated) 1" in printed
  for key in ("train_png", "eval_png"):
    assert os.path.getsize(out[key]) > 1000
