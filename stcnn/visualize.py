r"""Figures of a training workdir, to look at rather than read: four PNGs in --out.

  python -m stcnn.visualize --workdir=DIR [--out=DIR/plots] [--checkpoint=best|latest|STEP]
      [--split=test] [--max_videos=N] [--num_wrong=12]

  filters.png     the checkpoint's first-layer (conv1) filters, each scaled to its own range: a
                  multires network's fovea and context streams side by side, a full-frame
                  network's one tower; a filter over several frames (early fusion 10, slow fusion
                  4) is a strip of its frames, the first on the left.
  confusion.png   the split's confusion matrix (rows: true class = a video's first label; columns:
                  top-1 prediction; colour: fraction of the row; up to 30 classes the counts
                  written in and each row's video count after its name). With a class tree (the
                  data set's, else the workdir's hierarchy.json) classes are ordered by group and
                  the groups boxed and named.
  curves.png      from metrics.jsonl (`stcnn.writers.read_metrics`): training loss; validation
                  (config.data.eval_split) video hit@1, any other evaluated split's (the final
                  test) and the training batches' clip hit@1; learning rate; against the step, the
                  drawn checkpoint's step dashed.
  most_wrong.png  the --num_wrong videos the network gets most wrong: those missed at hit@1,
                  ranked by `stcnn.metrics.wrongness` (p(top wrong class) − p(best true class)),
                  each a row of frames spread over the clips' segments, captioned with its video
                  id, its true class(es) and the prediction with its probability.

The evaluation is `stcnn.evaluate`'s (`Evaluator`: the config's clips × views, the mean softmax
of a video), on --split (default config.data.test_split), of its first --max_videos videos (0:
all); the network and class names are `stcnn.Predictor.from_workdir`'s. Prints the path of every
PNG written, one a line, and nothing else on stdout (the data set's messages go to stderr). A
figure that cannot be drawn (no metrics.jsonl, no video missed) gets a line on stderr saying why,
and the others are drawn. A folder without config.json or without a checkpoint is named on
stderr, nothing is drawn and the exit status is 1.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import sys
from typing import TYPE_CHECKING, Sequence

from absl import app, flags
import numpy as np

from stcnn import checkpoint_reader, console, evaluate, figures, metrics, models, writers

if TYPE_CHECKING:
  from stcnn.data import pipeline

FRAMES_PER_VIDEO = 4
FIGURES = ("filters", "confusion", "curves", "most_wrong")
STREAM_LABELS = {"tower": "full frame", "fovea": "fovea", "context": "context"}


# ------------------------------------------------------------------------------------- evaluation
@dataclasses.dataclass
class Evaluation:
  """One `stcnn.evaluate.Evaluator` pass: per-video probabilities, the metrics, the class tree."""
  split: str
  step: int
  probs: np.ndarray  # float64 (videos, C): mean softmax over clips × views
  labels: np.ndarray  # bool (videos, C): multi-hot true labels
  result: dict  # the evaluator's metrics (confusion: rows = first label, as drawn)
  groups: dict  # {group name: class ids} of the class tree ({} without one)
  plan: pipeline.EvalPlan  # video ids, clips = (video, record, start frame)
  source: Sequence[dict]  # the split's records


def workdir_hierarchy(workdir: str) -> dict | None:
  """The workdir's hierarchy.json (what a tree head trained on), if it has one."""
  path = os.path.join(workdir, "hierarchy.json")
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def evaluate_split(predictor, workdir: str, split: str, max_videos: int = 0) -> Evaluation:
  """The predictor's network on `split` of the data set the workdir trained on."""
  import jax

  from stcnn import parallel
  from stcnn.data import datasets
  config = predictor.config
  data = datasets.load(datasets.with_resolved_paths(config))
  evaluate.check_same_data(workdir, data)
  mesh = parallel.make_mesh()
  ev = evaluate.Evaluator(config, data, mesh, split, max_videos=max_videos)
  acc = ev.accumulate(jax.device_put(predictor.params, parallel.replicated(mesh)))
  groups = ev.groups or evaluate.class_groups(workdir_hierarchy(workdir), config.num_classes)
  return Evaluation(split=split, step=predictor.step, probs=acc.video_predictions(),
                    labels=acc.labels, result=ev.result(acc, predictor.step), groups=groups,
                    plan=ev.plan, source=ev.source)


# ---------------------------------------------------------------------------------------- filters
def draw_filters(params, config, step: int, path: str) -> str | None:
  kernels = {STREAM_LABELS[s]: k for s, k in models.conv1_kernels(params).items()}
  m = config.model
  return figures.draw_filters(
      kernels, f"{m.fusion} fusion, {m.streams} streams, checkpoint step {step}: first-layer "
      "filters (each scaled to its own range)", path)


