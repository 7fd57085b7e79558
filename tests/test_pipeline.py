"""Clip sampling and the grain pipelines, on in-memory sources of small position-coded JPEG frames.

Frame t of every record has R = 8·y, G = 8·x, B = 6·t, so a decoded (mean-added) clip tells its crop
offset, flip and frame indices; record i has first label i, so labels tell which record was read.
"""
import collections
import dataclasses
import io
import os
import threading

import grain
import numpy as np
from PIL import Image
import pytest

from stcnn.data import order, pipeline, randomness, sampling, transforms, video_index, video_io
from tests.helpers import CROP, JPEGS, SIZE, Counting, decode, make_index, make_record


def _source(n=8, num_frames=12):
  return [make_record(f"v{i}", [i], num_frames + i % 3) for i in range(n)]


def _train(source, **kw):
  args = dict(num_frames=3, crop_size=CROP, num_classes=len(source), global_batch_size=4, seed=0)
  args.update(kw)
  return pipeline.train_iterator(source, **args)


def _take(it, n):
  return [next(it) for _ in range(n)]


def _cat(batches):
  return {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}


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
    sampling.clip_offsets(2, (15, 0))
  with pytest.raises(ValueError, match="num_frames must be len"):
    sampling.clip_offsets(16, (0, 15))


def test_train_clip_position_uniform_over_the_video():
  # Segments of 12, 12 and 4 frames, span 3: 10 + 10 + 2 starts, each 1/22 of [0, 1).
  draws = [sampling.train_clip_position((i + 0.5) / 22, [12, 12, 4], 3) for i in range(22)]
  assert draws == [(k, s) for k, n in ((0, 10), (1, 10), (2, 2)) for s in range(n)]
  assert sampling.train_clip_position(np.nextafter(1.0, 0.0), [12, 12, 4], 3) == (2, 1)
  assert sampling.train_clip_position(0.99, [2], 5) == (0, 0)  # shorter than the span
  rng = np.random.default_rng(0)
  counts = collections.Counter(sampling.train_clip_position(u, [12, 12, 4], 3)
                               for u in rng.random(22000))
  assert len(counts) == 22 and 800 < min(counts.values()) and max(counts.values()) < 1200


def _jpeg(image, **kw):
  buf = io.BytesIO()
  image.save(buf, format="JPEG", **kw)
  return buf.getvalue()


def test_decode_jpeg_same_pixels_as_pil():
  rng = np.random.default_rng(0)
  for h, w in [(32, 32), (17, 40), (1, 1)]:
    rgb = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    for mode, kw in [("RGB", {}), ("RGB", {"progressive": True, "subsampling": 0}), ("L", {}),
                     ("CMYK", {})]:  # CMYK: no fast path, the same result through PIL.
      data = _jpeg(rgb.convert(mode), quality=80, **kw)
      want = video_io.decode_jpeg(data)
      assert sampling.jpeg_size(data) == (None if mode == "CMYK" else (w, h))
      np.testing.assert_array_equal(sampling.decode_jpeg(data), want)
  clip = sampling.decode_clip(JPEGS, [3, 3, 5])
  assert clip.shape == (3, SIZE, SIZE, 3) and clip.dtype == np.uint8
  np.testing.assert_array_equal(clip[1], video_io.decode_jpeg(JPEGS[3]))
  with pytest.raises(OSError):
    sampling.decode_jpeg(JPEGS[0][:200])  # truncated: PIL's own error


def test_train_batch_format_and_soft_target():
  source = _source(4)
  source[2] = make_record("v2", [2, 0], 12)  # Multi-label: first label 2, target 1/2 on 0 and 2.
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
    next(_train([make_record("v0", [7], 5)], num_classes=3))


def test_every_frame_of_a_clip_shares_crop_and_flip():
  source = _source(8, num_frames=12)
  seen = set()
  for batch in _take(_train(source, num_frames=4, global_batch_size=8), 6):
    for clip in batch["video"]:
      decoded = [decode(frame) for frame in clip]
      top, left, flip, t0 = decoded[0]
      assert [d[:3] for d in decoded] == [(top, left, flip)] * 4
      assert [d[3] for d in decoded] == list(range(t0, t0 + 4))  # consecutive frames
      assert 0 <= top <= SIZE - CROP and 0 <= left <= SIZE - CROP
      seen.add((top, left, flip, t0))
  assert {s[2] for s in seen} == {False, True}
  assert len({s[:2] for s in seen}) > 5 and len({s[3] for s in seen}) > 4


