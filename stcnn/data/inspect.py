r"""Looks at a prepared data set: statistics and contact sheets of what the networks will see.

  python -m stcnn.data.inspect --config=configs/slow_fusion.py:cpu [--split=train,test] [--out=DIR]
  python -m stcnn.data.inspect --data=PATH [--split=train[,test]] [--num_frames=10] [--out=DIR]

Prints, for every split given, videos / segments, frames per video and per segment (min/mean/max),
videos per class and the multi-label fraction; writes to --out the contact sheets
`train_clips.png` (augmented training clips of the first split, a row per clip, frames along the
row, labels as title) and `eval_views.png` (the evaluation views of the first split's first clip).
"""
from __future__ import annotations

import os
import sys
from typing import Sequence

from absl import app
from absl import flags
import numpy as np
from ml_collections import config_flags

from stcnn.data import pipeline
from stcnn.data import transforms

FLAGS = flags.FLAGS


def _define_flags():
  """Defined only when run as a program, so importing `inspect()` never clashes with other CLIs."""
  config_flags.DEFINE_config_file("config", None, "A training config (configs/X.py[:arg]): its "
                                  "data set, clip length and crop size.", lock_config=False)
  flags.DEFINE_string("data", None, "Prepared data set directory (instead of --config).")
  flags.DEFINE_string("split", "train", "Split(s), comma-separated; sheets use the first.")
  flags.DEFINE_integer("num_frames", 10, "Frames per clip.")
  flags.DEFINE_integer("crop_size", None, "Crop size (default: crop_size_for(frame_size)).")
  flags.DEFINE_string("out", "inspect", "Directory for the PNG contact sheets.")
  flags.DEFINE_integer("seed", 0, "Seed of the augmented training clips.")
  flags.DEFINE_integer("num_clips", 4, "Training clips on the contact sheet.")


def format_stats(stats: dict, class_names: Sequence[str], top: int = 10) -> str:
  """Human-readable lines of `pipeline.dataset_stats`."""
  if not stats["records"]:
    return "  empty"
  mmm = lambda k: "min %d / mean %.1f / max %d" % stats[k]
  per_class = stats["videos_per_class"]
  order = np.argsort(-per_class, kind="stable")
  name = lambda c: class_names[c] if c < len(class_names) else str(c)
  lines = [
      f"  videos {stats['videos']}, segments {stats['records']} "
      f"(incomplete videos {stats['incomplete_videos']})",
      f"  segments/video {mmm('segments_per_video')}",
      f"  frames/video   {mmm('frames_per_video')}",
      f"  frames/segment {mmm('frames_per_segment')}   fps mean {stats['fps_mean']:.2f}",
      f"  multi-label videos {100 * stats['multi_label_fraction']:.2f}%",
      f"  videos/class min {per_class.min()} / mean {per_class.mean():.1f} / max "
      f"{per_class.max()}; classes without videos {int(np.sum(per_class == 0))}",
      "  most frequent: " + ", ".join(f"{name(c)} {per_class[c]}" for c in order[:top]),
  ]
  if "short_segments" in stats:
    lines.append(f"  segments shorter than a clip (last frame repeated) {stats['short_segments']}")
  return "\n".join(lines)


def _sheet(rows, titles, path, mean):
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  cols = max(len(r) for r in rows)
  fig, axes = plt.subplots(len(rows), cols, figsize=(1.3 * cols, 1.5 * len(rows)), squeeze=False)
  for r, (clip, title) in enumerate(zip(rows, titles)):
    for c in range(cols):
      ax = axes[r, c]
      ax.axis("off")
      if c < len(clip):
        ax.imshow(np.clip(clip[c] + mean, 0, 255).astype(np.uint8))
    axes[r, 0].set_title(title, fontsize=7, loc="left")
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def inspect(source, class_names: Sequence[str], *, num_frames: int, crop_size: int,
            out_dir: str, seed: int = 0, num_clips: int = 4,
            mean: float = transforms.MEAN) -> dict:
  """Prints the source's statistics and writes train_clips.png and eval_views.png to out_dir."""
  num_classes = len(class_names)
  stats = pipeline.dataset_stats(source, num_classes=num_classes, clip_frames=num_frames)
  print(format_stats(stats, class_names), flush=True)
  if not stats["records"]:
    return {"stats": stats}
  os.makedirs(out_dir, exist_ok=True)
  names = lambda target: " + ".join(class_names[c] for c in np.flatnonzero(target))
  train = next(pipeline.train_iterator(
      source, num_frames=num_frames, crop_size=crop_size, num_classes=num_classes,
      global_batch_size=num_clips, seed=seed, read_threads=0))
  train_png = os.path.join(out_dir, "train_clips.png")
  _sheet(train["video"], [names(t) for t in train["target"]], train_png, mean)
  views = next(iter(pipeline.eval_batches(
      [source[0]], num_frames=num_frames, crop_size=crop_size, num_classes=num_classes,
      clips_per_video=1, views=4, batch_size=4, read_threads=0)))
  view_names = ["centre", "centre, flipped", "top-left", "bottom-right, flipped"]
  vid = pipeline.video_id_of(source[0])
  eval_png = os.path.join(out_dir, "eval_views.png")
  _sheet(views["video"], [f"{vid} {names(views['target'][0])}: {v}" for v in view_names],
         eval_png, mean)
  print(f"wrote {train_png} and {eval_png}")
  return {"stats": stats, "train_png": train_png, "eval_png": eval_png}


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}")
  if not FLAGS.data and not FLAGS.config:
    raise app.UsageError("give --config=configs/X.py[:arg] or --data=PATH (a prepared data set)")
  from stcnn.data import builders  # pylint: disable=g-import-not-at-top
  if FLAGS.config:
    from stcnn import models  # pylint: disable=g-import-not-at-top
    from stcnn.data import datasets  # pylint: disable=g-import-not-at-top
    data = datasets.load(FLAGS.config)
    FLAGS.num_frames = models.num_frames(FLAGS.config)
    crop = FLAGS.crop_size or FLAGS.config.model.input_size
  else:
    data = builders.load(FLAGS.data)
    crop = FLAGS.crop_size or transforms.crop_size_for(data.frame_size)
  splits = [s.strip() for s in FLAGS.split.split(",") if s.strip()]
  for i, split in enumerate(splits):
    print(f"{data.builder_dir} [{split}]")
    source = data.source(split)
    if i:
      stats = pipeline.dataset_stats(source, num_classes=data.num_classes,
                                     clip_frames=FLAGS.num_frames)
      print(format_stats(stats, data.class_names))
    else:
      inspect(source, data.class_names, num_frames=FLAGS.num_frames, crop_size=crop,
              out_dir=FLAGS.out, seed=FLAGS.seed, num_clips=FLAGS.num_clips)
  sys.stdout.flush()


if __name__ == "__main__":
  _define_flags()
  app.run(main)
