"""Every config key's type and allowed values, in one table; `check(config)` refuses bad values.

`KEYS` maps each dotted key of configs/common.py:get_config (and so of every configs/*.py) to a
`Key`: its type and a test of its value, with the words an error quotes. `RULES` holds the checks
that read several keys. `check(config)` runs before any work (stcnn.main, the start of
`train.train_and_evaluate`, the evaluate CLI on a workdir's config.json; `models.build` checks the
model's part) and raises one ValueError naming the key, the value and what is allowed, e.g.

  config.optimizer.grad_clip = -1.0: expected 0 (off) or a positive float

Types: an int key refuses floats and bools; a float key takes ints and refuses NaN and ±inf.
A key the table does not know is refused too, naming the close matches: a new config key gets its
line here. Checks that need the data set (num_classes, crop and clip length against what is
stored) are `train.check_config(config, data)`'s.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
import dataclasses
import difflib
import math
import numbers
from typing import Any

from stcnn import models
from stcnn.data import transforms
from stcnn.data.synthetic import presets
from stcnn.models import layers, multires

# Where the allowed sets live elsewhere, the names are checked against them in
# tests/test_config_check.py: train.FINETUNE (layer lists), configs/common.py VARIANTS.
FINETUNE = ("all", "top3", "top")
VARIANTS = ("paper", "cpu", "tiny")
MAX_VIEWS = len(transforms.view_names(1 << 30))  # every view transforms knows (10)
MAX_SEED = 2**63 - 1  # numpy's SeedSequence refuses negative seeds, jax.random.key huge ones


@dataclasses.dataclass(frozen=True)
class Key:
  """What one config key may hold: a value of `type` that passes `test`; `allowed` in words."""
  type: type
  allowed: str
  test: Callable[[Any], bool] = lambda v: True
  optional: bool = False  # may be absent (the code reads it with .get and a default)

  def error(self, key: str, value) -> str | None:
    """The message refusing `value` for config.<key>, or None when it is allowed."""
    if self.type is bool:
      ok = isinstance(value, bool)
    elif self.type is int:
      ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    elif self.type is float:
      ok = (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isfinite(value))
    else:
      ok = isinstance(value, self.type)
    if ok and self.test(value):
      return None
    return f"config.{key} = {_show(value)}: expected {self.allowed}"


def _show(value) -> str:
  if isinstance(value, numbers.Real) and not isinstance(value, (bool, numbers.Integral)):
    return repr(float(value))  # nan, inf, -1.0 (not np.float64(-1.0))
  return repr(value)


def integer(lo: int, hi: int | None = None, allowed: str = "") -> Key:
  words = f"an int in {lo}..{hi}" if hi is not None else f"an int >= {lo}"
  return Key(int, allowed or words, lambda v: lo <= v and (hi is None or v <= hi))


def real(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
         hi_open: bool = False, allowed: str = "", optional: bool = False) -> Key:
  """A finite float in the interval lo..hi (each end closed unless *_open; None: unbounded)."""
  if lo is not None and hi is not None:
    words = f"a float in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
  elif lo is not None:
    words = f"a float {'>' if lo_open else '>='} {lo:g}"
  else:
    words = "a finite float"

  def test(v):
    above = lo is None or (v > lo if lo_open else v >= lo)
    below = hi is None or (v < hi if hi_open else v <= hi)
    return above and below
  return Key(float, allowed or words, test, optional)


def one_of(choices: Iterable, optional: bool = False) -> Key:
  choices = tuple(choices)
  return Key(type(choices[0]), f"one of {choices}", lambda v: v in choices, optional)


def text(nonempty: bool = False) -> Key:
  return Key(str, "a non-empty string" if nonempty else "a string", lambda v: bool(v) or
             not nonempty)


def flag(optional: bool = False) -> Key:
  return Key(bool, "True or False", optional=optional)


# ------------------------------------------------------------------------------------ the table
KEYS: dict[str, Key] = {
    "seed": integer(0, MAX_SEED),
    "variant": one_of(VARIANTS),  # informational: which size the config file picked
    "num_classes": integer(1),
    # model: stcnn.models
    "model.fusion": one_of(models.FUSIONS),
    "model.streams": one_of(models.STREAMS),
    "model.width": real(0, lo_open=True),  # channel multiplier
    "model.dropout": real(0, 1, hi_open=True),
    "model.head": one_of(models.HEADS),
    "model.hierarchy": text(),  # '' = the data set's; a hierarchy.json path or '6,6,6,6'
    "model.dtype": one_of(models.DTYPES, optional=True),  # compute dtype (params stay float32)
    "model.input_size": integer(1),  # the crop; see RULES for the size the network needs
    "model.early_frames": integer(1),
    "model.late_gap": integer(1),
    # data: stcnn.data.datasets, the pipeline and the evaluator
    "data.name": one_of(("synthetic", "prepared")),
    "data.preset": one_of(presets.PRESETS),
    "data.synthetic_seed": integer(0, MAX_SEED),
    "data.path": text(),  # '' = the synthetic data set
    "data.cache_dir": text(nonempty=True),
    "data.frame_size": integer(1),
    "data.mean": real(optional=True),
    "data.train_split": text(nonempty=True),
    "data.eval_split": text(nonempty=True),
    "data.test_split": text(nonempty=True),
    "data.worker_count": integer(0),  # 0 = decode in the main process
    "data.read_threads": integer(0),  # 0 = batches made by the consuming thread
    "data.cache_frames": flag(optional=True),
    "data.clips_per_video": integer(1),
    "data.views": integer(1, MAX_VIEWS),
    "data.max_eval_videos": integer(0, allowed="an int >= 0 (0 = all)"),
    "data.ucf_split": one_of((1, 2, 3)),
    "batch_size": integer(1),
    "eval_batch_size": integer(1),
    # optimizer: train.make_optimizer, train.make_plateau
    "optimizer.lr": real(0, lo_open=True),
    "optimizer.momentum": real(0, 1, hi_open=True),
    "optimizer.weight_decay": real(0),
    "optimizer.plateau_factor": real(0, 1, lo_open=True, hi_open=True),  # optax: (0, 1)
    "optimizer.plateau_patience": integer(1),  # optax: 0 would lower the lr on improvement
    "optimizer.grad_clip": real(0, allowed="0 (off) or a positive float"),
    "optimizer.schedule": one_of(("constant", "cosine")),
    "optimizer.warmup_steps": integer(0),
    # schedule and checkpoints
    "total_steps": integer(1),
    "log_every": integer(1),
    "eval_every": integer(1),
    "checkpoint_every": integer(1),
    "keep_checkpoints": integer(1),
    "init_from": text(),  # '' = from scratch; a workdir or checkpoint directory
    "finetune": one_of(FINETUNE),
}


# ----------------------------------------------------------------------------- cross-key rules
def min_input_size(streams: str) -> int:
  """The smallest crop whose conv towers still end at least 1×1 (SAME convs, 2×2 floor pools):
  22 full-frame, 20 for the multires streams (each sees half the crop, no last pool)."""
  full = streams == "full"

  def tower_output(size):
    for _, _, stride, pool in layers.CONVS:
      size = -(-size // stride) // (2 if pool else 1)
    return size // 2 if full else size
  size = 1
  while tower_output(size if full else multires.stream_size(size)) < 1:
    size += 1
  return size + 1 if not full and size % 2 else size


def _finetune(finetune, init_from):
  if finetune != "all" and not init_from:
    return (f"config.finetune={finetune!r} needs config.init_from (a workdir or checkpoint to "
            "start from)")


def _input_size(streams, size):
  if streams != "full" and size % 2:
    return (f"config.model.input_size: multires/fovea/context streams need an even frame size "
            f"(centre half + ×2 downsample), got {size}")
  if size < min_input_size(streams):
    return (f"config.model.input_size = {size}: the {streams} network needs crops of at least "
            f"{min_input_size(streams)} pixels (its conv towers would end empty)")


def _views(eval_batch_size, views):
  if eval_batch_size % views:
    return (f"config.eval_batch_size = {eval_batch_size} must be a multiple of config.data.views "
            f"({views}), so that the views of a clip share a batch")


# (the keys a rule reads, in its arguments' order; the rule: a message, or None when they agree)
RULES: tuple[tuple[tuple[str, ...], Callable[..., str | None]], ...] = (
    (("finetune", "init_from"), _finetune),
    (("model.streams", "model.input_size"), _input_size),
    (("eval_batch_size", "data.views"), _views),
)


# --------------------------------------------------------------------------------------- check
def flatten(config, prefix: str = "") -> dict[str, Any]:
  """{'optimizer.lr': 0.001, ...}: a ConfigDict's (or dict's) leaves by dotted key."""
  out = {}
  for k, v in config.items():
    if hasattr(v, "items"):
      out.update(flatten(v, f"{prefix}{k}."))
    else:
      out[f"{prefix}{k}"] = v
  return out


def close_keys(key: str, known: Iterable[str], n: int = 3) -> list[str]:
  """The known dotted keys closest to `key` (difflib): by last part within its group, then by the
  whole key, then by last part in any group ('lrr' → 'optimizer.lr')."""
  known = list(known)
  group, _, leaf = key.rpartition(".")
  leaves = {}
  for k in known:
    leaves.setdefault(k.rpartition(".")[2], []).append(k)
  siblings = {k.rpartition(".")[2]: k for k in known if k.rpartition(".")[0] == group}
  found = [siblings[m] for m in difflib.get_close_matches(leaf, siblings, n=n)]
  found += difflib.get_close_matches(key, known, n=n, cutoff=0.8)
  found += [k for m in difflib.get_close_matches(leaf, leaves, n=n, cutoff=0.75) for k in leaves[m]]
  return list(dict.fromkeys(found))[:n]


def unknown_key_message(key: str, known: Iterable[str], prefix: str = "config.") -> str:
  """One line: `config.optimizer.lrr: unknown key; did you mean config.optimizer.lr?`."""
  matches = close_keys(key, known)
  if matches:
    return (f"{prefix}{key}: unknown key; did you mean "
            f"{' or '.join(prefix + m for m in matches)}?")
  return f"{prefix}{key}: unknown key (the keys and their ranges: stcnn/config_check.py KEYS)"


def check(config, *, only: Iterable[str] | None = None, partial: bool = False) -> None:
  """Raises ValueError naming the first key whose value is not allowed (KEYS, then RULES).

  only: check just these keys and groups (e.g. ('num_classes', 'model')); other keys, known or
    not, are left alone.
  partial: absent keys and keys the table does not know pass (a workdir's config.json written by
    another version); the values present are still checked.
  """
  flat = flatten(config)
  only = None if only is None else tuple(only)

  def in_scope(key):
    return only is None or any(key == o or key.startswith(o + ".") for o in only)
  if not partial:
    for key in filter(in_scope, flat):
      if key in KEYS:
        continue
      members = [k for k in KEYS if k.startswith(key + ".")]
      if members:
        raise ValueError(f"config.{key} = {_show(flat[key])}: expected a group of keys "
                         f"({', '.join(members)})")
      raise ValueError(unknown_key_message(key, KEYS))
  for key, rule in KEYS.items():
    if not in_scope(key):
      continue
    if key not in flat:
      if partial or rule.optional:
        continue
      raise ValueError(f"config.{key} is missing; expected {rule.allowed}")
    message = rule.error(key, flat[key])
    if message:
      raise ValueError(message)
  for keys, rule in RULES:
    if all(in_scope(k) and k in flat for k in keys):
      message = rule(*(flat[k] for k in keys))
      if message:
        raise ValueError(message)
