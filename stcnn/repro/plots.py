"""The report's figures, drawn from result files only; PNGs in `plots_dir` (the drawing that is
not the study's own, tiles of filters and a confusion matrix, is `stcnn.figures`'s).

  curves     validation video hit@1 vs step of every Table 1 network, mean ± std band over seeds
  table2     per-class AP, slow fusion − single-frame, sorted bars
  filters    first-layer (conv1) filters of the multires network's fovea and context streams
  confusion  slow fusion's test confusion matrix (summed over seeds), motion-sibling blocks boxed
"""
from __future__ import annotations

import os

import numpy as np

from stcnn import figures
from stcnn.repro.cells import T1_NETWORKS


def curves(t1_rows: dict, path: str) -> str | None:
  fig = figures.figure(figsize=(7, 4.2))
  ax = fig.subplots()
  drawn = False
  for network, (_, label) in T1_NETWORKS.items():
    runs = [r["curve"] for r in t1_rows.get(network, {}).values() if r.get("curve")]
    if not runs:
      continue
    steps = sorted(set.intersection(*({p["step"] for p in c} for c in runs)))
    values = np.array([[{p["step"]: p["val_video_hit@1"] for p in c}[s] for s in steps]
                       for c in runs], np.float64)
    mean, std = values.mean(0), values.std(0)
    (line,) = ax.plot(steps, mean, marker="o", ms=3, label=f"{label} ({len(runs)})")
    ax.fill_between(steps, mean - std, mean + std, color=line.get_color(), alpha=0.12)
    drawn = True
  if not drawn:
    return None
  ax.set(xlabel="training step", ylabel="validation video hit@1",
         title="Table 1 networks: mean ± std over seeds (seeds in brackets)")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7)
  return figures.save(fig, path)


def table2_bars(t2: dict, path: str) -> str | None:
  if not t2:
    return None
  order, diff, names = t2["order"], t2["diff"], t2["names"]
  fig = figures.figure(figsize=(max(6, 0.28 * len(order)), 4))
  ax = fig.subplots()
  ax.bar(range(len(order)), diff[order], color=["tab:green" if diff[c] >= 0 else "tab:red"
                                                for c in order])
  ax.set_xticks(range(len(order)), [names[c] for c in order], rotation=90, fontsize=6)
  ax.axhline(0, color="k", lw=0.6)
  ax.set(ylabel="AP(slow) − AP(single)",
         title=f"Per-class AP, slow fusion − single-frame ({len(t2['seeds'])} seed(s))")
  return figures.save(fig, path)


def filters(arrays: dict, title: str, path: str) -> str | None:
  """The multires network's fovea and context conv1 filters side by side (`arrays`: conv1_<stream>
  kernels, `stcnn.repro.run.first_layer_filters`)."""
  return figures.draw_filters({s: arrays[f"conv1_{s}"] for s in ("fovea", "context")
                               if f"conv1_{s}" in arrays}, title, path)


def confusion(matrix: np.ndarray, names, siblings, path: str) -> str:
  """Slow fusion's confusion matrix, classes in id order, each group of motion siblings boxed."""
  blocks = [(None, min(g), max(g), 0) for g in siblings or [] if len(g)]
  return figures.draw_confusion(
      matrix, names, path, blocks=blocks, ylabel="true class (first label)",
      title="Slow fusion, test: row-normalised confusion (orange: motion siblings)")


def make_all(res, t1_rows: dict, t2: dict, plots_dir: str) -> dict[str, str]:
  """Every figure the results allow: {name: path}."""
  out = {"curves": curves(t1_rows, os.path.join(plots_dir, "curves.png")),
         "table2": table2_bars(t2, os.path.join(plots_dir, "table2_ap_diff.png"))}
  multires = t1_rows.get("multires", {})
  if multires:
    seed = min(multires)
    arrays = res.arrays(multires[seed]["key"]) or {}
    out["filters"] = filters(arrays, f"Multires network, seed {seed}: first-layer filters",
                             os.path.join(plots_dir, "filters_fovea_context.png"))
  slow = [r for r in t1_rows.get("slow", {}).values() if "confusion" in r["test"]]
  if slow:
    matrix = np.sum([np.array(r["test"]["confusion"]) for r in slow], axis=0)
    names = slow[0].get("class_names") or [str(i) for i in range(len(matrix))]
    out["confusion"] = confusion(matrix, names, slow[0].get("siblings"),
                                 os.path.join(plots_dir, "confusion_slow.png"))
  return {k: v for k, v in out.items() if v}
