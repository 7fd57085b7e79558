"""RESULTS.md from the result files alone (`<results>/<key>.json` + `.npz`), never a workdir.

Tables 1–4 and speed, each number a mean ± std over seeds beside the paper's (docs/paper.md §3,
§4), the verdict on each of the paper's claims (stcnn.repro.analysis), plots (stcnn.repro.plots),
the commands, the machines and the wall time of every cell.
"""
from __future__ import annotations

import glob
import json
import math
import os

import numpy as np

from stcnn.repro import analysis, plots
from stcnn.repro.analysis import fmt
from stcnn.repro.cells import AVERAGE, T1_NETWORKS, TRANSFER_MODES

# docs/paper.md §4 (Table 1: clip hit@1, video hit@1, video hit@5, in %), §4 Table 3 (3-split
# accuracy, %), Table 4 (mean AP: scratch / top 3 / top), §3 speed (clips/s).
PAPER_T1 = {"single": (41.1, 59.3, 77.7), "multires": (42.4, 60.0, 78.5),
            "fovea": (30.0, 49.9, 72.8), "context": (38.1, 56.0, 77.2),
            "early": (38.9, 57.7, 76.8), "late": (40.7, 59.3, 78.7), "slow": (41.9, 60.9, 80.2),
            "average": (41.4, 63.9, 82.4)}
PAPER_T3 = {"scratch": 41.3, "top": 64.1, "top3": 65.4, "all": 62.2}
PAPER_T4 = {"human-object interaction": (.26, .55, .52), "body-motion only": (.32, .57, .52),
            "human-human interaction": (.40, .68, .65), "musical instruments": (.42, .65, .46),
            "sports": (.57, .79, .80), "all": (.44, .68, .66)}
PAPER_SPEED = {"single": (6, 21), "slow": (5, 10)}
SPEED_NEEDED = 1.6  # the claim's "≥ 1.6× faster" (the FLOP ratio is ~1.7×, docs/paper.md §3)
T4_MODES = ("scratch", "top3", "top")


class Results:
  """The result files of one results directory."""

  def __init__(self, results_dir: str):
    self.dir = results_dir
    self.all = {}
    for path in sorted(glob.glob(os.path.join(results_dir, "*.json"))):
      with open(path) as f:
        r = json.load(f)
      if isinstance(r, dict) and "key" in r:
        self.all[r["key"]] = r

  def t1(self, network: str) -> dict[int, dict]:
    return {r["seed"]: r for r in self.all.values()
            if r["table"] == "1" and r["network"] == network}

  def t3(self, mode: str) -> dict[int, list[dict]]:
    out = {}
    for r in sorted(self.all.values(), key=lambda r: (r.get("split") or 0)):
      if r["table"] == "3" and r["network"] == mode:
        out.setdefault(r["seed"], []).append(r)
    return out

  def arrays(self, key: str) -> dict | None:
    path = os.path.join(self.dir, f"{key}.npz")
    if not os.path.exists(path):
      return None
    with np.load(path, allow_pickle=False) as z:
      return dict(z)


def _num(x) -> float:
  return math.nan if x is None else float(x)


def _test(rows: dict, metric: str) -> list[float]:
  return [_num(r["test"].get(metric)) for r in rows.values()]


# ------------------------------------------------------------------------------------ Table 1
def cnn_average(res: Results) -> dict[int, dict]:
  """Per seed: the metrics of the mean per-video (and per-clip) probabilities of AVERAGE."""
  from stcnn import metrics
  out = {}
  members = {n: res.t1(n) for n in AVERAGE}
  for seed in sorted(set.intersection(*(set(m) for m in members.values()))):
    arrays = [res.arrays(members[n][seed]["key"]) for n in AVERAGE]
    if any(a is None for a in arrays) or any(
        not np.array_equal(a["video_ids"], arrays[0]["video_ids"]) for a in arrays):
      continue
    labels = arrays[0]["labels"]
    probs = np.mean([a["video_probs"] for a in arrays], axis=0)
    m = metrics.video_metrics(probs, labels, (1, 5), arrays[0]["first_labels"])
    clips = [a["clip_probs"] for a in arrays]
    if all(c.size and c.shape == clips[0].shape for c in clips):  # the same clip slots
      m["clip_hit@1"] = metrics.hit_at_k(np.mean(np.asarray(clips, np.float32), 0),
                                         labels[arrays[0]["clip_video"]], 1)
    siblings = members["slow"][seed].get("siblings")
    if siblings:
      m.update(analysis.look_motion_accuracy(m["confusion"], siblings))
    out[seed] = {"test": m, "key": f"average-s{seed}"}
  return out