def test_short_segment_repeats_last_frame():
  batch = next(_train([make_record("short", [0], 2)], num_frames=4, num_classes=1))
  for clip in batch["video"]:
    assert [decode(f)[3] for f in clip] == [0, 1, 1, 1]
  late = next(_train(_source(2, 20), num_frames=2, frame_offsets=(0, 15), num_classes=2))
  for clip in late["video"]:
    t0, t1 = decode(clip[0])[3], decode(clip[1])[3]
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


def test_batches_made_by_the_consuming_thread_are_the_same_and_restore():
  """read_threads=0 (the `cpu` configs' setting): the same batches, and a state that an iterator
  with reader threads resumes from, and the other way round."""
  source = _source(6)
  ref = _take(_train(source, seed=5), 5)
  it = _train(source, seed=5, read_threads=0)
  _assert_same(ref[:2], _take(it, 2))
  threaded = _train(source, seed=5, read_threads=2)
  threaded.set_state(it.get_state())
  _assert_same(ref[2:4], _take(threaded, 2))
  back = _train(source, seed=5, read_threads=0)
  back.set_state(threaded.get_state())
  _assert_same(ref[4:], _take(back, 1))


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
  # Evaluation: worker processes send uint8 batches; padding still comes back 0.
  kw = dict(num_frames=2, crop_size=CROP, num_classes=6, clips_per_video=3, views=2,
            batch_size=8)
  in_process = list(pipeline.eval_batches(source, **kw))
  _assert_same(in_process, list(pipeline.eval_batches(source, worker_count=1, **kw)))
  assert not in_process[-1]["video"][4:].any()  # 36 examples: the last batch has 4 of padding


def test_example_depends_only_on_seed_and_global_index():
  """Step s of batch size b holds examples [s·b, (s+1)·b): 4 batches of 4 = 2 batches of 8."""
  source = _source(6)
  fours = _take(_train(source, seed=2, global_batch_size=4), 4)
  eights = _take(_train(source, seed=2, global_batch_size=8), 2)
  _assert_same([_cat(fours)], [_cat(eights)])


def test_example_draws_follow_the_contract():
  """Example g: row g mod 64 of default_rng([seed, 2, g // 64]).random((64, 4)) gives the clip
  position, top, left and flip (floor(u · n) over each choice's n); across the block boundary."""
  source = [make_record("only", [0], 12)]
  got = _cat(_take(_train(source, num_frames=3, num_classes=1, seed=9), 20))["video"]
  rows = np.concatenate([np.random.default_rng([9, 2, k]).random((64, 4)) for k in (0, 1)])
  n = SIZE - CROP + 1
  for g, clip in enumerate(got):
    start, top, left = (int(u * m) for u, m in zip(rows[g], (12 - 3 + 1, n, n)))
    flip = bool(rows[g, 3] < 0.5)
    assert [decode(f) for f in clip] == [(top, left, flip, start + t) for t in range(3)]
  assert len(got) == 80
  seed_seq = lambda *e: tuple(np.random.SeedSequence(list(e)).generate_state(4))
  assert pipeline.randomness.shuffle_seed(9) == seed_seq(9, 1)[0]
  assert seed_seq(9, 1) not in {seed_seq(9, 2, k) for k in range(1 << 16)}  # distinct streams


def test_example_uniforms_are_a_function_of_the_example_alone():
  whole = randomness.example_uniforms(3, 0, 200)
  assert whole.shape == (200, 4) and 0 <= whole.min() and whole.max() < 1
  for first, count in ((0, 1), (60, 8), (63, 66), (130, 70)):
    np.testing.assert_array_equal(randomness.example_uniforms(3, first, count),
                                  whole[first:first + count])
  assert not np.array_equal(randomness.example_uniforms(4, 0, 8), whole[:8])
  assert randomness.uniform_index(0.0, 5) == 0 and randomness.uniform_index(0.999, 5) == 4
  assert randomness.uniform_index(np.nextafter(1.0, 0.0), 7) == 6
  with pytest.raises(ValueError, match="seed must be an integer >= 0"):
    randomness.example_uniforms(-1, 0, 4)


def _contract_batches(source, *, seed, steps, b, num_frames, offsets=None, num_classes):
  """The randomness contract written out example by example, with grain's own shuffle (the
  pipeline's first formulation: `map_with_index` of one example, then `batch`)."""
  offsets = sampling.clip_offsets(num_frames, offsets)
  table = video_index.video_table(source)
  videos = grain.MapDataset.range(table.num_videos).shuffle(
      seed=randomness.shuffle_seed(seed)).repeat()
  batches = []
  for step in range(steps):
    video, label, target = [], [], []
    for g in range(step * b, (step + 1) * b):
      v = videos[g]
      u = randomness.example_uniforms(seed, g, 1)[0]
      lo, hi = table.starts[v], table.starts[v + 1]
      k, start = sampling.train_clip_position(u[0], table.frames[lo:hi], max(offsets) + 1)
      record = source[int(table.records[lo + k])]
      clip = sampling.read_clip(record, start, offsets)
      top, left, flip = transforms.crop_flip_params(u[1:], clip.shape[1], clip.shape[2], CROP)
      video.append(transforms.crop_flip(clip, top, left, CROP, flip))
      label.append(record["labels"][0])
      target.append(pipeline.soft_target(record["labels"], num_classes))
    batches.append({"video": transforms.normalize(np.stack(video)),
                    "label": np.array(label, np.int32), "target": np.stack(target)})
  return batches


