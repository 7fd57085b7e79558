r"""Predictions of a trained workdir on video files, from the command line: text, JSON, a timeline.

  python -m stcnn.predict --workdir=DIR VIDEO [VIDEO ...] [--checkpoint=best|latest|STEP]
      [--json] [--timeline] [--out=FILE] [--clips_per_video=N] [--views=V]

Each file is answered on its own: a missing, empty, undecodable or audio-only file gets one line
naming it and why (with --json an object with "error"); the exit status is 1 if any failed.

What a prediction is (the steps a video goes through, where class names come from) and the Python
API, `stcnn.Predictor`: `stcnn.predictor`.
"""
from __future__ import annotations

import json
import os
import sys

from absl import app, flags, logging

from stcnn import checkpoint_reader, console, fileio, host_memory
from stcnn.data import transforms, video_io
from stcnn.predictor import Predictor


# ----------------------------------------------------------------------------------------- output
def to_json(result: dict) -> dict:
  """A result as plain JSON values (float32 values print exactly and read back the same): the
  per-clip probabilities go into `timeline` as `probs`."""
  out = {k: v for k, v in result.items() if k not in ("probs", "clip_probs", "timeline")}
  out["probs"] = [float(p) for p in result["probs"]]
  out["timeline"] = [{**clip, "probs": [float(p) for p in probs]}
                     for clip, probs in zip(result["timeline"], result["clip_probs"])]
  return out


def reason(path: str, error: BaseException) -> str:
  """One line saying why a file could not be predicted (without repeating its name)."""
  text = str(error) if isinstance(error, (video_io.VideoDecodeError, OSError)) else (
      f"{type(error).__name__}: {error}")
  if isinstance(error, FileNotFoundError) and not text.startswith(f"{path}: "):
    text = "no such file"
  if text.startswith(f"{path}: "):
    text = text[len(path) + 2:]
  return " ".join(text.split())


def format_result(result: dict, timeline: bool = False) -> str:
  """The human-readable lines of one video's result."""
  fps = f"{result['fps']:.2f} fps" if result["fps"] else "no frame rate"
  n = result["num_frames"]
  lines = [f"{result['video']}: {n} frame{'s' if n != 1 else ''}, {fps}, "
           f"{result['clips_per_video']} clips × {result['views']} views "
           f"(checkpoint step {result['step']})"]
  if result["note"]:
    lines.append(f"  note: {result['note']}")
  width = max(len(t["class"]) for t in result["top5"])
  lines += [f"  {k}. {t['class']:<{width}s}  {t['prob']:.4f}"
            for k, t in enumerate(result["top5"], 1)]
  if timeline:
    lines.append("  timeline (clip start, top class, probability):")
    for clip in result["timeline"]:
      when = (f"{clip['start_s']:8.2f} s" if clip["start_s"] is not None else
              f"frame {clip['start_frame']:6d}")
      lines.append(f"    {when}  {clip['class']}  {clip['prob']:.4f}")
  return "\n".join(lines)


def plot_timeline(result: dict, path: str) -> str:
  """A PNG of the per-clip probabilities of the video's top-5 classes over time."""
  from matplotlib.figure import Figure  # Agg through Figure.savefig, no pyplot state
  timed = all(c["start_s"] is not None for c in result["timeline"])
  x = [c["start_s"] if timed else c["start_frame"] for c in result["timeline"]]
  fig = Figure(figsize=(8, 3.6))
  ax = fig.subplots()
  for t in result["top5"]:
    ax.plot(x, result["clip_probs"][:, t["index"]], marker="o", label=t["class"])
  ax.set_xlabel("clip start (s)" if timed else "clip start (frame)")
  ax.set_ylabel("probability (mean over views)")
  ax.set_ylim(0, 1)
  ax.set_title(os.path.basename(result["video"]), fontsize=10)
  ax.legend(fontsize=7, loc="upper right")
  fig.tight_layout()
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path, dpi=100)
  return path


# ---------------------------------------------------------------------------------------------- CLI
FLAGS = flags.FLAGS


def define_flags():
  checkpoint_reader.define_workdir_flags()
  flags.DEFINE_bool("json", False, "One JSON object a video (machines) instead of text.")
  flags.DEFINE_bool("timeline", False, "Per-clip predictions over time, and a PNG of them a "
                    "video (<video file name>.timeline.png beside --out, else in the current "
                    "folder).")
  flags.DEFINE_string("out", None, "Also write what is printed to this file.")
  flags.DEFINE_integer("clips_per_video", 0, "Clips a video (0: the config's).", lower_bound=0)
  flags.DEFINE_integer("views", 0, "Views a clip (0: the config's).", lower_bound=0,
                       upper_bound=len(transforms.view_names(1 << 30)))
  flags.mark_flags_as_required(["workdir"])


def _png_path(folder: str, video: str, taken: set) -> str:
  """<folder>/<video file name>.timeline.png; -2, -3, ... for a name given twice."""
  name = os.path.basename(os.path.normpath(video)) or "video"
  path, k = os.path.join(folder, f"{name}.timeline.png"), 1
  while path in taken:
    k += 1
    path = os.path.join(folder, f"{name}-{k}.timeline.png")
  taken.add(path)
  return path


def main(argv):
  console.quiet_libraries()
  host_memory.keep_freed_memory()  # large freed blocks reused, not re-faulted each step
  videos = argv[1:]
  if not videos:
    raise app.UsageError("name at least one video: python -m stcnn.predict --workdir=DIR "
                         "VIDEO [VIDEO ...]")
  predictor = Predictor.from_workdir(FLAGS.workdir, FLAGS.checkpoint,
                                     clips_per_video=FLAGS.clips_per_video or None,
                                     views=FLAGS.views or None)
  logging.info("checkpoint step %d; class names: %s", predictor.step,
               predictor.sources["class_names"])
  folder = os.path.dirname(os.path.abspath(FLAGS.out)) if FLAGS.out else os.getcwd()
  pngs, lines, failed = set(), [], []
  for path in videos:
    try:
      result = predictor.predict(path)
    except Exception as e:  # pylint: disable=broad-except  # one bad file never stops the rest
      failed.append(path)
      why = reason(path, e)
      line = json.dumps({"video": path, "error": why}) if FLAGS.json else \
          f"{path}: cannot predict: {why}"
    else:
      if FLAGS.timeline:
        result["timeline_png"] = plot_timeline(result, _png_path(folder, path, pngs))
      if FLAGS.json:
        line = json.dumps(to_json(result))
      else:
        line = format_result(result, FLAGS.timeline)
        if FLAGS.timeline:
          line += f"\n  timeline plot: {result['timeline_png']}"
    print(line, flush=True)
    lines.append(line)
  if FLAGS.out:
    fileio.write_text(FLAGS.out, "\n".join(lines) + "\n")
  if failed:
    print(f"{len(failed)} of {len(videos)} videos failed: {', '.join(failed)}", file=sys.stderr)
    return 1
  return 0


if __name__ == "__main__":
  define_flags()
  app.run(main)
