"""Numbers the study derives from per-video predictions and from results (pure numpy).

Look / motion accuracy: the synthetic classes are look × motion (`stcnn.data.synthetic.taxonomy`);
`siblings` are the groups of leaves that share a look and differ only in motion. A video's look is
right when its predicted leaf is in its true (first) label's sibling group; its motion is right
when the prediction is the true leaf, counted among the videos whose look is right.

Verdicts on the paper's claims compare means over seeds against the seed spread: with
d = mean(a) − mean(b) and s = sqrt(std(a)² + std(b)²) (population std over seeds), "a > b"
holds when d > s, does not hold when d < −s, and is inconclusive (within seed spread) otherwise;
"a is no worse than b" holds when d ≥ −s (the paper's "similar accuracy" for multires, which
it found slightly better). With one seed there is no spread (s = 0): the verdict then only says
which mean is larger and is marked "(1 seed)".
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

HOLDS, FAILS, INCONCLUSIVE = "holds", "does not hold", "inconclusive (within seed spread)"
VERDICT_RULE = ("Verdicts: with d = the difference of the means over seeds and s = sqrt(std_a² + "
                "std_b²) (population std over seeds), \"a > b\" holds when d > s, does not hold "
                "when d < −s, and is inconclusive (within seed spread) otherwise; \"a is no worse "
                "than b\" holds when d ≥ −s. With one seed there is no spread: the verdict only "
                "says which mean is larger, marked (1 seed).")


def sibling_of(siblings: Sequence[Sequence[int]], num_classes: int) -> np.ndarray:
  """(C,) int: each leaf's sibling group (-1 when in none)."""
  group = np.full(num_classes, -1, np.int64)
  for g, ids in enumerate(siblings):
    group[list(ids)] = g
  return group


def look_motion_accuracy(confusion, siblings) -> dict:
  """{"look_accuracy", "motion_accuracy", "motion_chance"} from a (C, C) confusion matrix (rows =
  true first label, columns = predicted leaf)."""
  m = np.asarray(confusion, np.float64)
  group = sibling_of(siblings, len(m))
  look_cells = (group[:, None] == group[None, :]) & (group[:, None] >= 0)
  total, look = m.sum(), m[look_cells].sum()
  sizes = [len(s) for s in siblings if len(s)]
  return {"look_accuracy": float(look / total) if total else math.nan,
          "motion_accuracy": float(np.trace(m) / look) if look else math.nan,
          "motion_chance": float(np.mean([1 / n for n in sizes])) if sizes else math.nan}


def top_confusions(confusion, n: int = 10, siblings=None) -> list[dict]:
  """The `n` largest off-diagonal cells of a (C, C) confusion matrix (rows = true)."""
  m = np.array(confusion, np.float64)
  np.fill_diagonal(m, 0)
  group = sibling_of(siblings, len(m)) if siblings is not None else None
  out = []
  for flat in np.argsort(-m, axis=None, kind="stable")[:n]:
    t, p = divmod(int(flat), len(m))
    if m[t, p] <= 0:
      break
    row = {"true": t, "pred": p, "count": float(m[t, p])}
    if group is not None:
      row["siblings"] = bool(group[t] >= 0 and group[t] == group[p])
    out.append(row)
  return out


def sibling_error_share(confusion, siblings) -> tuple[float, float]:
  """(share of off-diagonal confusions between motion siblings, that share if errors were
  uniform over the other classes)."""
  m = np.array(confusion, np.float64)
  c = len(m)
  group = sibling_of(siblings, c)
  same = (group[:, None] == group[None, :]) & (group[:, None] >= 0)
  off = ~np.eye(c, dtype=bool)
  errors = m[off].sum()
  share = m[same & off].sum() / errors if errors else math.nan
  chance = float(np.mean([(same[i].sum() - 1) / (c - 1) for i in range(c)])) if c > 1 else math.nan
  return float(share), chance


def groups_of(hierarchy, num_classes: int) -> dict[str, list[int]]:
  """Leaf ids under each internal node of a hierarchy.json-style tree (Table 4's groups)."""
  if not hierarchy:
    return {}
  from stcnn.models.heads import Hierarchy
  h = Hierarchy.from_json(hierarchy)
  path = h.path_matrix()
  names = list(h.names) or [f"node{i}" for i in range(len(h.parents))]
  return {names[n]: np.flatnonzero(path[:num_classes, n]).tolist()
          for n in range(h.num_leaves, len(h.parents)) if path[:num_classes, n].any()}


def mean_std(values) -> tuple[float, float, int]:
  """(mean, population std, count) of the finite values; NaNs when there are none."""
  v = np.asarray([x for x in values if x is not None and np.isfinite(x)], np.float64)
  if not v.size:
    return math.nan, math.nan, 0
  return float(v.mean()), float(v.std()), int(v.size)


def fmt(values, digits: int = 3) -> str:
  """'0.612 ± 0.013' (mean ± std over seeds), '0.612' for one value, '–' for none."""
  m, s, n = mean_std(values)
  if not n:
    return "–"
  return f"{m:.{digits}f}" if n == 1 else f"{m:.{digits}f} ± {s:.{digits}f}"


def greater(a, b) -> tuple[str, float, float]:
  """Verdict on "a > b" over seeds, the mean difference and the seed spread (module doc)."""
  (ma, sa, na), (mb, sb, nb) = mean_std(a), mean_std(b)
  if not na or not nb:
    return "not measured", math.nan, math.nan
  d, s = ma - mb, math.hypot(sa, sb)
  one = " (1 seed)" if min(na, nb) < 2 else ""
  verdict = HOLDS if d > s else FAILS if d < -s or (one and d == 0) else INCONCLUSIVE
  return verdict + one, d, s


def no_worse(a, b) -> tuple[str, float, float]:
  """Verdict on "a is no worse than b beyond the seed spread" (d ≥ −s)."""
  (ma, sa, na), (mb, sb, nb) = mean_std(a), mean_std(b)
  if not na or not nb:
    return "not measured", math.nan, math.nan
  d, s = ma - mb, math.hypot(sa, sb)
  if min(na, nb) < 2:
    return "inconclusive (1 seed: no spread)", d, s
  return (HOLDS if d >= -s else FAILS), d, s


def combine(*verdicts: str) -> str:
  """All parts hold → holds; any part fails → does not hold; else inconclusive / not measured."""
  heads = [v.split(" (")[0] for v in verdicts]
  if any(h == FAILS for h in heads):
    return FAILS
  if any(h == "not measured" for h in heads):
    return "not measured"
  if all(h == HOLDS for h in heads):
    return HOLDS + (" (1 seed)" if any("1 seed" in v for v in verdicts) else "")
  return INCONCLUSIVE
