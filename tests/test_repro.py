"""The reproduction study (stcnn.repro): every table, the report and plots on the `tiny` preset;
finished cells skipped; the plan, identities, verdicts and the paper's numbers."""
import json
import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from stcnn.repro import analysis, cells, report, run, study
from tests.helpers import ROOT

SPEED = {"single": 40.0, "multires": 100.0, "slow": 10.0, "multires_slow": 15.0}
KEYS = ([f"t1-{n}-s0" for n in cells.T1_NETWORKS] +
        [f"t3-{m}-s0-split1" for m in cells.TRANSFER_MODES] + ["speed"])


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
  """The whole tiny study (1 seed, a few steps, 1 transfer split), run once for the module. The
  speed cell's timer is a stand-in (bench.time_model itself: tests/test_bench.py): it records
  what it was asked to time and answers a known rate."""
  from stcnn import bench
  root = tmp_path_factory.mktemp("repro")
  paths = study.default_paths("tiny", str(root / "work"), str(root / "results"),
                              cache_dir=str(root / "cache"))
  kw = dict(report_path=str(root / "RESULTS-tiny.md"), plots_dir=str(root / "plots"),
            log=lambda line: None)
  timed = []

  def time_model(name, config, **kwargs):
    timed.append((name, config.model.input_size, config.batch_size, kwargs))
    return {"model": name, "clips_per_s": SPEED[name]}
  with pytest.MonkeyPatch.context() as mp:
    mp.setattr(bench, "time_model", time_model)
    out = study.run_study(["all"], "tiny", paths, **kw)
  return root, paths, kw, out, timed


def _in_unit(x):
  return x is None or (isinstance(x, (int, float)) and 0 <= x <= 1)


def test_tiny_study_writes_every_result_the_report_and_plots(tiny_study):
  root, paths, _, out, timed = tiny_study
  assert out["cells"] == {k: "ran" for k in KEYS}
  for key in KEYS:
    with open(os.path.join(paths.results, f"{key}.json")) as f:
      r = json.load(f)
    assert r["key"] == key and r["schema"] == run.SCHEMA
    assert r["machine"]["cpu_count"] and r["date"] and r["wall_time_s"] > 0
    assert r["commands"]["cell"].startswith("python -m stcnn.repro --preset=tiny")
    if key == "speed":
      assert {k: row["clips_per_s"] for k, row in r["rows"].items()} == SPEED
      recipe = cells.load_study("tiny").speed
      assert [(n, b, kw["steps"], kw["warmup"]) for n, _, b, kw in timed] == [
          (n, recipe.batch, recipe.steps, recipe.warmup) for n in SPEED]
      continue
    assert r["commands"]["train"].startswith("python -m stcnn.main --config=configs/")
    t = r["test"]
    for metric in ("clip_hit@1", "video_hit@1", "video_hit@5", "mean_ap", "look_accuracy",
                   "motion_accuracy"):
      assert _in_unit(t[metric]), (key, metric, t[metric])
    assert all(_in_unit(a) for a in t["per_class_ap"])
    assert np.array(t["confusion"]).sum() == t["num_videos"]
    assert r["curve"] and all(_in_unit(p["val_video_hit@1"]) for p in r["curve"])
    assert r["class_names"] and r["siblings"]
    arrays = np.load(os.path.join(paths.results, f"{key}.npz"))
    if r["network"] in cells.AVERAGE and r["table"] == "1":
      assert arrays["video_probs"].shape == (t["num_videos"], len(r["class_names"]))
      assert set(arrays["camera"]) <= {"static", "pan", "zoom"}
    if r["network"] == "multires":
      assert {"conv1_fovea", "conv1_context"} <= set(arrays)
    if r["table"] == "3":
      assert r["depends_on"] == (None if r["network"] == "scratch" else "t1-slow-s0")
      assert set(t["group_mean_ap"]) == set(r["groups"]) and len(r["groups"]) == 3

  with open(out["report"]) as f:
    md = f.read()
  for section in ("## The paper's claims", "## Table 1", "## Table 2", "## Table 3", "## Table 4",
                  "## Speed", "## Runs", "## Commands", "CNN average", "Motion helps most",
                  "Top confusions of slow fusion", "| static |", "In all: 12 cells",
                  "| 40.0 | 100.0 | 2.50× |", "| 10.0 | 15.0 | 1.50× |"):
    assert section in md, section
  verdicts = re.findall(r"\| \*\*(.+?)\*\* \|", md)
  assert len(verdicts) == 6
  assert all(v.split(" (")[0] in (analysis.HOLDS, analysis.FAILS, "inconclusive")
             for v in verdicts), verdicts
  table1 = md.split("## Table 1")[1].split("##")[0]
  for value in re.findall(r"\| (\d\.\d{3}) ", table1):
    assert 0 <= float(value) <= 1
  pngs = sorted(os.listdir(root / "plots"))
  assert pngs == ["confusion_slow.png", "curves.png", "filters_fovea_context.png",
                  "table2_ap_diff.png"]
  for png in pngs:
    assert f"(plots/{png})" in md
    assert os.path.getsize(root / "plots" / png) > 1000