@pytest.mark.parametrize("decoded", [False, True])
@pytest.mark.parametrize("num_frames,offsets", [(3, None), (2, (0, 5))])
def test_batches_equal_the_contract_example_by_example(decoded, num_frames, offsets):
  """Which video, segment, frames, crop and flip every example gets: the batch-level pipeline equals
  the contract computed one example at a time, over 3+ epochs, from JPEG and decoded frames."""
  long = [make_record("long", [0, 3], 9, k, 3, first=9 * k) for k in range(3)]
  source = long[:1] + _source(5) + long[1:] + [make_record("short", [4], 2)]
  if decoded:  # as frame_cache gives them
    source = [{**r, "frames": np.stack([sampling.decode_frame(f) for f in r["frames"]])}
              for r in source]
  got = _take(_train(source, num_frames=num_frames, frame_offsets=offsets, num_classes=5,
                     global_batch_size=4, seed=11), 6)
  _assert_same(_contract_batches(source, seed=11, steps=6, b=4, num_frames=num_frames,
                                 offsets=offsets, num_classes=5), got)


@pytest.mark.parametrize("num_videos,seed", [(1, 0), (2, 7), (7, 3), (960, 12345),
                                             (70_001, 2**32 - 1), (65_537, 5)])
def test_epoch_order_is_grains_shuffle(num_videos, seed):
  """`order.epoch_order` = grain's `range(V).shuffle(seed).repeat()`, epoch by epoch (a sample of
  positions for the big sets: grain takes ~50 µs an index), even where grain's is no permutation
  (V = 4^j + 1: the last index is encrypted as index 0)."""
  videos = grain.MapDataset.range(num_videos).shuffle(seed=seed).repeat()
  for epoch in (0, 1, 5):
    mine = order.epoch_order(seed, epoch, num_videos)
    where = np.linspace(0, num_videos - 1, min(num_videos, 300)).astype(int)
    assert [videos[epoch * num_videos + i] for i in where] == mine[where].tolist()
    if num_videos == 65_537:
      assert mine[-1] == mine[0] and len(set(mine.tolist())) == num_videos - 1
    else:
      assert sorted(mine.tolist()) == list(range(num_videos))


@pytest.mark.parametrize("k", [1, 4])  # 4 batches of 4 = 3.2 epochs of 5 videos.
def test_start_step_equals_skipping_steps(k):
  source = _source(5)
  ref = _take(_train(source, seed=7), k + 2)
  _assert_same(ref[k:], _take(_train(source, seed=7, start_step=k), 2))
  half = _take(_train(source, seed=7, start_step=k, process_index=1, process_count=2), 2)
  for whole, part in zip(ref[k:], half):
    np.testing.assert_array_equal(whole["video"][2:], part["video"])


