r"""Looks at a prepared data set: statistics and contact sheets of what the networks will see.

  python -m stcnn.inspect --config=configs/slow_fusion.py:cpu [--split=train,test] [--out=DIR]
  python -m stcnn.inspect --data=PATH [--split=train[,test]] [--num_frames=10] [--out=DIR]

Prints, for every split given, videos / segments, frames per video and per segment (min/mean/max),
videos per class and the multi-label fraction; writes to --out the contact sheets
`train_clips.png` (augmented training clips of the first split, a row per clip, the frames the
network reads along the row, labels as title) and `eval_views.png` (the evaluation views of the
first split's first video's clip). With --config the clip is the network's: its frame offsets
(late fusion: frames t and t+15, `stcnn.models.frame_offsets`), crop size and mean; the
statistics come from the data set's index when it has one (no record read).
"""
from __future__ import annotations

import os
import sys
from typing import Any, Sequence

from absl import app, flags
from ml_collections import config_flags
import numpy as np

from stcnn import console, figures, models
from stcnn.data import datasets, pipeline, prepared, sampling, transforms, video_index

FLAGS = flags.FLAGS


def _define_flags():
  """Defined only when run as a program, so importing `inspect()` never clashes with other CLIs."""
  config_flags.DEFINE_config_file("config", None, "A training config (configs/X.py[:arg]): its "
                                  "data set, clip length and crop size.", lock_config=False)
  flags.DEFINE_string("data", None, "Prepared data set directory (instead of --config).")
  flags.DEFINE_string("split", "train", "Split(s), comma-separated; sheets use the first.")
  flags.DEFINE_integer("num_frames", 10, "Frames per clip (contiguous); --config: the network's.")
  flags.DEFINE_integer("crop_size", None, "Crop size (default: crop_size_for(frame_size)).")
  flags.DEFINE_string("out", "inspect", "Directory for the PNG contact sheets.")
  flags.DEFINE_integer("seed", 0, "Seed of the augmented training clips.")
  flags.DEFINE_integer("num_clips", 4, "Training clips on the contact sheet.")


def _min_mean_max(a: np.ndarray) -> tuple[int, float, int]:
  return int(a.min()), float(a.mean()), int(a.max())


def dataset_stats(source, *, num_classes: int | None = None, clip_frames: int | None = None,
                  index: Sequence[dict] | None = None) -> dict[str, Any]:
  """Counts for `inspect`: records, videos, frames/segments per video, labels, short segments.

  From `index` when given (no record read), else from a scan of the source. fps_mean is None when
  the index has no frame rates.
  """
  t = video_index.video_table(source, index=index)
  if not t.num_videos:
    return {"records": 0, "videos": 0}
  segs = np.diff(t.starts)
  frames_per_video = np.add.reduceat(t.frames, t.starts[:-1])
  num_classes = num_classes or 1 + max(max(lab) for lab in t.labels)
  per_class = np.zeros(num_classes, np.int64)
  for labels in t.labels:
    per_class[list(labels)] += 1
  known_fps = t.fps[~np.isnan(t.fps)]
  stats = {
      "records": len(t.records), "videos": t.num_videos,
      "segments_per_video": _min_mean_max(segs), "frames_per_video":
      _min_mean_max(frames_per_video),
      "frames_per_segment": _min_mean_max(t.frames),
      "fps_mean": float(known_fps.mean()) if known_fps.size else None,
      "videos_per_class": per_class,
      "multi_label_fraction": float(np.mean([len(lab) > 1 for lab in t.labels])),
      "incomplete_videos": int(np.sum(segs != t.num_segments)),
  }
  if clip_frames is not None:  # Segments whose clips repeat their last frame (sampling.py).
    stats["short_segments"] = int(np.sum(t.frames < clip_frames))
  return stats


def format_stats(stats: dict, class_names: Sequence[str], top: int = 10) -> str:
  """Human-readable lines of `dataset_stats`."""
  if not stats["records"]:
    return "  empty"
  spread = lambda k: "min %d / mean %.1f / max %d" % stats[k]
  per_class = stats["videos_per_class"]
  order = np.argsort(-per_class, kind="stable")
  name = lambda c: class_names[c] if c < len(class_names) else str(c)
  lines = [
      f"  videos {stats['videos']}, segments {stats['records']} "
      f"(incomplete videos {stats['incomplete_videos']})",
      f"  segments/video {spread('segments_per_video')}",
      f"  frames/video   {spread('frames_per_video')}",
      f"  frames/segment {spread('frames_per_segment')}   fps mean " +
      ("n/a" if stats["fps_mean"] is None else f"{stats['fps_mean']:.2f}"),
      f"  multi-label videos {100 * stats['multi_label_fraction']:.2f}%",
      f"  videos/class min {per_class.min()} / mean {per_class.mean():.1f} / max "
      f"{per_class.max()}; classes without videos {int(np.sum(per_class == 0))}",
      "  most frequent: " + ", ".join(f"{name(c)} {per_class[c]}" for c in order[:top]),
  ]
  if "short_segments" in stats:
    lines.append(f"  segments shorter than a clip (last frame repeated) {stats['short_segments']}")
  return "\n".join(lines)