def table1(res: Results) -> tuple[list[str], dict]:
  rows = {n: res.t1(n) for n in T1_NETWORKS}
  rows["average"] = cnn_average(res)
  labels = {**{n: label for n, (_, label) in T1_NETWORKS.items()},
            "average": "CNN average (single + early + late + slow)"}
  lines = ["| model | seeds | clip hit@1 | video hit@1 | video hit@5 | mean AP | look acc. | "
           "motion acc. | paper clip / video / hit@5 (%) |",
           "|---|---|---|---|---|---|---|---|---|"]
  for n, r in rows.items():
    if not r:
      continue
    cols = [fmt(_test(r, k)) for k in ("clip_hit@1", "video_hit@1", "video_hit@5", "mean_ap",
                                        "look_accuracy", "motion_accuracy")]
    paper = " / ".join(f"{v:.1f}" for v in PAPER_T1[n])
    lines.append(f"| {labels[n]} | {len(r)} | " + " | ".join(cols) + f" | {paper} |")
  chance = [r["test"].get("motion_chance") for rr in rows.values() for r in rr.values()]
  chance = [c for c in chance if c is not None]
  if chance:
    lines.append(f"\nMotion accuracy chance (a guess among the right look's siblings): "
                 f"{chance[0]:.3f}. Hit@1 chance: 1/{_num_classes(res)}.")
  return lines, rows


def _num_classes(res: Results) -> int:
  for r in res.all.values():
    if r["table"] == "1" and r.get("class_names"):
      return len(r["class_names"])
  return 0


