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


def test_crop_flip_params_and_random_augment():
  clip = np.random.default_rng(0).integers(0, 255, (4, 10, 10, 3)).astype(np.uint8)
  out = transforms.random_augment(np.random.default_rng(7), clip, crop_size=6)
  u = np.random.default_rng(7).random(3)  # top, left, then the flip coin
  top, left, flip = int(u[0] * 5), int(u[1] * 5), bool(u[2] < 0.5)
  np.testing.assert_array_equal(out, transforms.crop_flip(clip, top, left, 6, flip))
  assert out.shape == (4, 6, 6, 3) and out.dtype == np.uint8
  # 5 × 7 frames, crop 3: tops 0..2 and lefts 0..4, each an equal slice of [0, 1).
  assert [transforms.crop_flip_params((u, 0, 0), 5, 7, 3)[0] for u in (0, 0.34, 0.67, 0.999)] == [
      0, 1, 2, 2]
  assert [transforms.crop_flip_params((0, u, 0), 5, 7, 3)[1] for u in np.arange(5) / 5 + 0.1] == [
      0, 1, 2, 3, 4]
  assert transforms.crop_flip_params((0, 0, 0.49), 5, 7, 3)[2]
  assert not transforms.crop_flip_params((0, 0, 0.5), 5, 7, 3)[2]
  assert not transforms.crop_flip_params((0, 0, 0.1), 5, 7, 3, flip=False)[2]
  with pytest.raises(ValueError, match="does not fit"):
    transforms.crop_flip_params((0, 0, 0), 5, 7, 6)