def _sheet(rows, titles, path, mean, column_titles=()):
  """The clips (mean-subtracted, the mean added back) a row each: `stcnn.figures.contact_sheet`."""
  frames = [np.clip(np.asarray(clip) + mean, 0, 255).astype(np.uint8) for clip in rows]
  figures.contact_sheet(frames, titles, path, column_titles=column_titles)


def inspect(source, class_names: Sequence[str], *, num_frames: int, crop_size: int,
            out_dir: str, seed: int = 0, num_clips: int = 4, mean: float = transforms.MEAN,
            frame_offsets: Sequence[int] | None = None,
            index: Sequence[dict] | None = None) -> dict:
  """Prints the source's statistics and writes train_clips.png and eval_views.png to out_dir.

  The clips are exactly what the pipeline gives a network reading `frame_offsets` (default
  range(num_frames); num_frames = len(frame_offsets)), mean-subtracted with `mean` (added back for
  display). `index`: the data set's index (`Prepared.index(split)`), else the source is scanned.
  Returns {'stats', 'train_png', 'eval_png', 'train_video', 'eval_video'} (the batches shown).
  """
  offsets = sampling.clip_offsets(num_frames, frame_offsets)
  num_classes = len(class_names)
  stats = dataset_stats(source, num_classes=num_classes, index=index,
                                 clip_frames=sampling.clip_span(offsets))
  print(format_stats(stats, class_names), flush=True)
  if not stats["records"]:
    return {"stats": stats}
  os.makedirs(out_dir, exist_ok=True)
  names = lambda target: " + ".join(class_names[c] for c in np.flatnonzero(target))
  frames = [f"t+{o}" for o in offsets]
  train = next(pipeline.train_iterator(
      source, num_frames=num_frames, crop_size=crop_size, num_classes=num_classes,
      global_batch_size=num_clips, seed=seed, mean=mean, frame_offsets=offsets, index=index,
      read_threads=0))
  train_png = os.path.join(out_dir, "train_clips.png")
  _sheet(train["video"], [names(t) for t in train["target"]], train_png, mean, frames)
  views = pipeline.eval_batches(
      source, num_frames=num_frames, crop_size=crop_size, num_classes=num_classes,
      clips_per_video=1, views=4, batch_size=4, mean=mean, frame_offsets=offsets, index=index,
      max_videos=1, read_threads=0)
  batch = next(iter(views))
  vid = views.plan.video_ids[0]
  eval_png = os.path.join(out_dir, "eval_views.png")
  _sheet(batch["video"], [f"{vid} {names(batch['target'][0])}: {v}"
                          for v in transforms.view_names(4)], eval_png, mean, frames)
  print(f"wrote {train_png} and {eval_png}")
  return {"stats": stats, "train_png": train_png, "eval_png": eval_png,
          "train_video": train["video"], "eval_video": batch["video"]}


def main(argv):
  console.quiet_libraries()
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}")
  if not FLAGS.data and not FLAGS.config:
    raise app.UsageError("give --config=configs/X.py[:arg] or --data=PATH (a prepared data set)")
  offsets, mean = None, transforms.MEAN
  if FLAGS.config:
    data = datasets.load(FLAGS.config)
    offsets = models.frame_offsets(FLAGS.config)
    mean = FLAGS.config.data.get("mean", transforms.MEAN)
    crop = FLAGS.crop_size or FLAGS.config.model.input_size
  else:
    data = prepared.load(FLAGS.data)
    crop = FLAGS.crop_size or transforms.crop_size_for(data.frame_size)
  num_frames = len(offsets) if offsets is not None else FLAGS.num_frames
  span = sampling.clip_span(offsets) if offsets is not None else num_frames
  splits = [s.strip() for s in FLAGS.split.split(",") if s.strip()]
  for i, split in enumerate(splits):
    print(f"{data.builder_dir} [{split}]")
    source = data.source(split)
    index = data.index(split)
    if i:
      stats = dataset_stats(source, num_classes=data.num_classes, clip_frames=span,
                                     index=index)
      print(format_stats(stats, data.class_names))
    else:
      inspect(source, data.class_names, num_frames=num_frames, crop_size=crop,
              out_dir=FLAGS.out, seed=FLAGS.seed, num_clips=FLAGS.num_clips, mean=mean,
              frame_offsets=offsets, index=index)
  sys.stdout.flush()


if __name__ == "__main__":
  _define_flags()
  app.run(main)
