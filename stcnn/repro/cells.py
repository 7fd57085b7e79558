"""The study's cells: one run each (table, network, seed, split), its config and its commands.

A cell is identified by its key (`t1-slow-s0`, `t3-top3-s0-split1`, `speed`); what it runs is its
config file (`configs/slow_fusion.py:cpu`) plus the study's overrides (experiments/study.py) and
its seed. Machine-specific paths (data cache, prepared data sets, the workdir a fine-tuning run
starts from) are `Paths`, not part of a cell's identity.
"""
from __future__ import annotations

import dataclasses
import fnmatch
import importlib.util
import os
import shlex
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_STUDY = os.path.join(ROOT, "experiments", "study.py")

# Table 1 networks: name → (configs/ file, label); the order of the paper's Table 1.
T1_NETWORKS = {
    "single": ("single_frame", "single-frame"),
    "multires": ("multires", "single-frame + multires"),
    "fovea": ("fovea", "single-frame fovea only"),
    "context": ("context", "single-frame context only"),
    "early": ("early_fusion", "early fusion"),
    "late": ("late_fusion", "late fusion"),
    "slow": ("slow_fusion", "slow fusion"),
}
AVERAGE = ("single", "early", "late", "slow")  # the paper's "CNN average" [paper §4, Table 1]
TRANSFER_MODES = {"scratch": "from scratch", "top": "fine-tune top layer",
                  "top3": "fine-tune top 3 layers", "all": "fine-tune all layers"}
TABLES = ("1", "2", "3", "4", "speed")
# Which cells each table reads (Table 2 and 4 are views of Table 1 and 3 cells).
_NEEDS = {"1": ("t1", tuple(T1_NETWORKS)), "2": ("t1", ("single", "slow")),
          "3": ("t3", tuple(TRANSFER_MODES)), "4": ("t3", ("scratch", "top3", "top")),
          "speed": ("speed", ("speed",))}


def default_workdir(preset: str) -> str:
  return os.path.join("/tmp/stcnn-repro", preset)


def default_results(preset: str) -> str:
  return os.path.join(ROOT, "experiments", "results", preset)


@dataclasses.dataclass
class Paths:
  """Where things are on this machine (not part of any cell's identity)."""
  workdir: str  # root of the cells' workdirs
  results: str  # result files
  cache_dir: str = ""  # config.data.cache_dir ('' = the configs' default)
  data: str = ""  # a prepared data set for Table 1 ('' = the synthetic one)
  transfer_data: str = ""  # prepared UCF-101-layout data sets, '{split}' replaced by 1..3


@dataclasses.dataclass
class Cell:
  table: str  # "1", "3" or "speed"
  network: str  # a T1_NETWORKS key, a TRANSFER_MODES key, or "speed"
  seed: int | None
  split: int | None
  config: str  # configs/<file>.py:<arg>, relative to the repository
  overrides: dict  # dotted config key → value (the study's recipe and the seed)
  depends_on: str | None = None  # key of the cell whose workdir this one starts from
  source: dict | None = None  # that cell's identity: a fine-tuned cell is redone when it changes

  @property
  def key(self) -> str:
    if self.table == "speed":
      return "speed"
    split = f"-split{self.split}" if self.split else ""
    return f"t{self.table}-{self.network}-s{self.seed}{split}"

  def identity(self) -> dict:
    """What a finished cell's result must match for the cell to count as done."""
    source = {"source": self.source} if self.source else {}
    return {"config": self.config, "overrides": self.overrides, **source}


# ------------------------------------------------------------------------------------ the recipe
def _import_configs() -> None:
  if ROOT not in sys.path:
    sys.path.insert(0, ROOT)  # configs/*.py and experiments/study.py import configs.common