def test_finished_cells_are_skipped_and_the_report_rebuilt_from_results(tiny_study, monkeypatch):
  root, paths, kw, _, _ = tiny_study
  from stcnn import bench, train

  def refuse(*args, **kwargs):
    raise AssertionError("a finished cell ran again")
  monkeypatch.setattr(train, "train_and_evaluate", refuse)
  monkeypatch.setattr(bench, "time_model", refuse)
  stamp = {p: os.path.getmtime(os.path.join(paths.results, p)) for p in os.listdir(paths.results)}
  os.remove(kw["report_path"])
  out = study.run_study(["all"], "tiny", paths, **kw)
  assert out["cells"] == {k: "skipped" for k in KEYS}
  assert stamp == {p: os.path.getmtime(os.path.join(paths.results, p))
                   for p in os.listdir(paths.results)}
  assert os.path.exists(kw["report_path"])

  # A longer budget is not finished, nor is what fine-tunes from it; its workdir continues.
  recipe = cells.load_study("tiny", cells.DEFAULT_STUDY + ":steps=6")
  cell, top = cells.t1_cell(recipe, "slow", 0), cells.t3_cell(recipe, "top", 0, 1)
  assert not run.finished(cell, paths.results) and not run.finished(top, paths.results)
  assert run.finished(cells.t3_cell(recipe, "scratch", 0, 1), paths.results)  # no source
  config = cells.cell_config(cell, paths)
  workdir = cells.workdir_of(paths, cell.key)
  with pytest.raises(ValueError, match="fine-tunes from t1-slow-s0 as"):
    run.run_training_cell(top, paths)  # its source has not been continued yet
  assert run._claim_workdir(workdir, cell, config) == 4  # resumes the 4-step run's last step
  with open(os.path.join(workdir, run.MARKER)) as f:
    assert json.load(f)["overrides"]["total_steps"] == 6
  # Anything else changed (here the lr) is another run: refused, not mixed.
  other = cells.t1_cell(cells.load_study("tiny"), "slow", 0)
  other.overrides["optimizer.lr"] = 0.01
  with pytest.raises(ValueError, match="the study recipe changed"):
    run._claim_workdir(workdir, other, cells.cell_config(other, paths))


def test_plan_dependencies_filters_and_commands(tmp_path):
  recipe = cells.load_study("cpu", seeds=2)
  assert recipe.table1.total_steps == 6000 and recipe.splits == (1, 2, 3)
  every = cells.plan(recipe, ["all"])
  assert len(every) == 7 * 2 + 4 * 2 + 1  # cpu: one split per seed
  t4 = [c.key for c in cells.plan(recipe, ["4"], only=["t3-top3-s1-*"])]
  assert t4 == ["t1-slow-s1", "t3-top3-s1-split2"]
  recipe.split_per_seed = False
  t4 = [c.key for c in cells.plan(recipe, ["4"], only=["t3-top3-s1-*"])]
  assert t4 == ["t1-slow-s1", "t3-top3-s1-split1", "t3-top3-s1-split2", "t3-top3-s1-split3"]
  assert [c.key for c in cells.plan(recipe, ["2"], models=["slow"])] == ["t1-slow-s0",
                                                                        "t1-slow-s1"]
  with pytest.raises(ValueError, match="--table"):
    cells.plan(recipe, ["5"])
  paths = study.default_paths("cpu", str(tmp_path / "w"), str(tmp_path / "r"))
  cell = cells.t3_cell(recipe, "top", 1, 2)
  cmd = cells.commands(cell, paths, "cpu")["train"]
  assert "--config=configs/transfer_ucf101.py:cpu,finetune=top,split=2" in cmd
  assert f"--config.init_from={tmp_path / 'w' / 't1-slow-s1'}" in cmd
  config = cells.cell_config(cell, paths)
  assert (config.seed, config.total_steps, config.finetune, config.data.ucf_split) == (1, 600,
                                                                                       "top", 2)


