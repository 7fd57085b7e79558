"""Crop / flip / mean numerics and the deterministic evaluation views."""
import numpy as np
import pytest

from stcnn.data import transforms


def test_crop_size_for_paper_and_small_presets():
  assert transforms.crop_size_for(200) == 170
  assert transforms.crop_size_for(200, multires=True) == 178
  assert transforms.crop_size_for(64) == 54
  assert transforms.crop_size_for(64, multires=True) == 56
  assert transforms.crop_size_for(32) == 27
  for size in range(8, 300):
    assert transforms.crop_size_for(size, multires=True) % 2 == 0
    assert transforms.crop_size_for(size, multires=True) <= size
    assert transforms.crop_size_for(size) <= size


def test_crop_flip_hand_computed():
  clip = np.arange(9, dtype=np.uint8).reshape(1, 3, 3, 1)  # [[0 1 2] [3 4 5] [6 7 8]]
  out = transforms.crop_flip(clip, top=1, left=0, crop_size=2, flip=False)
  np.testing.assert_array_equal(out[0, ..., 0], [[3, 4], [6, 7]])
  out = transforms.crop_flip(clip, top=1, left=0, crop_size=2, flip=True)
  np.testing.assert_array_equal(out[0, ..., 0], [[4, 3], [7, 6]])
  assert out.dtype == np.uint8 and out.flags.c_contiguous
  out = transforms.crop_flip(clip, top=0, left=1, crop_size=2, flip=True)
  np.testing.assert_array_equal(out[0, ..., 0], [[2, 1], [5, 4]])


def test_crop_flip_same_window_every_frame():
  clip = np.arange(3 * 6 * 5 * 3).reshape(3, 6, 5, 3).astype(np.int64)
  out = transforms.crop_flip(clip, top=2, left=1, crop_size=3, flip=True)
  np.testing.assert_array_equal(out, clip[:, 2:5, 1:4][:, :, ::-1])
  with pytest.raises(ValueError, match="leaves"):
    transforms.crop_flip(clip, top=4, left=0, crop_size=3, flip=False)
  with pytest.raises(ValueError, match="does not fit"):
    transforms.crop_flip(clip, top=0, left=0, crop_size=6, flip=False)


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_crop_flip_of_some_frames_into_out(channels):
  """frames= (indices or a slice) and out= give what cropping the gathered frames gives."""
  clip = np.random.default_rng(0).integers(0, 256, (6, 7, 8, channels), dtype=np.uint8)
  for frames in (np.array([4, 1, 1]), slice(2, 5)):
    for flip in (False, True):
      want = clip[frames][:, 1:6, 2:7][:, :, ::-1 if flip else 1]
      np.testing.assert_array_equal(
          transforms.crop_flip(clip, 1, 2, 5, flip, frames=frames), want)
      out = np.zeros((3, 5, 5, channels), np.uint8)
      assert transforms.crop_flip(clip, 1, 2, 5, flip, frames=frames, out=out) is out
      np.testing.assert_array_equal(out, want)


def test_normalize_subtracts_mean_last():
  out = transforms.normalize(np.array([0, 117, 255], np.uint8))
  assert out.dtype == np.float32
  np.testing.assert_array_equal(out, [-117.0, 0.0, 138.0])
  np.testing.assert_array_equal(transforms.normalize(np.array([10], np.uint8), mean=10.5), [-0.5])


def test_random_augment_draw_order_and_coverage():
  clip = np.random.default_rng(0).integers(0, 255, (4, 10, 10, 3)).astype(np.uint8)
  out = transforms.random_augment(np.random.default_rng(7), clip, crop_size=6)
  rng = np.random.default_rng(7)  # The contract: top, left, then the flip coin.
  top, left = int(rng.integers(0, 5)), int(rng.integers(0, 5))
  flip = bool(rng.random() < 0.5)
  np.testing.assert_array_equal(out, transforms.crop_flip(clip, top, left, 6, flip))
  assert out.shape == (4, 6, 6, 3) and out.dtype == np.uint8

  rng = np.random.default_rng(1)
  params = [transforms.random_crop_params(rng, 5, 7, 3) for _ in range(2000)]
  assert {t for t, _ in params} == {0, 1, 2}
  assert {left for _, left in params} == {0, 1, 2, 3, 4}
  square = np.broadcast_to(np.arange(4, dtype=np.uint8)[:, None], (1, 4, 4, 1))  # value = x
  flipped = [transforms.random_augment(rng, square, 4)[0, 0, 0, 0] == 3 for _ in range(2000)]
  assert 900 < sum(flipped) < 1100  # p(flip) = 0.5
  assert not any(transforms.random_augment(rng, square, 4, flip=False)[0, 0, 0, 0] == 3
                 for _ in range(200))

def test_eval_views():
  views = transforms.eval_views(10, 10, 6, views=4)
  assert views == [transforms.View(2, 2, False), transforms.View(2, 2, True),
                   transforms.View(0, 0, False), transforms.View(4, 4, True)]
  ten = transforms.eval_views(10, 12, 6, views=10)
  assert len(set(ten)) == 10
  assert {(v.top, v.left) for v in ten} == {(2, 3), (0, 0), (0, 6), (4, 0), (4, 6)}
  assert sum(v.flip for v in ten) == 5
  assert transforms.eval_views(200, 200, 170, 2) == [transforms.View(15, 15, False),
                                                     transforms.View(15, 15, True)]
  with pytest.raises(ValueError, match="views"):
    transforms.eval_views(10, 10, 6, views=11)
