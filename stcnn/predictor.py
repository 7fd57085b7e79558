r"""The `stcnn.Predictor` API: a trained workdir's network and evaluation protocol, on any video.

  p = stcnn.Predictor.from_workdir(DIR, checkpoint="best")
  p.predict("clip.mp4")    # dict: top5, probs (C,), clip_probs (N, C), clip start frames/seconds
  p.predict_array(frames)  # the same for uint8 (T, H, W, 3) frames of any size

The command line and the output formats (text, JSON, timeline plot) are in `stcnn.predict`.

A video goes through what `stcnn.data.prepare` and the evaluation do to a video of the data set,
so a file of ≤ 300 frames gets the probabilities `stcnn.evaluate` gives it once prepared (a longer
one is one segment here, where `prepare` cuts it into segments of ≤ 300 frames):
1. the frame count and rate from the container header (`video_io.probe`, as `prepare` reads them;
   mkv/webm: estimated, and counted by decoding when fewer frames decode than announced); if the
   data set was prepared at a fixed `fps`, frames are picked the same way;
2. decode (PyAV, `video_io.decode_frames`: only the frames the clips read); each frame's centred
   square resized to config.data.frame_size (`video_io.centre_crop_resize`), then a JPEG round
   trip at the data set's quality (90): the frame as stored;
3. config.data.clips_per_video clips over the whole video as one segment
   (`sampling.eval_clip_starts`), of the frames the network reads (`models.frame_offsets`); a video
   shorter than the clip repeats its last frame, as evaluation does, and the result says so;
4. config.data.views views of each clip (`transforms.eval_views`), `transforms.normalize`;
5. softmax of every view; a clip's probabilities are the mean over its views, the video's the mean
   over all clips × views (as `stcnn.evaluate`).
Clip start times are start frame / the header's average frame rate (approximate for a variable
frame rate). Rotation metadata is not applied: `video_io` (and so `prepare`) decodes frames as
stored, so the network saw them that way.

Class names: those of the prepared data set the workdir trained on (its metadata, found by the
workdir's data fingerprint; the synthetic data set is not generated for this), else the workdir's
`class_names.json` (a JSON list), else the leaves of its `hierarchy.json`, else class_<i>. The JPEG
quality and fps come from the same metadata (default 90 and the video's own rate).
"""
from __future__ import annotations

import json
import math
import os
from typing import Callable, Sequence

import jax
import numpy as np

from stcnn import checkpoint_reader, config_check, evaluate, models, xla_options
from stcnn.data import builders, datasets, prepared, sampling, transforms, video_io

TOP_K = 5
DEFAULT_JPEG_QUALITY = builders.Settings().jpeg_quality


# ------------------------------------------------------------------------------ what the run knew
def dataset_metadata(workdir: str, config) -> tuple[str, dict] | None:
  """(builder dir, metadata) of the prepared data set the workdir trained on, if on this machine.

  Looked for where config.data names it (data.path, or the synthetic cache dir) and matched by the
  workdir's data fingerprint (without one: the single data set there of config.data.frame_size).
  Only metadata.json is read: nothing is generated or opened.
  """
  data = config.data
  if data.name == "prepared":
    root = data.get("path") or ""
  elif data.name == "synthetic":
    root = datasets.synthetic_path(config)
  else:
    return None
  root = os.path.expanduser(root)
  if not root or not os.path.isdir(root):
    return None
  fingerprint_file = os.path.join(workdir, "data_fingerprint.txt")
  trained = None
  if os.path.exists(fingerprint_file):
    with open(fingerprint_file) as f:
      trained = f.read().strip()
  candidates = []
  for builder_dir in prepared.find_builder_dirs(root):
    try:
      meta = prepared.read_metadata(builder_dir)
    except (ValueError, OSError):
      continue
    if trained is not None:
      if meta.get("fingerprint") == trained:
        return builder_dir, meta
    elif int(meta.get("frame_size", -1)) == int(data.frame_size):
      candidates.append((builder_dir, meta))
  return candidates[0] if len(candidates) == 1 else None


