"""stcnn.visualize on the shared tiny trained workdir: the four PNGs and the numbers they draw (the
confusion counts, the most-wrong ranking), a workdir without metrics.jsonl or checkpoint; the
shared drawing (stcnn.figures) on the conv1 of every kind of network."""
import json
import os
import shutil
import types

import jax
import matplotlib.image
import numpy as np
import pytest

from stcnn import figures, metrics, models, visualize
from tests.helpers import ROOT, load_config

VIDEOS, WRONG = 10, 5  # of the 16 test videos


@pytest.fixture(scope="module")
def drawn(workdir, tmp_path_factory):
  out = tmp_path_factory.mktemp("plots")
  return out, visualize.visualize(str(workdir), str(out), max_videos=VIDEOS, num_wrong=WRONG)


def test_the_four_figures_are_written_and_decode(drawn):
  out, done = drawn
  assert done["written"] == {k: str(out / f"{k}.png") for k in visualize.FIGURES}
  assert done["skipped"] == {}
  for name, path in done["written"].items():
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and 300 <= min(image.shape[:2]) and max(image.shape[:2]) <= 3000, name
    assert image[..., :3].std() > 0.05, f"{name}: blank"
  # The contact sheet: 5 videos, 3 a line → 2 lines of 1.75 in, 3 × 4 frames of 1 in + 2 gaps.
  assert matplotlib.image.imread(done["written"]["most_wrong"]).shape[:2] == (350, 1260)


def test_the_confusion_drawn_counts_every_evaluated_video(drawn):
  _, done = drawn
  ev, drawn_matrix = done["evaluation"], done["confusion"]
  assert ev.split == "test" and ev.step == 10 and ev.probs.shape == (VIDEOS, 8)
  assert drawn_matrix.sum() == VIDEOS == ev.result["num_videos"]
  # The tiny set's class tree: 2 groups of 4 leaves, already contiguous, boxed.
  order, blocks = figures.class_order(ev.groups, 8)
  assert order == list(range(8))
  assert [b[1:] for b in blocks] == [(0, 3, 0), (4, 7, 0)]
  # Row = a video's first label (a multi-label video's is its first listed), column = top-1 class,
  # in the drawn order.
  first, top1 = ev.plan.first_labels, ev.probs.argmax(1)
  want = np.array([[np.sum((first == t) & (top1 == p)) for p in order] for t in order])
  np.testing.assert_array_equal(drawn_matrix, want)


def test_most_wrong_are_the_misses_ranked_by_wrongness(drawn, predictor):
  _, done = drawn
  ev, picked = done["evaluation"], done["most_wrong"]
  score, _ = metrics.wrongness(ev.probs, ev.labels)
  misses = np.flatnonzero([not ev.labels[v, c] for v, c in enumerate(ev.probs.argmax(1))])
  assert len(picked) == min(WRONG, len(misses)) > 0
  shown = [p["video"] for p in picked]
  assert set(shown) <= set(misses.tolist())
  scores = [p["score"] for p in picked]
  assert scores == sorted(scores, reverse=True) and min(scores) > 0
  left = np.setdiff1d(misses, shown)
  assert not left.size or score[left].max() <= min(scores)  # no miss left out is more wrong
  for p in picked:
    v, true = p["video"], np.flatnonzero(ev.labels[p["video"]])
    best_true = ev.probs[v, true].max()
    assert p["score"] == pytest.approx(np.delete(ev.probs[v], true).max() - best_true)
    assert p["p_true"] == pytest.approx(best_true)
    assert p["predicted"] == predictor.class_names[ev.probs[v].argmax()]
    assert p["p"] == pytest.approx(ev.probs[v].max())
    assert p["true"] == [predictor.class_names[c] for c in true]
    assert p["video_id"] == ev.plan.video_ids[v]


def test_wrongness_and_most_wrong_by_hand():
  probs = np.array([[.7, .2, .1], [.1, .6, .3], [.3, .3, .4], [.45, .1, .45], [.2, .5, .3],
                    [.05, .9, .05]])
  labels = np.zeros((6, 3), bool)
  for row, classes in enumerate([[0], [0], [2], [2], [1, 2], [2]]):
    labels[row, classes] = True
  score, wrong = metrics.wrongness(probs, labels)
  np.testing.assert_allclose(score, [-.5, .5, -.1, 0, -.3, .85], atol=1e-12)
  assert wrong.tolist() == [1, 1, 0, 0, 0, 1]
  # Row 3 ties 0.45 / 0.45: argmax takes class 0, a miss (score 0) ranked after the others.
  assert metrics.most_wrong(probs, labels, 10).tolist() == [5, 1, 3]
  assert metrics.most_wrong(probs, labels, 2).tolist() == [5, 1]
  everything = np.ones((1, 3), bool)
  assert metrics.wrongness(probs[:1], everything)[1].tolist() == [-1]


def _main(monkeypatch, workdir, **flags):
  """`python -m stcnn.visualize --workdir=... --flag=...` in this process: the exit status."""
  values = dict(workdir=str(workdir), out=None, checkpoint="best", split=None, max_videos=0,
                num_wrong=12)
  monkeypatch.setattr(visualize, "FLAGS", types.SimpleNamespace(**{**values, **flags}))
  return visualize.main(["visualize"])