# -------------------------------------------------------------------------------------- confusion
def ordered_confusion(matrix, groups: dict) -> tuple[np.ndarray, list[int], list]:
  """(the matrix with rows and columns in `figures.class_order`, that order, the groups' blocks)."""
  matrix = np.asarray(matrix)
  order, blocks = figures.class_order(groups, len(matrix))
  return matrix[np.ix_(order, order)], order, blocks


def draw_confusion(ev: Evaluation, names: Sequence[str], path: str) -> tuple[str, np.ndarray]:
  """(path, the matrix drawn: counts in the drawn order)."""
  matrix, order, blocks = ordered_confusion(ev.result["confusion"], ev.groups)
  r = ev.result
  title = (f"{ev.split}, {r['num_videos']} videos, step {ev.step}: video hit@1 "
           f"{r['video_hit@1']:.3f}, mean AP {r['mean_ap']:.3f}"
           + ("\nclasses by group of the class tree (orange boxes)" if blocks else ""))
  path = figures.draw_confusion(matrix, [names[c] for c in order], path, title=title,
                                blocks=blocks, ylabel="true class (first label)")
  return path, matrix


# ----------------------------------------------------------------------------------------- curves
def _plot(ax, rows: list[dict], key: str, label: str, **style) -> bool:
  points = [(r["step"], r[key]) for r in rows
            if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]
  if points:
    ax.plot(*zip(*points), label=label, **style)
  return bool(points)


def draw_curves(rows: list[dict], config, step: int, path: str, title: str) -> str:
  """Loss, video hit@1 and learning rate against the step (metrics.jsonl's rows)."""
  train = [r for r in rows if r.get("split") == "train"]
  val = config.data.eval_split
  others = sorted({r.get("split") for r in rows} - {"train", val, None})
  fig = figures.figure(figsize=(7.5, 7.5), layout="constrained")
  loss_ax, hit_ax, lr_ax = fig.subplots(3, 1, sharex=True)
  drawn = {
      loss_ax: _plot(loss_ax, train, "loss", "training loss (batches)", color="tab:blue"),
      hit_ax: any([
          _plot(hit_ax, train, "clip_hit@1", "training clip hit@1 (batches)", color="tab:gray",
                alpha=0.6, lw=1),
          _plot(hit_ax, [r for r in rows if r.get("split") == val], "video_hit@1",
                f"{val} video hit@1", color="tab:green", marker="o", ms=4),
          *[_plot(hit_ax, [r for r in rows if r.get("split") == s], "video_hit@1",
                  f"{s} video hit@1", ls="none", marker="*", ms=11) for s in others]]),
      lr_ax: _plot(lr_ax, train, "lr", "learning rate", color="tab:purple", drawstyle="steps-post"),
  }
  for ax, what in ((loss_ax, "loss"), (hit_ax, "accuracy"), (lr_ax, "learning rate")):
    ax.grid(alpha=0.3)
    ax.axvline(step, color="k", ls="--", lw=0.8, label=f"drawn checkpoint (step {step})")
    if drawn[ax]:
      ax.legend(fontsize=8, loc="best")
    else:
      ax.text(0.5, 0.5, f"no {what} in metrics.jsonl", transform=ax.transAxes, ha="center",
              color="gray")
  lrs = [r["lr"] for r in train if isinstance(r.get("lr"), (int, float))]
  if lrs and min(lrs) > 0 and max(lrs) > 10 * min(lrs):  # plateau drops: factors of 10
    lr_ax.set_yscale("log")
  else:
    lr_ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
  loss_ax.set_ylabel("loss")
  hit_ax.set_ylabel("hit@1")
  hit_ax.set_ylim(-0.02, 1.02)
  lr_ax.set_ylabel("learning rate")
  lr_ax.set_xlabel("training step")
  fig.suptitle(title, fontsize=10)
  return figures.save(fig, path)


# ------------------------------------------------------------------------------------- most wrong
def most_wrong(ev: Evaluation, names: Sequence[str], n: int) -> list[dict]:
  """The n videos most wrong (`metrics.most_wrong`), most wrong first: {video (row), video_id,
  true (class names), predicted, p (its probability), p_true (the best true class's), score}."""
  score, _ = metrics.wrongness(ev.probs, ev.labels)
  out = []
  for v in metrics.most_wrong(ev.probs, ev.labels, n):
    pred = int(np.argmax(ev.probs[v]))
    true = np.flatnonzero(ev.labels[v])
    out.append({"video": int(v), "video_id": ev.plan.video_ids[v],
                "true": [names[c] for c in true], "predicted": names[pred],
                "p": float(ev.probs[v, pred]),
                "p_true": float(ev.probs[v, true].max()) if true.size else 0.0,
                "score": float(score[v])})
  return out


