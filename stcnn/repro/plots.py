"""The report's figures (matplotlib, Agg), drawn from result files only; PNGs in `plots_dir`.

  curves     validation video hit@1 vs step of every Table 1 network, mean ± std band over seeds
  table2     per-class AP, slow fusion − single-frame, sorted bars
  filters    first-layer (conv1) filters of the multires network's fovea and context streams
  confusion  slow fusion's test confusion matrix (summed over seeds), motion-sibling blocks boxed
"""
from __future__ import annotations

import math
import os

import numpy as np

from stcnn.repro.cells import T1_NETWORKS


def _pyplot():
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  return plt


def _save(fig, path: str) -> str:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  fig.savefig(path, dpi=110, bbox_inches="tight")
  _pyplot().close(fig)
  return path


def curves(t1_rows: dict, path: str) -> str | None:
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(7, 4.2))
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
    plt.close(fig)
    return None
  ax.set(xlabel="training step", ylabel="validation video hit@1",
         title="Table 1 networks: mean ± std over seeds (seeds in brackets)")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7)
  return _save(fig, path)


def table2_bars(t2: dict, path: str) -> str | None:
  if not t2:
    return None
  plt = _pyplot()
  order, diff, names = t2["order"], t2["diff"], t2["names"]
  fig, ax = plt.subplots(figsize=(max(6, 0.28 * len(order)), 4))
  ax.bar(range(len(order)), diff[order], color=["tab:green" if diff[c] >= 0 else "tab:red"
                                                for c in order])
  ax.set_xticks(range(len(order)), [names[c] for c in order], rotation=90, fontsize=6)
  ax.axhline(0, color="k", lw=0.6)
  ax.set(ylabel="AP(slow) − AP(single)",
         title=f"Per-class AP, slow fusion − single-frame ({len(t2['seeds'])} seed(s))")
  return _save(fig, path)


def _tile(kernel: np.ndarray) -> np.ndarray:
  """(h, w, 3·T, n) conv1 kernel → one RGB image of its n filters (first frame's 3 channels),
  each scaled to [0, 1] on its own, on a grid with 1-pixel gaps."""
  h, w, _, n = kernel.shape
  cols = math.ceil(math.sqrt(n))
  rows = math.ceil(n / cols)
  out = np.ones((rows * (h + 1) - 1, cols * (w + 1) - 1, 3))
  for i in range(n):
    f = kernel[:, :, :3, i]
    f = (f - f.min()) / max(float(f.max() - f.min()), 1e-12)
    r, c = divmod(i, cols)
    out[r * (h + 1):r * (h + 1) + h, c * (w + 1):c * (w + 1) + w] = f
  return out


def filters(arrays: dict, title: str, path: str) -> str | None:
  streams = [s for s in ("fovea", "context") if f"conv1_{s}" in arrays]
  if not streams:
    return None
  plt = _pyplot()
  fig, axes = plt.subplots(1, len(streams), figsize=(4 * len(streams), 4.3), layout="constrained")
  for ax, s in zip(np.atleast_1d(axes), streams):
    ax.imshow(_tile(arrays[f"conv1_{s}"]), interpolation="nearest")
    ax.set_title(f"{s} conv1 ({arrays[f'conv1_{s}'].shape[-1]} filters)")
    ax.axis("off")
  fig.suptitle(title)
  return _save(fig, path)


def confusion(matrix: np.ndarray, names, siblings, path: str) -> str:
  plt = _pyplot()
  c = len(matrix)
  fig, ax = plt.subplots(figsize=(max(5, 0.25 * c + 2), max(4.5, 0.25 * c + 1.5)))
  rows = matrix / np.maximum(matrix.sum(1, keepdims=True), 1)
  im = ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
  for group in siblings or []:
    lo, hi = min(group) - 0.5, max(group) + 0.5
    ax.add_patch(plt.Rectangle((lo, lo), hi - lo, hi - lo, fill=False, ec="tab:orange", lw=1))
  if c <= 60:
    ax.set_xticks(range(c), names, rotation=90, fontsize=5)
    ax.set_yticks(range(c), names, fontsize=5)
  ax.set(xlabel="predicted", ylabel="true (first label)",
         title="Slow fusion, test: row-normalised confusion (orange: motion siblings)")
  fig.colorbar(im, ax=ax, fraction=0.04)
  return _save(fig, path)


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