def test_without_metrics_the_other_figures_are_drawn(workdir, tmp_path, monkeypatch, capsys):
  moved = tmp_path / "no_metrics"
  shutil.copytree(workdir, moved, ignore=shutil.ignore_patterns("tensorboard", "metrics.jsonl",
                                                                "plots"))
  assert _main(monkeypatch, moved, checkpoint="latest", max_videos=4, num_wrong=2) == 0
  out, err = capsys.readouterr()
  plots = moved / "plots"  # the default --out
  assert out.splitlines() == [str(plots / f"{k}.png") for k in ("filters", "confusion",
                                                                "most_wrong")]
  assert f"skipped curves.png: {moved / 'metrics.jsonl'}: no such file" in err
  assert not (plots / "curves.png").exists()
  for name in ("filters", "confusion", "most_wrong"):
    assert matplotlib.image.imread(plots / f"{name}.png").shape[0] > 100


def test_a_workdir_without_a_checkpoint_is_named(workdir, tmp_path, monkeypatch, capsys):
  bare = tmp_path / "bare"
  bare.mkdir()
  shutil.copy(workdir / "config.json", bare / "config.json")
  assert _main(monkeypatch, bare) == 1
  out, err = capsys.readouterr()
  assert out == "" and err.startswith(f"stcnn.visualize: {bare}: nothing to visualise: ")
  assert "no checkpoint" in err and not os.path.exists(bare / "plots")
  with pytest.raises(FileNotFoundError, match="no config.json"):
    visualize.visualize(str(tmp_path))


def _params(fusion, streams):
  """Random parameters of the tiny config's network (shapes only traced, nothing run)."""
  config = load_config(os.path.join(ROOT, "configs", "single_frame.py"),
                       f"tiny,fusion={fusion},streams={streams}")
  model, size = models.build(config), config.model.input_size
  video = jax.ShapeDtypeStruct((1, len(models.frame_offsets(config)), size, size, 3), np.float32)
  shapes = jax.eval_shape(lambda v: model.init(jax.random.PRNGKey(0), v), video)["params"]
  rng = np.random.default_rng(0)
  return jax.tree.map(lambda s: rng.normal(size=s.shape).astype(np.float32), shapes)


@pytest.mark.parametrize("fusion,streams,want", [
    ("single", "multires", {"fovea": 3, "context": 3}),  # side by side
    ("slow", "full", {"tower": 12}),  # 4 frames a filter
    ("early", "full", {"tower": 30}),  # 10 frames a filter
])
def test_conv1_of_every_network_is_drawn(fusion, streams, want, tmp_path):
  kernels = models.conv1_kernels(_params(fusion, streams))
  assert {k: v.shape[2] for k, v in kernels.items()} == want
  path = figures.draw_filters(kernels, fusion, str(tmp_path / "f.png"))
  image = matplotlib.image.imread(path)
  assert image.shape[0] > 300 and image[..., :3].std() > 0.05
  if streams == "multires":
    assert image.shape[1] > 1.5 * image.shape[0]  # two panels
  assert figures.draw_filters({}, "none", str(tmp_path / "g.png")) is None


def test_tile_filters_lays_frames_out_in_strips():
  kernel = np.arange(2 * 2 * 6 * 3, dtype=np.float64).reshape(2, 2, 6, 3)  # 3 filters, 2 frames
  tile = figures.tile_filters(kernel)
  # A strip is 2 frames of 2 px + 1 px gap = 5 px; 2 strips a line, 3 px apart; 2 lines.
  assert tile.shape == (2 * 2 + 3, 2 * 5 + 3, 3)
  f = kernel[..., 1]
  f = (f - f.min()) / (f.max() - f.min())  # scaled over both its frames
  np.testing.assert_allclose(tile[0:2, 8:10], f[:, :, 0:3])  # filter 1 (line 0, strip 1), frame 0
  np.testing.assert_allclose(tile[0:2, 11:13], f[:, :, 3:6])  # frame 1
  assert (tile[:, 2] == 1).all() and (tile[:, 5:8] == 1).all() and (tile[2:5] == 1).all()
  one_frame = figures.tile_filters(np.random.default_rng(0).normal(size=(3, 3, 3, 5)))
  assert one_frame.shape == (7, 11, 3)  # 3 × 2 grid, 1 px gaps (the report's tiles)


def test_class_order_keeps_groups_together():
  groups = {"all": range(6), "a": [4, 1], "a1": [4], "b": [0, 2], "b again": [2, 0]}
  order, blocks = figures.class_order(groups, 6)
  assert order == [0, 2, 4, 1, 3, 5]
  assert blocks == [("b", 0, 1, 0), ("a", 2, 3, 0), ("a1", 2, 2, 1)]
  assert figures.class_order({}, 3) == ([0, 1, 2], [])


def test_read_metrics_skips_a_half_written_row_and_keeps_the_last_evaluation(tmp_path):
  from stcnn import writers
  rows = [{"step": 5, "split": "train", "loss": 2.0}, {"step": 10, "split": "val", "x": 1},
          {"step": 10, "split": "val", "x": 2}]
  (tmp_path / "metrics.jsonl").write_text(
      "".join(json.dumps(r) + "\n" for r in rows) + '{"step": 15, "spl')
  assert writers.read_metrics(str(tmp_path)) == [rows[0], rows[2]]
  with pytest.raises(FileNotFoundError, match="metrics.jsonl: no such file"):
    writers.read_metrics(str(tmp_path / "none"))
