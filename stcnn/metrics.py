"""Evaluation metrics of the paper, as pure numpy functions.

The evaluator streams per-clip-view softmax outputs into a `VideoAccumulator` on the host and reads
every metric from it at the end of a pass. Nothing here touches JAX; inputs may be any array-likes
(numpy or JAX arrays, lists).

Protocol [paper §4]: "20 clips sampled per video, each clip seen 4 times (different crops and
flips),
predictions averaged over views and clips to give the video prediction. Metrics: clip hit@1, video
hit@1, video hit@5 (a hit when any true label is in the top k)." Table 2 and Table 4 use per-class
AP
and per-group mean AP.

Conventions used throughout:

* `probs` are class probabilities (already soft-maxed), shape (M, C). They are averaged as given,
  never re-normalised.
* `labels_multi_hot` is a bool (M, C) array; a row may hold several true labels (Sports-1M videos
  are multi-label, ~5% of them).
* Ranking and ties [choice]: classes are ranked by `np.argsort(-probs, axis=-1, kind="stable")`, so
  among classes with exactly equal probability the one with the lower class index ranks first. The
  top-1 class is therefore `np.argmax(probs, -1)` (which also returns the first maximum).
* A row with no true label can never be a hit; it counts as a miss in hit@k (it never occurs in
  Sports-1M or UCF-101).
* Clip hit@1 [choice, following the paper's text "every clip is propagated through the network 4
  times ... and the network class predictions are averaged to produce a more robust estimate of the
  class probabilities for the clip"]: the accuracy of each clip's prediction averaged over its
  views. `views=1` measures single views.
* Average precision [choice]: non-interpolated AP with scikit-learn's `average_precision_score`
  semantics, i.e. AP = Σ_t (R_t − R_{t−1}) · P_t over the distinct score thresholds t. Equivalently,
  the mean over positives of the precision at the positive's rank, where all examples tied with
  the positive's score count as ranked at or before it (a tie group is one threshold).
  Classes without positives have AP = NaN and are left out of every mean.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np


def _as_probs(probs, name: str = "probs") -> np.ndarray:
  probs = np.asarray(probs)
  if probs.ndim != 2:
    raise ValueError(f"{name} must be (M, C), got shape {probs.shape}")
  if not np.issubdtype(probs.dtype, np.floating):
    probs = probs.astype(np.float64)
  return probs


def _as_labels(labels, shape, name: str = "labels_multi_hot") -> np.ndarray:
  labels = np.asarray(labels)
  if labels.shape != tuple(shape):
    raise ValueError(f"{name} must have shape {tuple(shape)}, got {labels.shape}")
  return labels.astype(bool)


def _as_mask(mask, n: int) -> np.ndarray:
  if mask is None:
    return np.ones((n,), bool)
  mask = np.asarray(mask)
  if mask.shape != (n,):
    raise ValueError(f"mask must have shape ({n},), got {mask.shape}")
  return mask.astype(bool)


def _as_index(index, n: int, num_segments: int, name: str) -> np.ndarray:
  index = np.asarray(index)
  if index.shape != (n,) or (n and not np.issubdtype(index.dtype, np.integer)):
    raise ValueError(f"{name} must be an int array of shape ({n},), got {index.dtype} "
                     f"{index.shape}")
  index = index.astype(np.int64)
  if n and (index.min() < 0 or index.max() >= num_segments):
    raise ValueError(f"{name} must lie in [0, {num_segments}), got range "
                     f"[{index.min()}, {index.max()}]")
  return index


class VideoAccumulator:
  """Streams clip-view probabilities into per-video predictions: the one home of the aggregation.

  Rows arrive clip-major, the `views` views of a clip contiguous (row r of a batch is view r % views
  of the batch's clip r // views). A clip's prediction is the mean over its unmasked views (a clip
  whose views are all masked, i.e. batch padding, is dropped); a video's is the mean over all its
  unmasked rows (clips × views), kept as float64 sums so memory is (num_videos × C) however many
  clips there are. `result()` gives every metric of the paper.
  """

  def __init__(self, labels_multi_hot, views: int = 4, primary_labels=None):
    self.labels = _as_labels(labels_multi_hot, np.shape(labels_multi_hot))
    if self.labels.ndim != 2:
      raise ValueError(f"labels_multi_hot must be (num_videos, C), got {self.labels.shape}")
    if views < 1:
      raise ValueError(f"views must be >= 1, got {views}")
    self.views = views
    self.primary_labels = primary_labels
    self.sums = np.zeros(self.labels.shape, np.float64)
    self.rows = np.zeros(len(self.labels), np.int64)
    self.clips = 0
    self.clip_hits = 0

  def add(self, probs, video_index, mask=None) -> None:
    """Adds (N, C) rows of whole clips; `video_index` (N,) their videos; `mask` False = padding."""
    probs = _as_probs(probs, "probs").astype(np.float64)
    n, num_classes = probs.shape
    if num_classes != self.labels.shape[1]:
      raise ValueError(f"probs have {num_classes} classes, the labels {self.labels.shape[1]}")
    if n % self.views:
      raise ValueError(f"{n} rows are not a whole number of clips of {self.views} views")
    mask = _as_mask(mask, n)
    video_index = _as_index(np.where(mask, video_index, 0), n, len(self.labels), "video_index")
    clip_video = video_index.reshape(-1, self.views)
    clip_mask = mask.reshape(-1, self.views)
    if np.any(clip_mask & (clip_video != clip_video[:, :1])):
      raise ValueError("the views of a clip belong to different videos")
    weights = clip_mask[..., None].astype(np.float64)
    view_sums = (probs.reshape(-1, self.views, num_classes) * weights).sum(1)
    counts = clip_mask.sum(1)
    kept = counts > 0
    clip_p = view_sums[kept] / counts[kept, None]
    videos = clip_video[kept, 0]
    self.clips += int(kept.sum())
    self.clip_hits += int(hits_at_k(clip_p, self.labels[videos], 1).sum())
    np.add.at(self.sums, videos, view_sums[kept])
    np.add.at(self.rows, videos, counts[kept])

  def video_predictions(self) -> np.ndarray:
    """(num_videos, C) float64: each video's mean over its rows; raises if a video has none."""
    if np.any(self.rows == 0):
      missing = np.flatnonzero(self.rows == 0)
      raise ValueError(f"{missing.size} of {len(self.rows)} videos have no clip, e.g. "
                       f"{missing[:10].tolist()}")
    return self.sums / self.rows[:, None]

  def result(self, topk: Sequence[int] = (1, 5)) -> dict:
    """clip_hit@1 (view-averaged clips), the video metrics of `video_metrics`, num_clips."""
    out = {"clip_hit@1": self.clip_hits / max(self.clips, 1)}
    out.update(video_metrics(self.video_predictions(), self.labels, topk, self.primary_labels))
    out["num_clips"] = self.clips
    return out


def hits_at_k(probs, labels_multi_hot, k: int) -> np.ndarray:
  """Per-row hits: True where any true label is among the top k classes.

  Ties are broken by `np.argsort(-probs, kind="stable")`: lower class index first. With k >= C every
  row with at least one label is a hit.

  Args:
    probs: (M, C) scores.
    labels_multi_hot: (M, C) bool.
    k: number of top classes, k >= 1.

  Returns:
    (M,) bool.
  """
  probs = _as_probs(probs)
  labels = _as_labels(labels_multi_hot, probs.shape)
  if k < 1:
    raise ValueError(f"k must be >= 1, got {k}")
  k = min(int(k), probs.shape[1])
  top = np.argsort(-probs, axis=1, kind="stable")[:, :k]
  return np.take_along_axis(labels, top, axis=1).any(axis=1)


def hit_at_k(probs, labels_multi_hot, k: int) -> float:
  """Fraction of rows with any true label in the top k (see `hits_at_k`); NaN if M == 0."""
  hits = hits_at_k(probs, labels_multi_hot, k)
  return float(hits.mean()) if hits.size else float("nan")


def per_class_accuracy(probs, labels_multi_hot) -> np.ndarray:
  """(C,) top-1 accuracy on the rows of each class; NaN for classes without rows.

  A multi-label row counts for each of its classes, and it is correct when its top-1 class is any
  of its true labels (the hit@1 definition) [choice].
  """
  probs = _as_probs(probs)
  labels = _as_labels(labels_multi_hot, probs.shape)
  hits = hits_at_k(probs, labels, 1).astype(np.float64)
  counts = labels.sum(axis=0)
  correct = hits @ labels.astype(np.float64)
  with np.errstate(invalid="ignore", divide="ignore"):
    return np.where(counts > 0, correct / np.maximum(counts, 1), np.nan)


def _nanmean(values) -> float:
  values = np.asarray(values, np.float64)
  valid = ~np.isnan(values)
  return float(values[valid].mean()) if valid.any() else float("nan")


def mean_class_accuracy(probs, labels_multi_hot) -> float:
  """Mean over classes with at least one row of their top-1 accuracy (`per_class_accuracy`)."""
  return _nanmean(per_class_accuracy(probs, labels_multi_hot))


def average_precision(scores, positives) -> float:
  """Non-interpolated average precision of one ranking (sklearn `average_precision_score`).

  AP = Σ_t (R_t − R_{t−1}) · P_t over distinct score thresholds t (descending). Tied scores form a
  single threshold: each positive in a tie group gets the precision computed after the whole group.
  Example: positives at ranks 1 and 3 of 4 distinct scores → (1/1 + 2/3) / 2.

  Args:
    scores: (M,) scores, higher = more confident.
    positives: (M,) bool.

  Returns:
    AP in [0, 1]; NaN when there is no positive.
  """
  scores = np.asarray(scores, np.float64).reshape(-1)
  positives = np.asarray(positives).astype(bool).reshape(-1)
  if scores.shape != positives.shape:
    raise ValueError(f"scores {scores.shape} and positives {positives.shape} differ in shape")
  num_pos = int(positives.sum())
  if num_pos == 0:
    return float("nan")
  if np.isnan(scores).any():
    raise ValueError("scores contain NaN")
  order = np.argsort(-scores, kind="stable")
  s, y = scores[order], positives[order]
  tp = np.cumsum(y)
  # Last index of each position's tie group: the threshold at which the position is counted.
  m = s.size
  is_last = np.r_[s[1:] != s[:-1], True]
  group_end = np.minimum.accumulate(np.where(is_last, np.arange(m), m)[::-1])[::-1]
  precision = tp[group_end] / (group_end + 1.0)
  return float(precision[y].sum() / num_pos)


def per_class_ap(probs, labels_multi_hot) -> np.ndarray:
  """(C,) AP of each class, ranking all rows by that class's probability; NaN without positives."""
  probs = _as_probs(probs)
  labels = _as_labels(labels_multi_hot, probs.shape)
  # A loop over classes (not examples): each AP is vectorised over the M rows, memory stays O(M).
  return np.array([average_precision(probs[:, c], labels[:, c]) for c in range(probs.shape[1])],
                  np.float64)


def mean_ap(per_class_ap_values) -> float:
  """Mean AP over the classes with a (non-NaN) AP; NaN if there is none."""
  return _nanmean(per_class_ap_values)


def confusion_matrix(probs, primary_labels, num_classes: int) -> np.ndarray:
  """(C, C) int64 counts: rows = true (primary) label, columns = predicted top-1 class.

  Args:
    probs: (M, C) scores; the prediction is `argmax` (first maximum on ties).
    primary_labels: (M,) int true class of each row in [0, num_classes); rows with a negative
      label (e.g. -1 for "no label") are skipped.
    num_classes: C.
  """
  probs = _as_probs(probs)
  if probs.shape[1] != num_classes:
    raise ValueError(f"probs has {probs.shape[1]} classes, expected {num_classes}")
  primary_labels = np.asarray(primary_labels).astype(np.int64)
  if primary_labels.shape != (probs.shape[0],):
    raise ValueError(f"primary_labels must have shape ({probs.shape[0]},), got "
                     f"{primary_labels.shape}")
  if primary_labels.size and primary_labels.max() >= num_classes:
    raise ValueError(f"primary_labels must be < {num_classes}, got {primary_labels.max()}")
  keep = primary_labels >= 0
  pred = np.argmax(probs, axis=1)
  flat = primary_labels[keep] * num_classes + pred[keep]
  return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def wrongness(probs, labels_multi_hot) -> tuple[np.ndarray, np.ndarray]:
  """(score (M,), wrong class (M,)): per row, the highest probability on a class that is not a true
  label minus the highest on a true label, and that wrong class.

  The score is > 0 for a confident miss (the top-1 class is wrong; see `hits_at_k` for ties) and
  grows the surer the network is of the wrong class and the less of the right one. A row with no
  true label scores its top probability; a row whose every class is true scores -inf (class -1).
  """
  probs = _as_probs(probs).astype(np.float64)
  labels = _as_labels(labels_multi_hot, probs.shape)
  wrong = np.where(labels, -np.inf, probs)
  wrong_class = np.argmax(wrong, axis=1)
  best_wrong = wrong[np.arange(len(wrong)), wrong_class]
  best_true = np.where(labels, probs, 0.0).max(axis=1, initial=0.0)
  return best_wrong - best_true, np.where(np.isfinite(best_wrong), wrong_class, -1)


def most_wrong(probs, labels_multi_hot, n: int) -> np.ndarray:
  """Indices of the (at most) n rows that miss at hit@1, by decreasing `wrongness` score (lower
  index first on equal scores)."""
  score, _ = wrongness(probs, labels_multi_hot)
  misses = np.flatnonzero(~hits_at_k(probs, labels_multi_hot, 1))
  return misses[np.argsort(-score[misses], kind="stable")][:max(n, 0)]


def group_mean_ap(per_class_ap_values, groups: Mapping[str, Sequence[int]]) -> dict[str, float]:
  """Mean AP per group of classes (Table 4): {name: mean of the non-NaN APs of its classes}.

  A group whose classes all lack positives (or an empty group) gets NaN.
  """
  ap = np.asarray(per_class_ap_values, np.float64).reshape(-1)
  out = {}
  for name, class_ids in groups.items():
    ids = np.asarray(list(class_ids), np.int64)
    if ids.size and (ids.min() < 0 or ids.max() >= ap.size):
      raise ValueError(f"group {name!r} has class ids outside [0, {ap.size})")
    out[name] = _nanmean(ap[ids])
  return out


def video_metrics(video_probs, labels_multi_hot, topk: Sequence[int] = (1, 5),
                  primary_labels=None) -> dict:
  """The video-level metrics from (num_videos, C) video predictions.

  Returns a flat dict: "video_hit@{k}" for k in topk, "mean_class_accuracy", "mean_ap" (floats);
  "per_class_ap" (list of C floats, NaN for classes without a positive video); "confusion" (C × C
  nested list of ints; row = `primary_labels`, by default the lowest true label); "num_videos".
  """
  video_p = _as_probs(video_probs, "video_probs")
  num_videos, num_classes = video_p.shape
  labels = _as_labels(labels_multi_hot, (num_videos, num_classes), "labels_multi_hot")
  if primary_labels is None:
    primary_labels = np.where(labels.any(axis=1), np.argmax(labels, axis=1), -1)
  ap = per_class_ap(video_p, labels)
  results = {f"video_hit@{k}": hit_at_k(video_p, labels, k) for k in topk}
  results.update({
      "mean_class_accuracy": mean_class_accuracy(video_p, labels),
      "mean_ap": mean_ap(ap),
      "per_class_ap": [float(a) for a in ap],
      "confusion": confusion_matrix(video_p, primary_labels, num_classes).tolist(),
      "num_videos": int(num_videos),
  })
  return results
