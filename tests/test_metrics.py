"""Tests of stcnn.metrics on hand-made predictions whose answers are worked out by hand below."""
import math

import numpy as np
import pytest

from stcnn import metrics


def _mh(rows, num_classes):
  """Multi-hot bool (len(rows), num_classes) from lists of class ids."""
  out = np.zeros((len(rows), num_classes), bool)
  for i, ids in enumerate(rows):
    out[i, list(ids)] = True
  return out


# -------------------------------------------------------------------------------------------- hit@k


def test_hit_at_1_multi_label_second_label_top1_is_a_hit():
  probs = np.array([[0.1, 0.2, 0.7],    # labels {0, 2}: top-1 is 2, its second label -> hit.
                    [0.6, 0.3, 0.1]])   # labels {1}: top-1 is 0 -> miss.
  labels = _mh([[0, 2], [1]], 3)
  np.testing.assert_array_equal(metrics.hits_at_k(probs, labels, 1), [True, False])
  assert metrics.hit_at_k(probs, labels, 1) == 0.5
  # Top-2 of row 1 is {0, 1} -> hit.
  assert metrics.hit_at_k(probs, labels, 2) == 1.0


def test_hit_at_5_with_fewer_than_5_classes():
  probs = np.array([[0.7, 0.2, 0.1],
                    [0.1, 0.2, 0.7],
                    [0.3, 0.3, 0.4]])
  labels = _mh([[2], [0], []], 3)  # last row has no label: can never hit.
  # k=5 > C=3: every class is in the top k, so each labelled row hits.
  assert metrics.hit_at_k(probs, labels, 5) == pytest.approx(2 / 3)
  assert metrics.hit_at_k(probs, labels, 1) == 0.0


def test_hit_at_k_ties_lower_class_index_ranks_first():
  probs = np.array([[0.4, 0.4, 0.2],
                    [0.4, 0.4, 0.2]])
  labels = _mh([[0], [1]], 3)
  np.testing.assert_array_equal(metrics.hits_at_k(probs, labels, 1), [True, False])
  np.testing.assert_array_equal(metrics.hits_at_k(probs, labels, 2), [True, True])


# -------------------------------------------------------------------------------------- aggregation


def _accumulate(probs, video_index, labels, views, mask=None, primary_labels=None):
  acc = metrics.VideoAccumulator(labels, views, primary_labels)
  acc.add(probs, video_index, mask)
  return acc


def test_video_average_right_although_every_clip_is_wrong():
  # One video, label 0, two single-view clips: clip A says class 1, clip B says class 2.
  clip_probs = np.array([[0.45, 0.55, 0.0],
                         [0.45, 0.0, 0.55]])
  # Mean = [0.45, 0.275, 0.275] -> class 0, right.
  labels = _mh([[0]], 3)
  acc = _accumulate(clip_probs, np.array([0, 0]), labels, views=1)
  np.testing.assert_allclose(acc.video_predictions(), [[0.45, 0.275, 0.275]])
  out = acc.result()
  assert out["clip_hit@1"] == 0.0
  assert out["video_hit@1"] == 1.0
  assert out["video_hit@1"] > out["clip_hit@1"]


def test_masked_padding_is_ignored():
  clip_probs = np.array([[0.2, 0.8],
                         [0.4, 0.6],
                         [1.0, 0.0],    # padding, pointed at video 0 (as a padded batch would be).
                         [1.0, 0.0]])
  video_index = np.array([0, 0, 0, 0])
  mask = np.array([True, True, False, False])
  labels = _mh([[1]], 2)
  acc = _accumulate(clip_probs, video_index, labels, 1, mask)
  np.testing.assert_allclose(acc.video_predictions(), [[0.3, 0.7]])
  # Without the mask the mean would be [0.65, 0.35]: the answer would flip to a miss.
  unmasked = _accumulate(clip_probs, video_index, labels, 1)
  np.testing.assert_allclose(unmasked.video_predictions(), [[0.65, 0.35]])
  out = acc.result()
  assert out["video_hit@1"] == 1.0
  assert out["clip_hit@1"] == 1.0
  assert out["num_clips"] == 2
  assert unmasked.result()["video_hit@1"] == 0.0


def test_video_without_clip_raises():
  with pytest.raises(ValueError, match="no clip"):
    _accumulate(np.ones((2, 3)) / 3, np.array([0, 2]), _mh([[0], [1], [2]], 3), 1).result()
  # A video whose only rows are masked has no clip either.
  with pytest.raises(ValueError, match="no clip"):
    _accumulate(np.ones((2, 3)) / 3, np.array([0, 1]), _mh([[0], [1]], 3), 1,
                mask=np.array([True, False])).result()


