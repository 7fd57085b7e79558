"""The class tree's one structural rule, shared by the data sets (hierarchy.json) and the tree head.

A tree over `len(parents)` nodes: nodes 0..num_leaves-1 are the leaves (class ids), the rest are
internal; `parents[i]` is node i's parent, an internal node id, or -1 for a child of the implicit
root. Every internal node has a child and every node reaches the root without a cycle.
"""
from __future__ import annotations

from typing import Sequence


def check(parents: Sequence[int], num_leaves: int, names: Sequence[str] = (),
          where: str = "hierarchy") -> None:
  """Raises ValueError naming `where` and the offending node unless `parents` is such a tree."""
  n = len(parents)
  if names and len(names) != n:
    raise ValueError(f"{where}: {len(names)} names but {n} parents")
  if not 0 < num_leaves <= n:
    raise ValueError(f"{where}: num_leaves={num_leaves} must be in 1..{n} (the number of nodes)")
  for i, p in enumerate(parents):
    if p != -1 and not (num_leaves <= p < n and p != i):
      raise ValueError(f"{where}: parents[{i}]={p} is neither -1 nor an internal node id "
                       f"({num_leaves}..{n - 1}): the parent of node {i} must be one")
  childless = set(range(num_leaves, n)) - set(parents)
  if childless:
    raise ValueError(f"{where}: internal nodes {sorted(childless)} have no children")
  for i in range(n):  # every node's ancestors end at the root, without a cycle
    seen, node = [i], parents[i]
    while node != -1:
      if node in seen:
        label = f" ({names[i]!r})" if names else ""
        raise ValueError(f"{where}: node {i}{label} never reaches a root: its ancestors {seen} "
                         f"loop back to {node}")
      seen.append(node)
      node = parents[node]
