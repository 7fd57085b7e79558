"""The project's generic drawing: PNG figures with matplotlib, shared by `stcnn.visualize` (one
workdir), `stcnn.repro.plots` (the study's report) and `stcnn.inspect` (data contact sheets).

  figure / save      a matplotlib Figure without pyplot (no global state, no backend to pick:
                     PNGs go through Agg), saved with its folder made
  tile_filters       a conv1 kernel (h, w, 3·T, n) as one RGB image: a row of T frames a filter
  draw_filters       the tiles of one or more streams' conv1 side by side
  class_order        an order of the classes that keeps every group of a class tree contiguous
  draw_confusion     a row-normalised confusion matrix, counts written in, groups boxed
  contact_sheet      rows of frames (clips, videos), each with a caption, in one or more columns

Nothing here reads files or knows a workdir: the callers give arrays and text.
"""
from __future__ import annotations

import math
import os
from typing import Mapping, Sequence

import numpy as np

DPI = 110


# ------------------------------------------------------------------------------------ Agg + save
def figure(**kwargs):
  """A new matplotlib Figure (figsize=..., layout=...); draw with fig.subplots(...)."""
  from matplotlib.figure import Figure  # Agg through Figure.savefig: no pyplot, no backend state
  return Figure(**kwargs)


def save(fig, path: str, dpi: int = DPI, tight: bool = True) -> str:
  """Writes the figure as PNG at `path` (its folder made); `tight` trims it to what is drawn."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path, dpi=dpi, bbox_inches="tight" if tight else None)
  return path


# --------------------------------------------------------------------------------------- filters
def tile_filters(kernel: np.ndarray) -> np.ndarray:
  """(h, w, 3·T, n) conv1 kernel → one RGB image in [0, 1] of its n filters on a grid.

  A filter is a strip of its T frames (channel index = frame·3 + colour, `TemporalConv`), left to
  right with 1-pixel gaps, scaled to [0, 1] over all its frames together (so the frames of a
  filter compare); filters are 1 pixel apart (3 when they have several frames, to tell strips
  apart), on a grid of about as many pixels high as wide; the gaps are white.
  """
  h, w, channels, n = kernel.shape
  if channels % 3:
    raise ValueError(f"a conv1 kernel has 3·frames input channels, this one {channels}")
  t = channels // 3
  gap = 1 if t == 1 else 3
  strip_w = t * (w + 1) - 1
  cols = max(1, min(n, math.ceil(math.sqrt(n * (h + gap) / (strip_w + gap)))))
  rows = math.ceil(n / cols)
  out = np.ones((rows * (h + gap) - gap, cols * (strip_w + gap) - gap, 3))
  for i in range(n):
    f = np.asarray(kernel[:, :, :, i], np.float64)
    f = (f - f.min()) / max(float(f.max() - f.min()), 1e-12)
    r, c = divmod(i, cols)
    top, left = r * (h + gap), c * (strip_w + gap)
    for k in range(t):
      x = left + k * (w + 1)
      out[top:top + h, x:x + w] = f[:, :, 3 * k:3 * k + 3]
  return out


def draw_filters(kernels: Mapping[str, np.ndarray], title: str, path: str) -> str | None:
  """One panel a stream ({name: (h, w, 3·T, n) kernel}, drawn in that order), side by side;
  None when there is no kernel."""
  if not kernels:
    return None
  tiles = {name: tile_filters(k) for name, k in kernels.items()}
  high = max(t.shape[0] for t in tiles.values())
  wide = sum(t.shape[1] for t in tiles.values())
  # Inches a kernel pixel: the panels at least 4 in high, a pixel at least 3 screen pixels, the
  # figure at most 16 in wide.
  inch = min(max(4.0 / high, 3.0 / DPI), 16.0 / wide)
  widths = [max(t.shape[1] * inch, 2.5) for t in tiles.values()]
  fig = figure(figsize=(sum(widths) + 0.3 * (len(tiles) - 1), high * inch + 1.0),
               layout="constrained")
  fig.get_layout_engine().set(wspace=0.06)
  axes = np.atleast_1d(fig.subplots(1, len(tiles), width_ratios=widths))
  for ax, (name, tile), kernel in zip(axes, tiles.items(), kernels.values()):
    h, w, channels, n = kernel.shape
    frames = channels // 3
    ax.imshow(tile, interpolation="nearest")
    sub = f"{n} filters {h}×{w}"
    if frames > 1:
      sub += f" × {frames} frames\n(a strip a filter: frames 0..{frames - 1} left to right)"
    ax.set_title(f"{name} conv1: {sub}", fontsize=9)
    ax.axis("off")
  fig.suptitle(title, fontsize=10)
  return save(fig, path)


# ------------------------------------------------------------------------------------- confusion
def class_order(groups: Mapping[str, Sequence[int]],
                num_classes: int) -> tuple[list[int], list[tuple[str, int, int, int]]]:
  """(order, blocks): the classes 0..num_classes-1 in an order that keeps each group contiguous
  (depth first; sibling groups by their lowest class; classes of no subgroup after the subgroups,
  by id), and each group's (name, first position, last position, depth: 0 = top level).

  `groups` is {name: class ids}, e.g. `stcnn.evaluate.class_groups` of a class tree (every
  internal node's leaves, so nested groups are subsets). A group of every class, and a repeat of
  another group's classes, gets no block. Without groups the order is 0..num_classes-1.
  """
  sets: dict[frozenset, str] = {}
  for name, ids in groups.items():
    s = frozenset(int(i) for i in ids if 0 <= int(i) < num_classes)
    if s and s not in sets:
      sets[s] = name
  order: list[int] = []
  blocks: list[tuple[str, int, int, int]] = []

  def place(members: frozenset, depth: int) -> None:
    inner = [s for s in sets if s < members]
    top = sorted((s for s in inner if not any(s < t for t in inner)), key=min)
    for s in top:
      first = len(order)
      place(s, depth + 1)
      blocks.append((sets[s], first, len(order) - 1, depth))
    grouped = frozenset().union(*top)
    order.extend(sorted(members - grouped))

  place(frozenset(range(num_classes)), 0)
  return order, sorted(blocks, key=lambda b: (b[3], b[1]))


def draw_confusion(matrix, names: Sequence[str], path: str, *, title: str,
                   blocks: Sequence[tuple[str | None, int, int, int]] = (),
                   ylabel: str = "true class") -> str:
  """The (C, C) count matrix (rows true, columns predicted) as row-normalised colours, in the
  order given. Up to 30 classes each cell's count is written in and a row's total follows its
  name; up to 80 classes are named. `blocks`: (name or None, first, last position, depth) boxes
  (orange, thinner and dashed below depth 0), depth-0 names written above the matrix."""
  matrix = np.asarray(matrix)
  c = len(matrix)
  totals = matrix.sum(1)
  rows = matrix / np.maximum(totals[:, None], 1)
  side = max(4.5, 0.32 * c + 2.5) if c <= 30 else 0.17 * c + 3
  fig = figure(figsize=(side + 1.2, side))
  ax = fig.subplots()
  im = ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
  if c <= 30:
    size = 8 if c <= 12 else 6
    for (i, j), n in np.ndenumerate(matrix):
      if n:
        ax.text(j, i, str(int(n)), ha="center", va="center", fontsize=size,
                color="white" if rows[i, j] > 0.55 else "black")
  if c <= 80:
    size = 9 if c <= 12 else 7 if c <= 30 else 6 if c <= 60 else 5
    ylabels = [f"{n} ({int(t)})" for n, t in zip(names, totals)] if c <= 30 else list(names)
    ax.set_xticks(range(c), list(names), rotation=60, ha="right", rotation_mode="anchor",
                  fontsize=size)
    ax.set_yticks(range(c), ylabels, fontsize=size)
  from matplotlib.patches import Rectangle
  named = []
  for name, first, last, depth in blocks:
    lo, hi = first - 0.5, last + 0.5
    ax.add_patch(Rectangle((lo, lo), hi - lo, hi - lo, fill=False, ec="tab:orange",
                           lw=2.0 if depth == 0 else 1.0, ls="-" if depth == 0 else "--"))
    if name and depth == 0:
      named.append(((first + last) / 2, name))
  if named:
    top = ax.secondary_xaxis("top")
    top.set_xticks([x for x, _ in named], [n for _, n in named], fontsize=9,
                   color="tab:orange")
    top.tick_params(length=0)
  ax.set_xlabel("predicted class")
  ax.set_ylabel(ylabel + (" (videos)" if c <= 30 else ""))
  ax.set_title(title, fontsize=10, pad=22 if named else 6)
  fig.colorbar(im, ax=ax, fraction=0.04, label="fraction of the row")
  return save(fig, path)


# ---------------------------------------------------------------------------------- contact sheet
def _strip(frames: Sequence[np.ndarray], cols: int) -> tuple[np.ndarray, list[float]]:
  """(frames side by side on white, `cols` places wide; the x of each place's centre)."""
  h, w = frames[0].shape[:2]
  gap = max(1, w // 12)
  out = np.full((h, cols * (w + gap) - gap, 3), 255, np.uint8)
  for c, frame in enumerate(frames):
    out[:, c * (w + gap):c * (w + gap) + w] = frame
  return out, [c * (w + gap) + (w - 1) / 2 for c in range(cols)]


def contact_sheet(rows: Sequence[np.ndarray], titles: Sequence[str], path: str, *,
                  column_titles: Sequence[str] = (), per_line: int = 1,
                  frame_width: float = 1.3, row_height: float = 1.5, title_size: float = 7,
                  title: str = "", dpi: int = 100) -> str:
  """Each row (uint8 frames (T, H, W, 3)) a strip of frames with its title (caption) above, left
  aligned; `per_line` rows side by side, then the next line. A frame place is `frame_width` in
  wide, a line `row_height` in high (the sheet at least 4 in wide); `column_titles` under the
  frames of the last line; `title` above all."""
  cols = max(len(r) for r in rows)
  per_line = max(1, min(per_line, len(rows)))
  lines = math.ceil(len(rows) / per_line)
  width = frame_width * cols * per_line + 0.3 * (per_line - 1)
  fig = figure(figsize=(max(width, 4), row_height * lines))
  axes = fig.subplots(lines, per_line, squeeze=False)
  for ax in axes.flat:
    ax.axis("off")
  for i, (clip, caption) in enumerate(zip(rows, titles)):
    ax = axes[divmod(i, per_line)]
    strip, centres = _strip(clip, cols)
    ax.axis("on")
    ax.imshow(strip)
    ax.set_anchor("W")  # under its caption
    ax.set_yticks([])
    ax.set_xticks([])
    ax.spines[:].set_visible(False)
    ax.set_title(caption, fontsize=title_size, loc="left")
    if column_titles and i >= len(rows) - per_line:  # the last line
      ax.set_xticks(centres[:len(column_titles)], list(column_titles[:cols]), fontsize=6)
      ax.tick_params(length=0)
  if title:
    fig.suptitle(title, fontsize=9)
  fig.tight_layout()
  return save(fig, path, dpi=dpi, tight=False)