def test_clip_predictions_average_views_and_check_videos():
  probs = np.array([[0.25, 0.75],
                    [0.75, 0.25],
                    [0.5, 0.5],
                    [0.0, 1.0]])
  labels = _mh([[0], [1], [0], [1]], 2)
  # Clip 0 (video 3) = mean of its 2 views [.5, .5]; clip 1 (video 1) = [.25, .75].
  acc = _accumulate(probs, np.array([3, 3, 1, 1]), labels, views=2)
  np.testing.assert_allclose(acc.sums[[3, 1]] / acc.rows[[3, 1], None], [[0.5, 0.5], [0.25, 0.75]])
  assert acc.clips == 2 and acc.clip_hits == 1  # clip 1 of video 1 (label 1) is a hit
  # Partially masked clip: averaged over its remaining view.
  acc = _accumulate(probs, np.array([3, 3, 1, 1]), labels, views=2,
                    mask=np.array([True, False, True, True]))
  np.testing.assert_allclose(acc.sums[[3, 1]] / acc.rows[[3, 1], None],
                             [[0.25, 0.75], [0.25, 0.75]])
  assert acc.clips == 2 and acc.clip_hits == 2
  with pytest.raises(ValueError, match="different videos"):
    _accumulate(probs, np.array([0, 1, 1, 1]), labels, views=2)
  with pytest.raises(ValueError, match="whole number"):
    _accumulate(probs, np.array([0, 0, 1, 1]), labels, views=3)


# -------------------------------------------------------------------------------- per-class metrics


def test_mean_class_accuracy_differs_from_accuracy_and_counts_multi_label_per_class():
  probs = np.array([[0.9, 0.1, 0.0],   # labels {0}: hit.
                    [0.8, 0.2, 0.0],   # labels {0}: hit.
                    [0.1, 0.9, 0.0],   # labels {0}: miss.
                    [0.2, 0.8, 0.0]])  # labels {0, 1}: hit (top-1 is 1).
  labels = _mh([[0], [0], [0], [0, 1]], 3)
  # class 0: 3 of 4 right; class 1: 1 of 1; class 2: no video -> excluded.
  np.testing.assert_allclose(metrics.per_class_accuracy(probs, labels), [0.75, 1.0, np.nan])
  assert metrics.mean_class_accuracy(probs, labels) == pytest.approx((0.75 + 1.0) / 2)
  assert metrics.hit_at_k(probs, labels, 1) == 0.75


def test_average_precision_hand_computed_ranking():
  # Positives at ranks 1 and 3 of 4: (1/1 + 2/3) / 2.
  ap = metrics.average_precision([0.9, 0.8, 0.7, 0.6], [True, False, True, False])
  assert ap == pytest.approx((1 + 2 / 3) / 2)
  # Order of the input does not matter, only the scores: ranks 2 and 4 -> (1/2 + 2/4) / 2.
  ap = metrics.average_precision([0.6, 0.9, 0.7, 0.8], [True, False, False, True])
  assert ap == pytest.approx(0.5)
  # scikit-learn's docstring example: average_precision_score([0,0,1,1], [.1,.4,.35,.8]) = 0.8333.
  ap = metrics.average_precision([0.1, 0.4, 0.35, 0.8], [False, False, True, True])
  assert ap == pytest.approx((1 / 1 + 2 / 3) / 2)


def test_average_precision_ties_as_sklearn():
  # Scores 0.9 (neg), 0.5 (pos), 0.5 (neg), 0.1 (pos). The tie is one threshold:
  #   t=0.9: tp=0; t=0.5: tp=1, fp=2 -> P=1/3, R=1/2; t=0.1: tp=2, fp=2 -> P=1/2, R=1.
  #   AP = 1/2 * 1/3 + 1/2 * 1/2 = 5/12 (breaking the tie with the positive first would give 1/2).
  ap = metrics.average_precision([0.9, 0.5, 0.5, 0.1], [False, True, False, True])
  assert ap == pytest.approx(5 / 12)
  # A positive tied with a negative at the top: P = 1/2 at the only threshold.
  assert metrics.average_precision([0.5, 0.5], [True, False]) == pytest.approx(0.5)
  assert metrics.average_precision([0.5, 0.5], [True, True]) == pytest.approx(1.0)


def test_per_class_ap_nan_without_positives_excluded_from_mean():
  probs = np.array([[0.9, 0.1, 0.0],
                    [0.8, 0.2, 0.0],
                    [0.7, 0.3, 0.0],
                    [0.6, 0.4, 0.0]])
  labels = np.zeros((4, 3), bool)
  labels[[0, 2], 0] = True   # class 0 positives at ranks 1, 3 -> 5/6.
  labels[3, 1] = True        # class 1 positive has the top class-1 score -> 1.
  # class 2: no positive -> NaN.
  ap = metrics.per_class_ap(probs, labels)
  np.testing.assert_allclose(ap, [5 / 6, 1.0, np.nan])
  assert metrics.mean_ap(ap) == pytest.approx((5 / 6 + 1) / 2)
  assert math.isnan(metrics.average_precision([0.3, 0.2], [False, False]))
  assert math.isnan(metrics.mean_ap([np.nan, np.nan]))