# ------------------------------------------------------------------------------------ Table 2
def table2(res: Results) -> tuple[list[str], dict]:
  single, slow = res.t1("single"), res.t1("slow")
  seeds = sorted(set(single) & set(slow))
  if not seeds:
    return ["Needs the single-frame and slow-fusion cells of Table 1."], {}
  names = slow[seeds[0]].get("class_names") or []
  ap = lambda r: np.array([_num(x) for x in r["test"]["per_class_ap"]])
  diff = np.nanmean([ap(slow[s]) - ap(single[s]) for s in seeds], axis=0)
  ap_single = np.nanmean([ap(single[s]) for s in seeds], axis=0)
  ap_slow = np.nanmean([ap(slow[s]) for s in seeds], axis=0)
  order = np.argsort(-diff, kind="stable")
  names = names or [str(i) for i in range(len(diff))]
  lines = [f"Per-class AP, slow fusion minus single-frame, mean over {len(seeds)} seed(s); "
           "sorted, largest gain first.", "",
           "| class | single-frame AP | slow fusion AP | slow − single |", "|---|---|---|---|"]
  show = order if len(order) <= 40 else np.concatenate([order[:20], order[-20:]])
  lines += [f"| {names[c]} | {ap_single[c]:.3f} | {ap_slow[c]:.3f} | {diff[c]:+.3f} |"
            for c in show]
  k = min(5, len(order) // 2)
  lines += ["", "Motion helps most: " + ", ".join(f"{names[c]} {diff[c]:+.2f}" for c in order[:k]),
            "", "Motion hurts most: " + ", ".join(f"{names[c]} {diff[c]:+.2f}"
                                                  for c in order[::-1][:k])]
  lines += ["", *_camera_lines(res, single, slow, seeds), "", *_confusion_lines(slow, names)]
  return lines, {"diff": diff, "names": names, "order": order, "seeds": seeds}


def _camera_lines(res, single, slow, seeds) -> list[str]:
  """Video hit@1 on test videos with a static vs a moving (pan / zoom) camera."""
  from stcnn import metrics
  acc = {"single": {}, "slow": {}}
  for name, rows in (("single", single), ("slow", slow)):
    for s in seeds:
      a = res.arrays(rows[s]["key"])
      if a is None or "camera" not in a:
        return ["(Camera motion per video: not available for this data set.)"]
      hit = metrics.hits_at_k(a["video_probs"], a["labels"], 1)
      for cam in ("static", "pan", "zoom"):
        sel = a["camera"] == cam
        if sel.any():
          acc[name].setdefault(cam, []).append(float(hit[sel].mean()))
      acc[name].setdefault("count", {}).update({c: int((a["camera"] == c).sum())
                                                for c in ("static", "pan", "zoom")})
  lines = ["The synthetic set's camera motion is per video (pan or zoom of the background on 30% "
           "of videos), not per class: video hit@1 by camera, mean over seeds.", "",
           "| camera | test videos | single-frame | slow fusion | slow − single |",
           "|---|---|---|---|---|"]
  for cam in ("static", "pan", "zoom"):
    if cam in acc["slow"]:
      d = np.mean(acc["slow"][cam]) - np.mean(acc["single"][cam])
      lines.append(f"| {cam} | {acc['slow']['count'][cam]} | {fmt(acc['single'][cam])} | "
                   f"{fmt(acc['slow'][cam])} | {d:+.3f} |")
  return lines


def _confusion_lines(slow, names) -> list[str]:
  """Slow fusion's top confusions over seeds: from the whole matrices when the results keep them
  (up to 100 classes), else from each seed's top 20."""
  rows = list(slow.values())
  siblings = rows[0].get("siblings")
  mats = [np.array(r["test"]["confusion"]) for r in rows if "confusion" in r["test"]]
  if len(mats) == len(rows):
    total = np.sum(mats, axis=0)
    top = analysis.top_confusions(total, 10, siblings)
  else:
    total, merged = None, {}
    for r in rows:
      for c in r["test"].get("top_confusions", []):
        merged.setdefault((c["true"], c["pred"]), dict(c, count=0))["count"] += c["count"]
    top = sorted(merged.values(), key=lambda c: -c["count"])[:10]
  if not top:
    return []
  lines = [f"Top confusions of slow fusion (test videos, summed over {len(rows)} seed(s)):", "",
           "| true | predicted | videos | motion siblings? |", "|---|---|---|---|"]
  for c in top:
    sib = {True: "yes", False: "no"}.get(c.get("siblings"), "–")
    lines.append(f"| {names[c['true']]} | {names[c['pred']]} | {c['count']:.0f} | {sib} |")
  if siblings and total is not None:
    share, chance = analysis.sibling_error_share(total, siblings)
    lines += ["", f"{share:.0%} of slow fusion's errors are between motion siblings (uniform "
                  f"errors would give {chance:.0%})."]
  return lines


# ------------------------------------------------------------------------------- Tables 3 and 4
def split_means(res: Results, mode: str, metric: str) -> list[float]:
  """Per seed: the mean of `metric` over that seed's splits."""
  return [float(np.mean([_num(r["test"].get(metric)) for r in rows]))
          for rows in res.t3(mode).values()]


def table3(res: Results) -> list[str]:
  lines = ["| training | seeds | splits | clip hit@1 | video hit@1 (accuracy) | mean AP | "
           "paper accuracy |", "|---|---|---|---|---|---|---|"]
  for mode, label in TRANSFER_MODES.items():
    rows = res.t3(mode)
    if rows:
      splits = sorted({r["split"] for rr in rows.values() for r in rr})
      cols = [fmt(split_means(res, mode, k)) for k in ("clip_hit@1", "video_hit@1", "mean_ap")]
      lines.append(f"| {label} | {len(rows)} | {','.join(map(str, splits))} | "
                   + " | ".join(cols) + f" | {PAPER_T3[mode] / 100:.3f} |")
  return lines


def table4(res: Results) -> list[str]:
  groups = []
  for mode in T4_MODES:
    for rows in res.t3(mode).values():
      for r in rows:
        groups += [g for g in (r["test"].get("group_mean_ap") or {}) if g not in groups]
  if not groups:
    return ["No per-group AP: the transfer data set has no class hierarchy."]
  lines = ["| group | " + " | ".join(TRANSFER_MODES[m] for m in T4_MODES) + " |",
           "|---|---|---|---|"]

  def per_seed(mode, group):
    return [float(np.nanmean([_num((r["test"].get("group_mean_ap") or {}).get(group))
                              for r in rows])) for rows in res.t3(mode).values()]
  for g in groups:
    lines.append(f"| {g} | " + " | ".join(fmt(per_seed(m, g)) for m in T4_MODES) + " |")
  lines.append("| all | " + " | ".join(fmt(split_means(res, m, "mean_ap")) for m in T4_MODES)
               + " |")
  lines += ["", "The paper's UCF-101 groups (scratch / top 3 / top): " + "; ".join(
      f"{g} {'/'.join(f'{v:.2f}' for v in vals)}" for g, vals in PAPER_T4.items()) + "."]
  return lines


# ----------------------------------------------------------------------------------- speed
def speed(res: Results) -> tuple[list[str], dict]:
  r = res.all.get("speed")
  if not r:
    return ["Not measured (`--table=speed`)."], {}
  rows = r["rows"]
  lines = [f"Training clips/s, `stcnn.bench.time_model` (the trainer's step on a fixed batch of "
           f"{r['overrides']['batch']}, median of {r['overrides']['steps']} steps, size preset "
           f"`{r['overrides']['size']}`), on {r['machine']['devices']} ({r['machine']['cpu_count']}"
           " CPUs):", "", "| network | full frame | multires | speed-up | paper |",
           "|---|---|---|---|---|"]
  ratios = {}
  for full, multi in (("single", "multires"), ("slow", "multires_slow")):
    if full in rows and multi in rows:
      a, b = rows[full]["clips_per_s"], rows[multi]["clips_per_s"]
      ratios[full] = b / a
      pa, pb = PAPER_SPEED[full]
      lines.append(f"| {T1_NETWORKS[full][1]} | {a:.1f} | {b:.1f} | {b / a:.2f}× | {pa} → {pb} "
                   f"({pb / pa:.1f}×) |")
  return lines, ratios


# ------------------------------------------------------------------------------------ claims
def claims(res: Results, t1_rows: dict, ratios: dict) -> list[str]:
  v = lambda n, k="video_hit@1": _test(t1_rows.get(n, {}), k)
  out = []

  def claim(text, verdict, detail):
    out.append(f"| {text} | **{verdict}** | {detail} |")

  def says(a, b, result, what="video hit@1"):
    verdict, d, s = result
    if math.isnan(d):
      return f"{a} vs {b}: not measured"
    return f"{a} − {b} {what} = {d:+.3f} (spread {s:.3f}): {verdict}"

  parts = [(n, analysis.greater(v(n, "motion_accuracy"), v("single", "motion_accuracy")))
           for n in ("slow", "early", "late")]
  claim("Temporal networks beat single-frame on motion (motion accuracy; the verdict is slow "
        "fusion's)", parts[0][1][0],
        "; ".join(says(n, "single", r, "motion acc.") for n, r in parts))
  same = analysis.no_worse(v("multires"), v("single"))
  fast = ("not measured" if "single" not in ratios else
          analysis.HOLDS if ratios["single"] >= SPEED_NEEDED else analysis.FAILS)
  speedup = f"{ratios['single']:.2f}×" if "single" in ratios else "–"
  claim(f"Multires is no worse than full frame (within the seed spread) while ≥ {SPEED_NEEDED}× "
        "faster",
        analysis.combine(same[0], fast),
        says("multires", "single", same) + f"; speed-up {speedup}: {fast}")
  parts = [(n, analysis.greater(v("slow"), v(n))) for n in ("late", "early")]
  claim("Slow fusion ≥ late fusion and early fusion", analysis.combine(*(r[0] for _, r in parts)),
        "; ".join(says("slow", n, r) for n, r in parts))
  parts = [(n, analysis.greater(v("average"), v(n))) for n in AVERAGE]
  claim("The CNN average ≥ each of its members", analysis.combine(*(r[0] for _, r in parts)),
        "; ".join(says("average", n, r) for n, r in parts))
  t3 = {m: split_means(res, m, "video_hit@1") for m in TRANSFER_MODES}
  parts = [(m, analysis.greater(t3[m], t3["scratch"])) for m in ("top", "top3", "all")]
  claim("Fine-tuning beats training from scratch (UCF-101 stand-in)",
        analysis.combine(*(r[0] for _, r in parts)),
        "; ".join(says(m, "scratch", r, "accuracy") for m, r in parts))
  parts = [("top3", "top", analysis.greater(t3["top3"], t3["top"])),
           ("top", "all", analysis.greater(t3["top"], t3["all"]))]
  claim("Fine-tuning the top 3 layers ≥ the top layer ≥ all layers",
        analysis.combine(*(r[0] for _, _, r in parts)),
        "; ".join(says(a, b, r, "accuracy") for a, b, r in parts))
  return ["| claim [paper] | verdict | numbers (means over seeds) |", "|---|---|---|", *out,
          "", analysis.VERDICT_RULE]


# ---------------------------------------------------------------------------------- the report
def _duration(seconds: float) -> str:
  seconds = int(round(seconds))
  return f"{seconds // 3600} h {seconds // 60 % 60:02d} min" if seconds >= 3600 else \
      f"{seconds // 60} min {seconds % 60:02d} s"


def runs_section(res: Results) -> list[str]:
  lines = ["| cell | wall time | steps | resumed from | date (UTC) | host |",
           "|---|---|---|---|---|---|"]
  for key, r in sorted(res.all.items()):
    tr = r.get("train", {})
    lines.append(f"| {key} | {_duration(r['wall_time_s'])} | {tr.get('steps', '–')} | "
                 f"{tr.get('resumed_from_step', '–')} | {r['date']} | {r['machine']['host']} |")
  total = sum(r["wall_time_s"] for r in res.all.values())
  lines += ["", f"In all: {len(res.all)} cells, {_duration(total)} (sum of the cells' wall "
                "times; a resumed cell counts its last session only).", "", "Machines:", ""]
  machines = {json.dumps({k: v for k, v in r["machine"].items()}, sort_keys=True)
              for r in res.all.values()}
  lines += [f"- {', '.join(f'{k} {v}' for k, v in json.loads(m).items())}"
            for m in sorted(machines)]
  return lines


def commands_section(res: Results, preset: str) -> list[str]:
  lines = ["The whole study (finished cells are skipped; an interrupted cell resumes):", "",
           f"    python -m stcnn.repro --table=all --preset={preset}", "",
           f"This report alone, from the result files: "
           f"`python -m stcnn.repro --report_only --preset={preset}`.", "",
           "<details><summary>Each cell's command (the study's, then the plain trainer's)"
           "</summary>", ""]
  for key, r in sorted(res.all.items()):
    lines.append(f"- `{key}`: `{r['commands']['cell']}`")
    if "train" in r["commands"]:
      lines.append(f"  - `{r['commands']['train']}`")
  return lines + ["", "</details>"]


def recipe_section(res: Results) -> list[str]:
  lines = []
  for table, title in (("1", "Table 1 networks"), ("3", "Tables 3/4 transfer runs")):
    r = next((r for r in res.all.values() if r["table"] == table), None)
    if r:
      over = ", ".join(f"`{k}={v}`" for k, v in r["overrides"].items() if k != "seed")
      arg = r["config"].split(":", 1)[1] if ":" in r["config"] else ""
      if table == "1":
        where = f"`configs/<network>.py{':' + arg if arg else ''}`"
      else:
        where = f"`configs/transfer_ucf101.py:{arg.split('finetune=')[0]}finetune=<mode>,split=<k>`"
      lines.append(f"- {title}: {where} + {over}; seeds 0..n−1 (`seed`).")
  return lines


NOTES = "NOTES.md"  # in a results dir: the study's hand-written reading of its numbers


def discussion(results_dir: str) -> list[str]:
  """The hand-written `NOTES.md` of the results dir (why a claim fails here, what dominates the
  wall time, what was interrupted), under its own heading; nothing when there is none."""
  path = os.path.join(results_dir, NOTES)
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return ["## Discussion (hand-written: `" + os.path.basename(results_dir) + "/" + NOTES + "`)",
            "", f.read().strip(), ""]


def write_report(results_dir: str, report_path: str, plots_dir: str, preset: str) -> str:
  """Builds the report (and its plots) from the result files; returns the report's path."""
  res = Results(results_dir)
  t1_lines, t1_rows = table1(res)
  t2_lines, t2 = table2(res)
  speed_lines, ratios = speed(res)
  figures = plots.make_all(res, t1_rows, t2, plots_dir)
  rel = lambda p: os.path.relpath(p, os.path.dirname(os.path.abspath(report_path)))
  fig = lambda name, title: [f"![{title}]({rel(figures[name])})", ""] if name in figures else []
  md = [f"# Reproduction study: preset `{preset}`", "",
        "Generated by `python -m stcnn.repro` from the result files in "
        f"`{os.path.relpath(results_dir, os.path.dirname(os.path.abspath(report_path)))}` "
        "(one per cell: table, network, seed, split). Numbers are mean ± std over seeds "
        "(population std); the paper's are Sports-1M / UCF-101 (docs/paper.md §4), ours the "
        "synthetic stand-ins unless the commands say otherwise.", "", "Recipe "
        "(experiments/study.py):", "", *recipe_section(res), "",
        "## The paper's claims", "", *claims(res, t1_rows, ratios), "",
        *discussion(results_dir),
        "## Table 1: test set, hit rates", "", *t1_lines, "",
        *fig("curves", "validation video hit@1 vs step"),
        *fig("filters", "first-layer filters, fovea and context"),
        "## Table 2: where motion helps", "", *t2_lines, "",
        *fig("table2", "per-class AP, slow − single"),
        *fig("confusion", "confusion matrix of slow fusion"),
        "## Table 3: transfer (mean over splits)", "", *table3(res), "",
        "## Table 4: mean AP per group (transfer)", "", *table4(res), "",
        "## Speed", "", *speed_lines, "",
        "## Runs", "", *runs_section(res), "", "## Commands", "",
        *commands_section(res, preset), ""]
  os.makedirs(os.path.dirname(os.path.abspath(report_path)), exist_ok=True)
  with open(report_path, "w") as f:
    f.write("\n".join(md))
  return report_path