def test_training_samples_videos_uniformly():
  # Video "long" has 4 segments (frames 0-9, 10-19, 20-29, 30-39); "a" and "b" one each.
  long = [make_record("long", [0], 10, k, 4, first=10 * k) for k in range(4)]
  source = long[:2] + [make_record("a", [1], 12)] + long[2:] + [make_record("b", [2], 12)]
  batches = _take(_train(source, num_classes=3, global_batch_size=6, seed=1), 20)  # 40 epochs
  labels = np.concatenate([b["label"] for b in batches]).reshape(40, 3)
  assert all(sorted(epoch) == [0, 1, 2] for epoch in labels)  # each video once an epoch
  assert len({tuple(e) for e in labels}) > 3  # in a new order
  video = np.concatenate([b["video"] for b in batches])[np.concatenate(
      [b["label"] for b in batches]) == 0]
  first_frames = [decode(clip[0])[3] for clip in video]
  assert {t // 10 for t in first_frames} == {0, 1, 2, 3}  # every segment's clips are drawn
  with_index = _take(_train(source, num_classes=3, global_batch_size=6, seed=1,
                            index=make_index(source)), 3)
  _assert_same(batches[:3], with_index)
  with pytest.raises(ValueError, match="index has 5 entries but the source 6"):
    _train(source, num_classes=3, index=make_index(source)[:5])


def _assert_same_plan(a, b):
  for f in dataclasses.fields(a):
    np.testing.assert_array_equal(getattr(a, f.name), getattr(b, f.name), err_msg=f.name)


def test_eval_plan_from_index_and_max_videos():
  source = [make_record("a", [1], 12), make_record("b", [2, 0], 12, 0, 2), make_record("c", [2], 3),
            make_record("b", [2, 0], 20, 1, 2), make_record("d", [0], 8), make_record("e", [1], 9)]
  kw = dict(num_frames=2, num_classes=3, clips_per_video=3)
  ref = pipeline.eval_plan(source, **kw)
  assert ref.video_ids == ("a", "b", "c", "d", "e")
  counting = Counting(source)
  _assert_same_plan(ref, pipeline.eval_plan(counting, index=make_index(source), **kw))
  assert counting.reads == 0  # the index, not the records
  for n in (1, 2, 4, 5, 9):
    counting = Counting(source)
    plan = pipeline.eval_plan(counting, max_videos=n, **kw)
    m = min(n, 5)
    assert plan.video_ids == ref.video_ids[:m]
    np.testing.assert_array_equal(plan.clips, ref.clips[:3 * m])
    np.testing.assert_array_equal(plan.video_labels, ref.video_labels[:m])
    np.testing.assert_array_equal(plan.first_labels, ref.first_labels[:m])
    assert counting.reads == {1: 1, 2: 4, 4: 5, 5: 6, 9: 6}[n]  # stops once it has them
    _assert_same_plan(plan, pipeline.eval_plan(source, max_videos=n, index=make_index(source),
                                               **kw))
  with pytest.raises(ValueError, match="index has 5 entries"):
    pipeline.eval_plan(source, index=make_index(source)[:5], **kw)


def test_eval_batches_read_each_record_once_per_run_of_clips():
  source = Counting([make_record("a", [1], 12), make_record("b", [2, 0], 12, 0, 2),
                     make_record("c", [2], 3), make_record("b", [2, 0], 20, 1, 2)])
  kw = dict(num_frames=2, crop_size=CROP, num_classes=3, clips_per_video=3, views=4,
            batch_size=8)
  ref = list(pipeline.eval_batches(list(source), **kw))
  plan = pipeline.eval_plan(source, num_frames=2, num_classes=3, clips_per_video=3)
  source.reads = 0
  _assert_same(ref, list(pipeline.EvalBatches(source, plan, crop_size=CROP, batch_size=8,
                                              read_threads=0)))
  runs = 1 + np.sum(np.diff(plan.clips[:, 1]) != 0)  # a: 0 0 0, b: 1 1 3, c: 2 2 2
  assert runs == 4 and source.reads == 4  # not 9 (one read per clip)


def test_eval_batches():
  source = [make_record("a", [1], 12), make_record("b", [2, 0], 12, 0, 2), make_record("c", [2], 3),
            make_record("b", [2, 0], 20, 1, 2)]
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
  decoded = [[decode(f) for f in clip] for clip in video[:36]]
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
  halves = [list(pipeline.EvalBatches(source, full.plan, crop_size=CROP, batch_size=8,
                                      process_index=p, process_count=2)) for p in (0, 1)]
  assert len(halves[0]) == len(halves[1]) == 5
  for whole, h0, h1 in zip(batches, *halves):
    for k in whole:
      np.testing.assert_array_equal(np.concatenate([h0[k], h1[k]]), whole[k])


def test_drain_shared_memory_unlinks_what_grain_deletes_in_the_background():
  """A batch from a worker process that is dropped unread is unlinked by grain on a thread pool;
  drain_shared_memory waits for it, so nothing is left for the resource_tracker at exit."""
  from grain._src.python.ipc import shared_memory_array as shm
  array_cls = shm.SharedMemoryArray
  array_cls.enable_async_del(1)
  block = array_cls((64, 64), np.float32)
  block[:] = 1
  name = block.shm.name
  block.unlink_on_del()  # as grain marks a batch received from a worker
  assert os.path.exists(f"/dev/shm/{name}")
  busy = threading.Event()
  array_cls._del_thread_pool.apply_async(busy.wait)  # the pool is busy: the unlink waits in line
  threading.Timer(0.2, busy.set).start()
  del block
  assert os.path.exists(f"/dev/shm/{name}")  # queued, not done: at exit it would leak
  pipeline.drain_shared_memory()
  assert not os.path.exists(f"/dev/shm/{name}")
  assert array_cls._del_thread_pool is None  # the next multiprocess iterator starts a new pool
  pipeline.drain_shared_memory()  # nothing pending: a no-op
