"""The decoded-frame cache: the same batches as the JPEG source, reused, atomic, picklable."""
import os
import pickle
import shutil

import numpy as np
import pytest

from configs import common
from stcnn.data import datasets, frame_cache, pipeline, sampling
from stcnn.data import prepared as prepared_lib  # `prepared` is the fixture
from tests.helpers import tiny_config


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
  """The tiny synthetic data set (32×32 frames), generated and prepared once for the module."""
  cfg = tiny_config(tmp_path_factory.mktemp("data"))
  return prepared_lib.load(datasets.ensure_synthetic(cfg))


@pytest.fixture(scope="module")
def cached(prepared, tmp_path_factory):
  """The train split's cache, built once for the module in its own directory."""
  return frame_cache.cached_source(prepared, "train", tmp_path_factory.mktemp("frames"))


def _take(it, n):
  try:
    return [next(it) for _ in range(n)]
  finally:
    getattr(it, "close", lambda: None)()


def _assert_same(batches_a, batches_b):
  assert len(batches_a) == len(batches_b)
  for a, b in zip(batches_a, batches_b):
    assert a.keys() == b.keys()
    for k in a:
      assert a[k].dtype == b[k].dtype, k
      assert np.array_equal(a[k], b[k]), k


def _frames_of(cache):
  return os.path.join(cache.directory, frame_cache.FRAMES_FILE)


def test_records_are_the_prepared_records_with_decoded_frames(prepared, cached):
  plain = prepared.source("train")
  assert isinstance(cached, frame_cache.CachedSource) and cached.built
  assert len(cached) == len(plain)
  s = prepared.frame_size
  for i in list(range(len(plain))[::7]) + [len(plain) - 1]:
    a, b = plain[i], cached[i]
    assert a.keys() == b.keys()
    for k in a:
      if k != "frames":
        assert type(a[k]) is type(b[k]) and np.array_equal(a[k], b[k]), k
    assert b["frames"].shape == (len(a["frames"]), s, s, 3) and b["frames"].dtype == np.uint8
    assert np.array_equal(b["frames"], np.stack([sampling.decode_frame(f) for f in a["frames"]]))
    assert sampling.read_clip(b, 2, (0, 15)).shape == (2, s, s, 3)
  assert cached[-1]["video_id"] == plain[len(plain) - 1]["video_id"]
  with pytest.raises(IndexError):
    cached[len(cached)]


@pytest.mark.parametrize("offsets", [None, (0, 15)], ids=["10_frames", "late_0_15"])
def test_train_batches_identical_in_process_and_in_workers(prepared, cached, offsets):
  num_frames = 10 if offsets is None else len(offsets)
  kw = dict(num_frames=num_frames, frame_offsets=offsets, crop_size=27,
            num_classes=prepared.num_classes, global_batch_size=4, seed=7,
            index=prepared.index("train"))
  ref = _take(pipeline.train_iterator(prepared.source("train"), **kw), 10)  # > 1 epoch of 32
  _assert_same(ref, _take(pipeline.train_iterator(cached, **kw), 10))
  _assert_same(ref, _take(pipeline.train_iterator(cached, worker_count=2, **kw), 10))  # pickled


def test_eval_batches_identical_in_process_and_in_workers(prepared, tmp_path):
  cached = frame_cache.cached_source(prepared, "val", tmp_path)
  assert cached.built
  kw = dict(num_frames=10, crop_size=27, num_classes=prepared.num_classes, clips_per_video=3,
            views=2, batch_size=8, index=prepared.index("val"))
  ref = list(pipeline.eval_batches(prepared.source("val"), **kw))
  assert len(ref) > 3
  _assert_same(ref, list(pipeline.eval_batches(cached, **kw)))
  _assert_same(ref, list(pipeline.eval_batches(cached, worker_count=2, **kw)))