def class_names_for(workdir: str, config,
                    found: tuple[str, dict] | None) -> tuple[list[str], str]:
  """(class names, where they came from): see the module docstring for the order."""
  num_classes = int(config.num_classes)
  if found is not None and len(found[1].get("class_names") or ()) == num_classes:
    return [str(n) for n in found[1]["class_names"]], f"data set {found[0]}"
  path = os.path.join(workdir, "class_names.json")
  if os.path.exists(path):
    with open(path) as f:
      names = json.load(f)
    if (not isinstance(names, list) or len(names) != num_classes
        or not all(isinstance(n, str) for n in names)):
      raise ValueError(f"{path}: expected a JSON list of {num_classes} class names "
                       f"(config.num_classes), got {str(names)[:80]}")
    return names, path
  path = os.path.join(workdir, "hierarchy.json")
  if os.path.exists(path):
    with open(path) as f:
      hierarchy = json.load(f)
    names = hierarchy.get("names") or []
    if int(hierarchy.get("num_leaves", -1)) == num_classes and len(names) >= num_classes:
      return [str(n) for n in names[:num_classes]], path
  return [f"class_{i}" for i in range(num_classes)], (
      "none found (the data set is not on this machine and the workdir has no "
      "class_names.json): class_<i>")


def _relocated(config, workdir: str):
  """The config with a tree head's hierarchy.json found in the workdir, wherever it was trained."""
  hierarchy = config.model.get("hierarchy") or ""
  here = os.path.join(workdir, "hierarchy.json")
  if (config.model.get("head") == "tree" and hierarchy and not os.path.exists(hierarchy)
      and os.path.basename(hierarchy) == "hierarchy.json" and os.path.exists(here)):
    config = config.copy_and_resolve_references()
    config.model.hierarchy = here
  return config