def video_frames(ev: Evaluation, v: int, count: int = FRAMES_PER_VIDEO) -> np.ndarray:
  """uint8 (count, H, W, 3): frames evenly spread over the segments video v's clips come from."""
  from stcnn.data import sampling
  records = sorted({int(r) for r in ev.plan.clips[ev.plan.clips[:, 0] == v, 1]})
  segments = [ev.source[r]["frames"] for r in records]
  where = [(i, j) for i, seg in enumerate(segments) for j in range(len(seg))]
  picks = np.unique(np.linspace(0, len(where) - 1, count).round().astype(int))
  return np.stack([sampling.decode_clip(segments[where[k][0]], [where[k][1]])[0] for k in picks])


def _short(text: str, width: int = 44) -> str:
  return text if len(text) <= width else text[:width - 1] + "…"


def draw_most_wrong(ev: Evaluation, picked: list[dict], path: str) -> str:
  titles = [f"{k}. {_short(os.path.basename(p['video_id']))}\n"
            f"true: {_short(' + '.join(p['true']))} ({p['p_true']:.2f})\n"
            f"predicted: {_short(p['predicted'])} ({p['p']:.2f})"
            for k, p in enumerate(picked, 1)]
  per_line = 3 if len(picked) > 4 else len(picked)
  return figures.contact_sheet(
      [video_frames(ev, p["video"]) for p in picked], titles, path, per_line=per_line,
      frame_width=1.0, row_height=1.75, title_size=8,
      title=f"The {len(picked)} {ev.split} videos (of {len(ev.probs)}) the network gets most "
            f"wrong, step {ev.step} (probabilities in brackets; frames spread over each video)")


# -------------------------------------------------------------------------------------------- all
def visualize(workdir: str, out: str | None = None, checkpoint: str = "best",
              split: str | None = None, max_videos: int = 0,
              num_wrong: int = 12) -> dict:
  """Draws the four figures: {'written': {figure: path}, 'skipped': {figure: why}, 'confusion':
  the matrix drawn, 'most_wrong': `most_wrong`'s list, 'evaluation': the `Evaluation`}.

  FileNotFoundError naming the workdir when it has no config.json or no checkpoint."""
  from stcnn.predictor import Predictor
  workdir = os.path.abspath(os.path.expanduser(workdir))
  out = out or os.path.join(workdir, "plots")
  try:
    predictor = Predictor.from_workdir(workdir, checkpoint)
  except FileNotFoundError as e:
    raise FileNotFoundError(f"{workdir}: nothing to visualise: {e}") from e
  config, step, names = predictor.config, predictor.step, predictor.class_names
  written, skipped = {}, {}
  path = draw_filters(predictor.params, config, step, os.path.join(out, "filters.png"))
  if path:
    written["filters"] = path
  else:
    skipped["filters"] = "the network has no conv1 kernel (no tower, fovea or context stream)"
  try:
    rows = writers.read_metrics(workdir)
  except FileNotFoundError as e:
    skipped["curves"] = str(e)
  else:
    written["curves"] = draw_curves(rows, config, step, os.path.join(out, "curves.png"),
                                    f"{os.path.basename(workdir)}: learning curves")
  ev = evaluate_split(predictor, workdir, split or config.data.test_split, max_videos)
  written["confusion"], matrix = draw_confusion(ev, names, os.path.join(out, "confusion.png"))
  picked = most_wrong(ev, names, num_wrong)
  if picked:
    written["most_wrong"] = draw_most_wrong(ev, picked, os.path.join(out, "most_wrong.png"))
  else:
    skipped["most_wrong"] = (f"no {ev.split} video missed at hit@1" if num_wrong > 0
                             else "--num_wrong=0")
  return {"written": {k: written[k] for k in FIGURES if k in written}, "skipped": skipped,
          "confusion": matrix, "most_wrong": picked, "evaluation": ev}


# -------------------------------------------------------------------------------------------- CLI
FLAGS = flags.FLAGS


def define_flags():
  checkpoint_reader.define_workdir_flags()
  flags.DEFINE_string("out", None, "Folder of the PNGs (default <workdir>/plots).")
  flags.DEFINE_string("split", None, "The split evaluated (default config.data.test_split).")
  flags.DEFINE_integer("max_videos", 0, "Evaluate only the split's first N videos (0: all).",
                       lower_bound=0)
  flags.DEFINE_integer("num_wrong", 12, "Videos on most_wrong.png.", lower_bound=0)
  flags.mark_flags_as_required(["workdir"])


def main(argv):
  console.quiet_libraries()
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}")
  try:
    with contextlib.redirect_stdout(sys.stderr):  # stdout: the paths only (no data set chatter)
      done = visualize(FLAGS.workdir, FLAGS.out, FLAGS.checkpoint, FLAGS.split,
                       FLAGS.max_videos, FLAGS.num_wrong)
  except FileNotFoundError as e:
    print(f"stcnn.visualize: {e}", file=sys.stderr)
    return 1
  for name, why in done["skipped"].items():
    print(f"skipped {name}.png: {why}", file=sys.stderr)
  for path in done["written"].values():
    print(path, flush=True)
  return 0


if __name__ == "__main__":
  define_flags()
  app.run(main)