def test_dry_run_cli(tmp_path):
  proc = subprocess.run(
      [sys.executable, "-m", "stcnn.repro", "--preset=tiny", "--table=3", "--models=top",
       "--dry_run", f"--workdir={tmp_path}", f"--results={tmp_path}"],
      cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr
  assert [line.split(":")[0] for line in proc.stdout.splitlines() if not line.startswith(" ")] \
      == ["t1-slow-s0", "t3-top-s0-split1"]


def test_verdicts():
  assert analysis.greater([0.6, 0.62, 0.61], [0.5, 0.52, 0.51])[0] == analysis.HOLDS
  assert analysis.greater([0.5, 0.52], [0.6, 0.61])[0] == analysis.FAILS
  assert analysis.greater([0.5, 0.6], [0.52, 0.61])[0] == analysis.INCONCLUSIVE
  assert analysis.greater([0.6], [0.5])[0] == analysis.HOLDS + " (1 seed)"
  assert analysis.no_worse([0.5, 0.6], [0.52, 0.58])[0] == analysis.HOLDS  # within the spread
  assert analysis.no_worse([0.6, 0.62], [0.5, 0.51])[0] == analysis.HOLDS  # better
  assert analysis.no_worse([0.5, 0.51], [0.6, 0.62])[0] == analysis.FAILS
  assert analysis.greater([], [0.5])[0] == "not measured"
  assert analysis.combine(analysis.HOLDS, analysis.INCONCLUSIVE) == analysis.INCONCLUSIVE
  assert analysis.combine(analysis.HOLDS, analysis.FAILS) == analysis.FAILS
  assert analysis.fmt([0.5, 0.7]) == "0.600 ± 0.100"


def test_look_and_motion_accuracy_from_the_confusion_matrix():
  siblings = [[0, 1], [2, 3]]
  confusion = [[3, 1, 0, 0],  # class 0: 3 right, 1 sibling (right look, wrong motion)
               [0, 2, 2, 0],  # class 1: 2 right, 2 wrong look
               [0, 0, 4, 0],
               [0, 0, 0, 0]]
  out = analysis.look_motion_accuracy(confusion, siblings)
  assert out["look_accuracy"] == pytest.approx(10 / 12)
  assert out["motion_accuracy"] == pytest.approx(9 / 10)
  assert out["motion_chance"] == 0.5
  assert analysis.sibling_error_share(confusion, siblings) == (pytest.approx(1 / 3),
                                                              pytest.approx(1 / 3))
  top = analysis.top_confusions(confusion, 5, siblings)
  assert top[0] == {"true": 1, "pred": 2, "count": 2.0, "siblings": False}
  assert top[1] == {"true": 0, "pred": 1, "count": 1.0, "siblings": True}


def test_paper_numbers_match_docs_paper_md():
  with open(os.path.join(ROOT, "docs", "paper.md")) as f:
    doc = f.read()
  rows = dict(re.findall(r"^\| (.+?) \| ([\d.]+ \| [\d.]+ \| [\d.]+) \|$", doc, re.M))
  names = {"single": "single-frame", "multires": "single-frame + multires",
           "fovea": "single-frame fovea only", "context": "single-frame context only",
           "early": "early fusion", "late": "late fusion", "slow": "slow fusion",
           "average": "CNN average (single + early + late + slow)"}
  for key, name in names.items():
    assert tuple(float(x) for x in rows[name].split(" | ")) == report.PAPER_T1[key], key
  for mode, text in (("scratch", "from scratch"), ("top", "fine-tune top layer"),
                     ("top3", "top 3 layers"), ("all", "all layers")):
    assert f"{text} {report.PAPER_T3[mode]}%" in doc, mode
  assert not math.isnan(report.PAPER_T4["all"][0])


def test_report_aggregates_seeds_from_result_files_alone(tiny_study, tmp_path):
  """A second seed (the tiny results copied, video hit@1 changed) gives mean ± std, claims with a
  seed spread and curve bands: the report reads the result files only (the workdirs are gone)."""
  _, paths, _, _, _ = tiny_study
  results = tmp_path / "results"
  results.mkdir()
  for name in os.listdir(paths.results):
    with open(os.path.join(paths.results, name), "rb") as f:
      blob = f.read()
    (results / name).write_bytes(blob)
    if name.endswith(".json") and "-s0" in name:
      r = json.loads(blob)
      r.update(key=r["key"].replace("-s0", "-s1"), seed=1, workdir="/nonexistent")
      r["test"]["video_hit@1"] = 0.5 * r["test"]["video_hit@1"] + 0.25
      (results / f"{r['key']}.json").write_text(json.dumps(r))
    elif name.endswith(".npz"):
      (results / name.replace("-s0", "-s1")).write_bytes(blob)
  (results / report.NOTES).write_text("Slow fusion's cells dominate the wall time.\n")
  path = report.write_report(str(results), str(tmp_path / "R.md"), str(tmp_path / "plots"),
                             "tiny")
  with open(path) as f:
    md = f.read()
  assert "| slow fusion | 2 | " in md and " ± " in md.split("## Table 1")[1]
  discussion = md.split("## Discussion")[1].split("## Table 1")[0]
  assert "Slow fusion's cells dominate the wall time." in discussion
  claims = [line for line in md.split("## Table 1")[0].splitlines() if "| **" in line]
  assert len(claims) == 6 and not any("(1 seed)" in line for line in claims)
  assert "| from scratch | 2 | 1 |" in md
  assert os.path.exists(tmp_path / "plots" / "curves.png")


def test_plots_filters_and_confusion_from_arrays(tmp_path):
  """The report's filter and confusion figures (drawn by stcnn.figures) from result arrays alone,
  as the report reads them: the multires streams only, the motion siblings boxed."""
  from matplotlib.image import imread

  from stcnn.repro import plots
  rng = np.random.default_rng(0)
  arrays = {f"conv1_{s}": rng.normal(size=(11, 11, 3, 24)).astype(np.float32)
            for s in ("fovea", "context", "tower")}
  path = plots.filters(arrays, "Multires network, seed 0", str(tmp_path / "f.png"))
  image = imread(path)
  assert image.shape[1] > 1.5 * image.shape[0] > 300  # fovea | context, the tower left out
  assert plots.filters({"conv1_tower": arrays["conv1_tower"]}, "x", str(tmp_path / "g.png")) is None
  matrix = rng.integers(0, 5, (8, 8))
  path = plots.confusion(matrix, [f"c{i}" for i in range(8)], [[0, 1], [2, 3]],
                         str(tmp_path / "c.png"))
  assert min(imread(path).shape[:2]) > 300
  assert run.read_curve(str(tmp_path), "val")[0] == []  # no metrics.jsonl: no curve
  lines = [{"step": 5, "split": "train", "loss": 2.0, "clips_per_sec": 10.0},
           {"step": 10, "split": "val", "video_hit@1": 0.25},
           {"step": 10, "split": "val", "video_hit@1": 0.5}]  # evaluated again: the last counts
  (tmp_path / "metrics.jsonl").write_text(
      "".join(json.dumps(r) + "\n" for r in lines) + '{"step": 15, "split": "tr')  # half-written
  assert run.read_curve(str(tmp_path), "val") == (
      [{"step": 10, "val_video_hit@1": 0.5, "train_loss": 2.0}], {"clips_per_sec": 10.0})


def test_a_results_directory_gets_its_own_report_and_plots():
  """Another results directory (e.g. a longer budget's) never overwrites the cpu study's report."""
  assert study.default_report("cpu", cells.default_results("cpu")).endswith(
      os.path.join("experiments", "RESULTS.md"))
  assert study.default_report("cpu", "experiments/results/cpu-12k/").endswith("RESULTS-cpu-12k.md")
  assert study.default_report("paper").endswith("RESULTS-paper.md")
  assert study.default_plots("cpu", "x/cpu-12k").endswith(os.path.join("plots", "cpu-12k"))