# -------------------------------------------------------------------------------------- predictor
class Predictor:
  """A trained network and the evaluation protocol of its config, applied to any video.

  `predict(path)`, `predict_array(frames)` and `predict_stored(frames)` return a dict:
    video, num_frames (frames the clips are placed over), fps, duration_s, step, clips_per_video,
    views; top5 [{class, index, prob}]; probs float32 (C,); clip_probs float32 (N, C) (mean over
    each clip's views); timeline: per clip {start_frame, start_s (None without a frame rate),
    class, index, prob} of its top class; padded_frames (frames repeated in the most padded
    clip: > 0 for a video shorter than the clip) and note (text about it, or None).
  """

  def __init__(self, config, params, class_names: Sequence[str], *, step: int = -1,
               jpeg_quality: int | None = DEFAULT_JPEG_QUALITY, fps: float | None = None,
               clips_per_video: int | None = None, views: int | None = None,
               sources: dict | None = None):
    self.config = config
    self.model = models.build(config)
    if len(class_names) != config.num_classes:
      raise ValueError(f"{len(class_names)} class names for config.num_classes = "
                       f"{config.num_classes}")
    self.class_names = tuple(class_names)
    self.step = int(step)
    self.frame_size = int(config.data.frame_size)
    self.crop_size = int(config.model.input_size)
    self.mean = float(config.data.mean)
    self.offsets = tuple(models.frame_offsets(config))
    self.span = sampling.clip_span(self.offsets)
    self.clips_per_video = int(clips_per_video or config.data.clips_per_video)
    self.views = int(views or config.data.views)
    self.view_list = transforms.eval_views(self.frame_size, self.frame_size, self.crop_size,
                                           self.views)
    self.jpeg_quality = jpeg_quality
    self.fps = float(fps) if fps else None
    self.sources = dict(sources or {})
    examples = self.clips_per_video * self.views
    self.batch_size = max(1, min(int(config.get("eval_batch_size") or examples), examples))
    self.params = jax.device_put(params)
    model = self.model
    options = xla_options.compiler_options()
    self._scores = jax.jit(lambda p, v: model.apply({"params": p}, v, train=False),
                           compiler_options=options)
    self._probs = jax.jit(lambda p, v: jax.nn.softmax(model.apply({"params": p}, v, train=False)),
                          compiler_options=options)

  @classmethod
  def from_workdir(cls, workdir, checkpoint="best", *, clips_per_video: int | None = None,
                   views: int | None = None) -> "Predictor":
    """The predictor of a training workdir: config.json, a checkpoint (best | latest | step)."""
    workdir = os.path.abspath(os.path.expanduser(os.fspath(workdir)))
    config = evaluate.load_workdir_config(workdir)
    config_check.check(config, partial=True)
    config = _relocated(config, workdir)
    found = dataset_metadata(workdir, config)
    names, names_from = class_names_for(workdir, config, found)
    settings = dict((found[1].get("settings") if found else None) or {})
    params, step = checkpoint_reader.load_params(workdir, str(checkpoint))
    return cls(config, params, names, step=step,
               jpeg_quality=settings.get("jpeg_quality", DEFAULT_JPEG_QUALITY),
               fps=settings.get("fps"), clips_per_video=clips_per_video, views=views,
               sources={"workdir": workdir, "class_names": names_from,
                        "settings": f"data set {found[0]}" if found else "defaults"})

  # ----------------------------------------------------------------------------------- network
  def scores_fn(self, conv_impl: str | None = None) -> Callable:
    """video float32 (B, len(offsets), crop, crop, 3), normalised → scores (B, C): the network
    with its parameters (what `stcnn.export` exports); softmax(scores) are the probabilities.
    `conv_impl` fixes every conv's formulation (`layers.CONV_IMPLS`; default: per platform)."""
    model, params = self.model.clone(conv_impl=conv_impl), self.params
    return lambda video: model.apply({"params": params}, video, train=False)

  def scores(self, video) -> np.ndarray:
    """The live network's scores of a normalised batch (see `scores_fn`)."""
    return np.asarray(self._scores(self.params, np.asarray(video, np.float32)))

  @property
  def input_shape(self) -> tuple[int, int, int, int]:
    """One example's shape: (frames read, crop, crop, 3)."""
    return (len(self.offsets), self.crop_size, self.crop_size, 3)

  # ------------------------------------------------------------------------------ preprocessing
  def stored_frame(self, frame: np.ndarray) -> np.ndarray:
    """A decoded RGB frame as `prepare` stores it: the centred square resized to frame_size,
    then a JPEG round trip (the data set's quality)."""
    square = video_io.centre_crop_resize(frame, self.frame_size)
    if self.jpeg_quality is None:
      return square
    return sampling.decode_jpeg(video_io.encode_jpeg(square, self.jpeg_quality))

  def _plan(self, count: int, rate: float | None, resample: bool = True):
    """(stored frames n, source frame of each stored frame, clip starts, (N, T) stored frame
    indices, padded frames per clip) for a video of `count` frames at `rate`."""
    step = rate / self.fps if resample and self.fps and rate else 1.0  # source frames a stored one
    n = max(1, math.ceil(count / step))
    starts = [s for _, s in sampling.eval_clip_starts([n], self.clips_per_video, self.span)]
    picked = [sampling.clip_frame_indices(n, s, self.offsets) for s in starts]
    indices = np.stack([p[0] for p in picked])
    source = lambda j: int(j * step + 1e-6)  # as encode.encode_video picks frames at a fixed fps
    return n, source, starts, indices, [p[1] for p in picked]

  def _examples(self, clips: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """uint8 (batch_size, T, crop, crop, 3): examples lo..hi-1 (example e = view e % V of clip
    e // V, as evaluation orders them), zero padded."""
    batch = np.zeros((self.batch_size,) + self.input_shape, np.uint8)
    for j, e in enumerate(range(lo, hi)):
      c, v = divmod(e, self.views)
      view = self.view_list[v]
      batch[j] = transforms.crop_flip(clips[c], view.top, view.left, self.crop_size, view.flip)
    return batch

  def _predict_clips(self, clips: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(video probs (C,), clip probs (N, C)) of uint8 stored-frame clips (N, T, fs, fs, 3)."""
    n = len(clips) * self.views
    probs = np.zeros((n, len(self.class_names)), np.float32)
    for lo in range(0, n, self.batch_size):
      hi = min(lo + self.batch_size, n)
      video = transforms.normalize(self._examples(clips, lo, hi), self.mean)
      probs[lo:hi] = np.asarray(self._probs(self.params, video))[:hi - lo]
    clip_probs = probs.reshape(len(clips), self.views, -1).mean(1)
    return probs.mean(0), clip_probs

  def _predict(self, name: str, count: int, rate: float | None, read: Callable[[set], dict],
               resample: bool = True) -> dict:
    """The result for a video of `count` frames at `rate`; read(source frame indices) → {index:
    stored frame}, read(None) → the number of frames there are."""
    for attempt in range(2):
      n, source, starts, indices, padded = self._plan(count, rate, resample)
      wanted = {source(int(j)) for j in np.unique(indices)}
      frames = read(wanted)
      if wanted <= set(frames):
        break
      if attempt == 0:  # fewer frames decode than the header said: count them, plan again
        count = read(None)
        if count == 0:
          raise video_io.VideoDecodeError(f"{name}: decoded 0 frames")
    else:
      raise video_io.VideoDecodeError(f"{name}: frames {sorted(wanted - set(frames))[:5]} "
                                      "could not be decoded")
    clips = np.stack([np.stack([frames[source(int(j))] for j in row]) for row in indices])
    probs, clip_probs = self._predict_clips(clips)
    stored_rate = (self.fps if resample else None) or rate
    top = np.argsort(-probs, kind="stable")[:TOP_K]
    clip_top = np.argmax(clip_probs, axis=1)
    start_s = [source(s) / rate if rate else None for s in starts]
    note = None
    if max(padded):
      note = (f"{n} frame{'s' if n != 1 else ''}, shorter than the {self.span}-frame clip the "
              f"network reads (frames {self.offsets}): the last frame repeats "
              f"({max(padded)} of {len(self.offsets)} frames read), as in evaluation")
    return {
        "video": name, "num_frames": n, "fps": stored_rate,
        "duration_s": n / stored_rate if stored_rate else None, "step": self.step,
        "clips_per_video": self.clips_per_video, "views": self.views,
        "top5": [{"class": self.class_names[i], "index": int(i), "prob": float(probs[i])}
                 for i in top],
        "probs": probs, "clip_probs": clip_probs,
        "timeline": [{"start_frame": int(s), "start_s": t, "class": self.class_names[c],
                      "index": int(c), "prob": float(p[c])}
                     for s, t, c, p in zip(starts, start_s, clip_top, clip_probs)],
        "padded_frames": int(max(padded)), "note": note}

  def predict(self, path) -> dict:
    """Predicts a video file (anything PyAV reads); raises FileNotFoundError or
    video_io.VideoDecodeError (missing, empty, no video stream, undecodable)."""
    path = os.fspath(path)
    if not os.path.exists(path):
      raise FileNotFoundError(f"{path}: no such file")
    if os.path.isdir(path):
      raise IsADirectoryError(f"{path}: a directory, not a video file")
    if os.path.getsize(path) == 0:
      raise video_io.VideoDecodeError(f"{path}: empty file (0 bytes)")
    count, rate = video_io.probe(path)

    def read(wanted):
      if wanted is None:  # count every frame (the header announced more than there are)
        return sum(1 for _ in video_io.decode_frames(path))
      return {i: self.stored_frame(f) for i, f in video_io.decode_frames(path, wanted)}
    return self._predict(path, count, rate, read)

  def predict_array(self, frames, fps: float | None = None, name: str = "<array>") -> dict:
    """Predicts decoded RGB frames uint8 (T, H, W, 3) of any size (`fps`: for the clip times
    and a data set prepared at a fixed fps)."""
    frames = _check_frames(frames)

    def read(wanted):
      return len(frames) if wanted is None else {
          i: self.stored_frame(frames[i]) for i in wanted if i < len(frames)}
    return self._predict(name, len(frames), fps, read)

  def predict_stored(self, frames, fps: float | None = None, name: str = "<stored>") -> dict:
    """Predicts frames as a prepared record holds them (frame_size², already JPEG-decoded, at
    the stored rate `fps`): what evaluation reads; no resize, JPEG round trip or resampling."""
    frames = _check_frames(frames)
    if frames.shape[1:3] != (self.frame_size, self.frame_size):
      raise ValueError(f"stored frames must be {self.frame_size}×{self.frame_size} "
                       f"(config.data.frame_size), got {frames.shape[1]}×{frames.shape[2]}")

    def read(wanted):
      return len(frames) if wanted is None else {i: frames[i] for i in wanted if i < len(frames)}
    return self._predict(name, len(frames), fps, read, resample=False)


def _check_frames(frames) -> np.ndarray:
  frames = np.asarray(frames)
  if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or not len(frames):
    raise ValueError(f"frames must be uint8 (T >= 1, H, W, 3) RGB, got {frames.dtype} "
                     f"{frames.shape}")
  return frames