def test_second_call_reuses_the_cache_without_decoding(prepared, cached, monkeypatch):
  mtime = os.stat(_frames_of(cached)).st_mtime_ns

  def no_decode(frame):
    raise AssertionError("decoded a frame")
  monkeypatch.setattr(sampling, "decode_frame", no_decode)
  again = frame_cache.cached_source(prepared, "train", os.path.dirname(cached.directory))
  assert not again.built and again.directory == cached.directory
  assert os.stat(_frames_of(cached)).st_mtime_ns == mtime
  assert np.array_equal(again[3]["frames"], cached[3]["frames"])


def test_another_fingerprint_never_reuses(prepared, cached):
  other = prepared_lib.Prepared(
      prepared.builder_dir, {**prepared.metadata, "fingerprint": "f" * 64}, prepared.splits,
      lambda split: prepared.source(split))
  root = os.path.dirname(cached.directory)
  mtime = os.stat(_frames_of(cached)).st_mtime_ns
  rebuilt = frame_cache.cached_source(other, "train", root)
  assert rebuilt.built and rebuilt.directory != cached.directory
  assert rebuilt.meta["fingerprint"] == "f" * 64
  assert os.stat(_frames_of(cached)).st_mtime_ns == mtime
  # A cache whose meta.json names another data set, found under the expected name, is left alone.
  third = prepared_lib.Prepared(
      prepared.builder_dir, {**prepared.metadata, "fingerprint": "e" * 64}, prepared.splits,
      lambda split: prepared.source(split))
  shutil.copytree(cached.directory, frame_cache.cache_path(third, "train", root))
  assert frame_cache.cached_source(third, "train", root) is prepared.source("train")


def test_pickles_only_the_path(cached):
  data = pickle.dumps(cached)
  assert len(data) < 4096
  copy = pickle.loads(data)
  assert copy._arrays is None  # pylint: disable=protected-access
  assert len(copy) == len(cached)
  assert np.array_equal(copy[5]["frames"], cached[5]["frames"])


def test_too_big_or_unsized_falls_back_to_the_jpeg_source(prepared, tmp_path):
  plain = prepared.source("test")
  assert frame_cache.cached_source(prepared, "test", tmp_path, max_bytes=1000) is plain
  no_index = prepared_lib.Prepared(prepared.builder_dir, {**prepared.metadata, "counts": {}},
                                   prepared.splits, lambda split: plain)
  no_index.index = lambda split: None
  assert frame_cache.cached_source(no_index, "test", tmp_path) is plain
  assert os.listdir(tmp_path) == []


def test_failed_or_killed_build_leaves_nothing_that_looks_complete(prepared, tmp_path, monkeypatch):
  calls = []
  decode = sampling.decode_frame

  def failing(frame):
    calls.append(1)
    if len(calls) > 50:
      raise RuntimeError("decoder failed")
    return decode(frame)
  monkeypatch.setattr(sampling, "decode_frame", failing)
  with pytest.raises(RuntimeError, match="decoder failed"):
    frame_cache.cached_source(prepared, "test", tmp_path, threads=1)
  assert os.listdir(tmp_path) == []  # the temporary is removed
  monkeypatch.setattr(sampling, "decode_frame", decode)
  # A killed build's temporary (a partial frames.npy, no meta.json) is ignored; a fresh one is made.
  final = frame_cache.cache_path(prepared, "test", tmp_path)
  stale = os.path.join(tmp_path, f".{os.path.basename(final)}.incomplete-killed")
  os.makedirs(stale)
  open(os.path.join(stale, frame_cache.FRAMES_FILE), "wb").close()
  built = frame_cache.cached_source(prepared, "test", tmp_path)
  assert built.built and built.directory == final and len(built) == len(prepared.source("test"))


def test_default_location_is_in_the_builder_dir(prepared):
  cached = frame_cache.cached_source(prepared, "test")
  assert cached.directory.startswith(os.path.join(prepared.builder_dir, frame_cache.DEFAULT_DIR))
  assert prepared_lib.load(prepared.builder_dir).fingerprint == prepared.fingerprint  # still loads


def test_config_caches_frames_for_the_small_variants():
  assert common.get_config("cpu").data.cache_frames
  assert common.get_config("tiny").data.cache_frames
  assert not common.get_config("").data.cache_frames