def test_group_mean_ap():
  ap = np.array([0.2, 0.4, np.nan, 0.9])
  out = metrics.group_mean_ap(ap, {"a": [0, 1, 2], "b": [3], "empty": [2], "all": range(4)})
  assert out["a"] == pytest.approx(0.3)
  assert out["b"] == pytest.approx(0.9)
  assert math.isnan(out["empty"])
  assert out["all"] == pytest.approx(0.5)
  with pytest.raises(ValueError):
    metrics.group_mean_ap(ap, {"bad": [4]})


def test_confusion_matrix_counts():
  probs = np.array([[0.7, 0.2, 0.1],   # true 0, pred 0
                    [0.1, 0.7, 0.2],   # true 0, pred 1
                    [0.1, 0.7, 0.2],   # true 0, pred 1
                    [0.1, 0.2, 0.7],   # true 2, pred 2
                    [0.5, 0.5, 0.0],   # true 1, pred 0 (tie -> lower index)
                    [0.0, 1.0, 0.0]])  # label -1: skipped
  cm = metrics.confusion_matrix(probs, np.array([0, 0, 0, 2, 1, -1]), 3)
  np.testing.assert_array_equal(cm, [[1, 2, 0],
                                     [1, 0, 0],
                                     [0, 0, 1]])
  assert cm.dtype.kind == "i"


# --------------------------------------------------------------------------------------- end to end


def _toy_eval_set():
  """3 videos, 3 classes, clips of 2 views, plus 1 padding clip (2 rows)."""
  rows = [
      # video 0, label {0}: both clips wrong, the video mean [.45, .275, .275] right.
      ([0.45, 0.55, 0.0], 0), ([0.45, 0.55, 0.0], 0),    # clip 0 -> 1, miss
      ([0.45, 0.0, 0.55], 0), ([0.45, 0.0, 0.55], 0),    # clip 1 -> 2, miss
      # video 1, labels {1, 2}.
      ([0.1, 0.2, 0.7], 1), ([0.1, 0.2, 0.7], 1),        # clip 2 -> 2, hit
      ([0.75, 0.25, 0.0], 1), ([0.25, 0.0, 0.75], 1),    # clip 3 mean [.5, .125, .375] -> 0, miss
      # video 2, label {1}.
      ([0.2, 0.7, 0.1], 2), ([0.2, 0.7, 0.1], 2),        # clip 4 -> 1, hit
      ([1.0, 0.0, 0.0], 2), ([1.0, 0.0, 0.0], 2),        # clip 5: padding, masked
  ]
  probs = np.array([r[0] for r in rows])
  video_index = np.array([r[1] for r in rows])
  mask = np.array([True] * 10 + [False] * 2)
  labels = _mh([[0], [1, 2], [1]], 3)
  return probs, video_index, labels, mask


def test_accumulated_metrics_end_to_end():
  probs, video_index, labels, mask = _toy_eval_set()
  acc = metrics.VideoAccumulator(labels, views=2)
  for part in (slice(0, 4), slice(4, 12)):  # streamed in two batches of whole clips
    acc.add(probs[part], video_index[part], mask[part])
  out = acc.result()
  # Video means: v0 [.45, .275, .275] -> 0; v1 [.3, .1625, .5375] -> 2; v2 [.2, .7, .1] -> 1.
  assert out["clip_hit@1"] == pytest.approx(2 / 5)   # clips 2 and 4 of 5 unmasked clips.
  assert out["video_hit@1"] == 1.0
  assert out["video_hit@5"] == 1.0
  assert out["mean_class_accuracy"] == 1.0
  # AP class 0: v0 ranked first -> 1. Class 1: ranking v2(+) .7, v0 .275, v1(+) .1625 -> 5/6.
  # Class 2: v1 .5375 first -> 1.
  np.testing.assert_allclose(out["per_class_ap"], [1.0, 5 / 6, 1.0])
  assert out["mean_ap"] == pytest.approx((1 + 5 / 6 + 1) / 3)
  # Primary label = lowest true label: v0 -> 0, v1 -> 1, v2 -> 1; predictions 0, 2, 1.
  assert out["confusion"] == [[1, 0, 0], [0, 1, 1], [0, 0, 0]]
  assert out["num_videos"] == 3
  assert out["num_clips"] == 5
  assert isinstance(out["per_class_ap"], list) and isinstance(out["confusion"], list)


def test_accumulated_clip_hit_on_single_views():
  probs, video_index, labels, mask = _toy_eval_set()
  out = _accumulate(probs, video_index, labels, 1, mask).result()
  # Single views: v0 4 misses; v1 hits on rows 4, 5, 7; v2 hits on rows 8, 9 -> 5 of 10.
  assert out["clip_hit@1"] == pytest.approx(0.5)
  assert out["num_clips"] == 10
  assert out["video_hit@1"] == 1.0   # video metrics do not depend on `views`.
  assert _accumulate(probs, video_index, labels, 2, mask).result()["clip_hit@1"] == \
      pytest.approx(2 / 5)


def test_accumulated_primary_labels_override():
  probs, video_index, labels, mask = _toy_eval_set()
  acc = _accumulate(probs, video_index, labels, 2, mask, primary_labels=np.array([0, 2, 1]))
  out = acc.result()
  assert out["confusion"] == [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
