"""Output heads and their losses: the paper's flat softmax, and the hierarchical (tree) softmax.

Both heads return *scores* of shape (batch, num_classes) whose softmax is the leaf probability:
flat → logits; tree → leaf log-probabilities (already normalised, so softmax leaves them unchanged).
Evaluation therefore treats both alike.

Tree head [docs/paper.md §5, our extension]: a softmax over the children of every internal node; the
probability of a leaf is the product of the conditional probabilities along its path from the root.
Loss = −log P(leaf) − Σ_{ancestors a} log P(a), with P(a) = Σ_{leaves under a} P(leaf): a wrong
leaf under the right parent keeps P(parent) high and so costs less than a wrong leaf elsewhere.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from stcnn import classtree


@dataclasses.dataclass(frozen=True)
class Hierarchy:
  """A class tree. Nodes 0..num_leaves-1 are the leaves (class ids), the rest internal;
  parents[i] is node i's parent or -1 for a child of the (implicit) root."""
  parents: tuple[int, ...]
  num_leaves: int
  names: tuple[str, ...] = ()

  def __post_init__(self):
    classtree.check(self.parents, self.num_leaves, self.names)

  @classmethod
  def from_json(cls, obj_or_path) -> "Hierarchy":
    obj = obj_or_path
    if isinstance(obj, str):
      with open(obj) as f:
        obj = json.load(f)
    for key in ("parents", "num_leaves"):
      if key not in obj:
        raise ValueError(f"hierarchy: missing key {key!r}; expected "
                         "{'names': [...], 'parents': [...], 'num_leaves': L}")
    return cls(tuple(int(p) for p in obj["parents"]), int(obj["num_leaves"]),
               tuple(obj.get("names", ())))

  @classmethod
  def from_groups(cls, group_sizes: Sequence[int]) -> "Hierarchy":
    """Two-level tree: consecutive leaves grouped under len(group_sizes) internal nodes."""
    num_leaves = sum(group_sizes)
    parents = [num_leaves + g for g, n in enumerate(group_sizes) for _ in range(n)]
    return cls(tuple(parents) + (-1,) * len(group_sizes), num_leaves)

  def path_matrix(self) -> np.ndarray:
    """(num_leaves, num_nodes) 0/1: row l marks l and all of its ancestors."""
    m = np.zeros((self.num_leaves, len(self.parents)), np.float32)
    for leaf in range(self.num_leaves):
      node = leaf
      while node != -1:
        m[leaf, node] = 1.0
        node = self.parents[node]
    return m


class FlatHead(nn.Module):
  num_classes: int

  @nn.compact
  def __call__(self, x):
    return nn.Dense(self.num_classes, name="classifier")(x)


class TreeHead(nn.Module):
  """One logit per non-root node; softmax among siblings; leaf log-prob = Σ along the path."""
  hierarchy: Hierarchy

  @nn.compact
  def __call__(self, x):
    h = self.hierarchy
    n = len(h.parents)
    logits = nn.Dense(n, name="classifier")(x)
    group = np.asarray([p if p >= 0 else n for p in h.parents])  # sibling group = parent id
    gmax = jax.ops.segment_max(logits.T, group, num_segments=n + 1)
    gsum = jax.ops.segment_sum(jnp.exp(logits.T - gmax[group]), group, num_segments=n + 1)
    log_z = (gmax + jnp.log(gsum))[group].T  # (B, n) log normaliser of each node's group
    return (logits - log_z) @ jnp.asarray(h.path_matrix()).T  # (B, num_leaves)


def loss_fn(scores, targets, hierarchy: Hierarchy | None = None):
  """Per-example loss. `targets`: (B, C) soft targets (rows sum to 1).

  flat: softmax cross-entropy. tree: −Σ_l t_l [log P(l) + Σ_{a ancestor of l} log P(a)].
  """
  if hierarchy is None:
    return optax.softmax_cross_entropy(scores, targets)
  path = jnp.asarray(hierarchy.path_matrix())  # (L, n)
  leaf_logp = jax.nn.log_softmax(scores)  # = scores for TreeHead; guards other inputs
  # log P(node) = logsumexp over the leaves under it.
  node_logp = jax.nn.logsumexp(leaf_logp[:, :, None], axis=1, b=path[None])  # (B, n)
  return -jnp.einsum("bl,ln,bn->b", targets, path, node_logp)