def load_file_config(spec: str):
  """`get_config(arg)` of `path[:arg]` (a path relative to the repository or absolute)."""
  _import_configs()
  path, _, arg = spec.partition(":")
  path = path if os.path.isabs(path) else os.path.join(ROOT, path)
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path}: no such config file")
  module_spec = importlib.util.spec_from_file_location(
      "_stcnn_repro_cfg_" + os.path.basename(path)[:-3], path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(arg)


def load_study(preset: str, study: str = DEFAULT_STUDY, seeds: int = 0):
  """The recipe of `preset` from the study file (`path[:key=value,...]`, extra keys after ':')."""
  path, _, extra = study.partition(":")
  config = load_file_config(f"{path}:{preset}" + (f",{extra}" if extra else ""))
  if seeds:
    config.seeds = seeds
  return config


def flatten(tree, prefix: str = "") -> dict:
  """A nested ConfigDict/dict → {dotted key: value}; tuples become lists (as JSON has them)."""
  out = {}
  for k, v in (tree.items() if hasattr(tree, "items") else []):
    if hasattr(v, "items"):
      out.update(flatten(v, f"{prefix}{k}."))
    else:
      out[f"{prefix}{k}"] = list(v) if isinstance(v, tuple) else v
  return out


def set_key(config, dotted: str, value) -> None:
  *path, last = dotted.split(".")
  node = config
  for p in path:
    node = node[p]
  node[last] = value


# ------------------------------------------------------------------------------------ the plan
def _spec(file: str, variant: str, *more: str) -> str:
  """configs/<file>.py[:arg] (the paper variant is the configs' default: no arg)."""
  arg = ",".join(a for a in ((variant if variant != "paper" else ""), *more) if a)
  return f"configs/{file}.py" + (f":{arg}" if arg else "")


def t1_cell(study, network: str, seed: int) -> Cell:
  file, _ = T1_NETWORKS[network]
  return Cell("1", network, seed, None, _spec(file, study.variant),
              {**flatten(study.table1), "seed": seed})


def t3_cell(study, mode: str, seed: int, split: int) -> Cell:
  source = None if mode == "scratch" else t1_cell(study, "slow", seed)
  return Cell("3", mode, seed, split,
              _spec("transfer_ucf101", study.variant, f"finetune={mode}", f"split={split}"),
              {**flatten(study.transfer), "seed": seed}, source and source.key,
              source and source.identity())


def speed_cell(study) -> Cell:
  return Cell("speed", "speed", None, None, "stcnn.bench.time_model", flatten(study.speed))


def splits_of(study, seed: int) -> tuple[int, ...]:
  """The UCF-101 splits seed `seed` fine-tunes on: all of `study.splits`, or with
  `study.split_per_seed` one each in turn (seed 0 → the first, ...), so that 3 seeds cover the
  3 splits once: Table 3's mean is then over splits and seeds together."""
  if study.get("split_per_seed"):
    return (study.splits[seed % len(study.splits)],)
  return tuple(study.splits)


def plan(study, tables, models=(), only=()) -> list[Cell]:
  """The cells `tables` need, dependencies first, without repeats. `models` keeps only those
  Table 1 networks / transfer modes (and what they depend on; the speed cell stays); `only` keeps
  cells whose key matches one of these glob patterns (and what they depend on)."""
  tables = TABLES if "all" in tables else tables
  bad = [t for t in tables if t not in TABLES]
  if bad:
    raise ValueError(f"--table: unknown {bad}; expected some of {list(TABLES)} or all")
  wanted = []
  for table in TABLES:
    if table not in tables:
      continue
    kind, names = _NEEDS[table]
    names = [n for n in names if not models or n in models]
    for seed in range(study.seeds):
      if kind == "t1":
        wanted += [t1_cell(study, n, seed) for n in names]
      elif kind == "t3":
        wanted += [t3_cell(study, n, seed, k) for n in names for k in splits_of(study, seed)]
    if kind == "speed":
      wanted.append(speed_cell(study))  # --models does not filter it
  if only:
    wanted = [c for c in wanted if any(fnmatch.fnmatch(c.key, p) for p in only)]
  by_key = {}
  for cell in wanted:
    if cell.depends_on and cell.depends_on not in by_key:
      by_key[cell.depends_on] = t1_cell(study, "slow", cell.seed)
    by_key.setdefault(cell.key, cell)
  return list(by_key.values())


# ------------------------------------------------------------------------- configs and commands
def workdir_of(paths: Paths, key: str) -> str:
  return os.path.join(os.path.abspath(os.path.expanduser(paths.workdir)), key)


def path_overrides(cell: Cell, paths: Paths) -> dict:
  """The machine's paths as config overrides (data cache, prepared data, init_from)."""
  out = {}
  if paths.cache_dir:
    out["data.cache_dir"] = os.path.abspath(os.path.expanduser(paths.cache_dir))
  data = paths.data if cell.table == "1" else paths.transfer_data.replace("{split}",
                                                                          str(cell.split))
  if data:
    from stcnn.data import prepared  # a prepared data set decides the number of classes
    out["data.name"] = "prepared"
    out["data.path"] = os.path.abspath(os.path.expanduser(data))
    out["num_classes"] = prepared.load(out["data.path"]).num_classes
  if cell.depends_on:
    out["init_from"] = workdir_of(paths, cell.depends_on)
  return out


def cell_config(cell: Cell, paths: Paths):
  """The cell's full training config: its file, the study's overrides, this machine's paths."""
  config = load_file_config(cell.config)
  extra = path_overrides(cell, paths)
  for key, value in {**cell.overrides, **extra}.items():
    set_key(config, key, tuple(value) if isinstance(value, list) else value)
  return config


def commands(cell: Cell, paths: Paths, preset: str) -> dict:
  """`cell`: the study command that reruns just this cell; `train`: the plain trainer command
  that trains it (its test metrics are the cell's; the study also keeps per-video outputs)."""
  study = ["python", "-m", "stcnn.repro", f"--preset={preset}", f"--cells={cell.key}"]
  if os.path.abspath(paths.workdir) != default_workdir(preset):
    study.append(f"--workdir={paths.workdir}")
  if os.path.abspath(paths.results) != default_results(preset):
    study.append(f"--results={paths.results}")
  if paths.cache_dir:
    study.append(f"--cache_dir={paths.cache_dir}")
  for flag in ("data", "transfer_data"):
    if getattr(paths, flag):
      study.append(f"--{flag}={getattr(paths, flag)}")
  out = {"cell": shlex.join(study)}
  if cell.table != "speed":
    train = ["python", "-m", "stcnn.main", f"--config={cell.config}",
             f"--workdir={workdir_of(paths, cell.key)}"]
    items = {**cell.overrides, **path_overrides(cell, paths)}
    train += [f"--config.{k}={','.join(map(str, v)) if isinstance(v, list) else v}"
              for k, v in items.items()]
    out["train"] = shlex.join(train)
  return out
