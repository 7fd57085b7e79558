"""Your own videos: a folder-per-class tree or a CSV manifest.

Folder tree: `root/<class>/<video>` (videos may sit in subfolders of the class folder), all in split
"train"; or, when every top-level folder is a split name (train, val, test; `validation` is read as
val), `root/<split>/<class>/<video>`. Video id = the path below the split folder without extension.

CSV manifest: rows `path,label[;label...][,split]`, an optional header row starting with `path`;
paths relative to the CSV's folder (absolute ones allowed); labels are class names (several → a
multi-label video); split defaults to train. Listed files that do not exist count as missing.
Video id = the path as written, without extension.

[choice] Two files of one split with the same id (`walk/a.mp4` and `walk/a.avi`) are an error
naming both, rather than ids keeping the extension: ids stay extension-free (re-encoding a video
keeps its id) and a copy in two formats is almost always a mistake.

Class order (both): `classes.txt` (one name a line) next to the CSV / in the root fixes it; else the
leaves of `hierarchy.json` if present; else sorted names. `hierarchy.json` (format in
stcnn/data/__init__.py) is validated and carried into the data set's metadata.

Paths may be URIs (gs://...; `stcnn.fileio`).
"""
from __future__ import annotations

import csv
import io
import json
import os

from stcnn import fileio
from stcnn.data import builders

SPLIT_DIRS = {"train": "train", "val": "val", "validation": "val", "test": "test"}


def _class_order(found, directory) -> tuple[list[str], dict | None, dict[str, str]]:
  """(class names, hierarchy, files read) from classes.txt / hierarchy.json in `directory`.

  `found` maps each class name in use to where it was first seen (for error messages).
  """
  classes_path = os.path.join(directory, "classes.txt")
  hierarchy_path = os.path.join(directory, "hierarchy.json")
  files, hierarchy = {}, None
  if fileio.isfile(hierarchy_path):
    files["hierarchy.json"] = hierarchy_path
    try:
      hierarchy = json.loads(fileio.read_bytes(hierarchy_path))
    except json.JSONDecodeError as e:
      raise ValueError(f"{hierarchy_path}:{e.lineno}: invalid JSON: {e.msg}") from None
  if fileio.isfile(classes_path):
    files["classes.txt"] = classes_path
    names, source = [], classes_path
    for lineno, line in builders.numbered_lines(classes_path):
      if line in names:
        raise ValueError(f"{classes_path}:{lineno}: class {line!r} is listed twice")
      names.append(line)
  elif hierarchy is not None:
    if not isinstance(hierarchy, dict) or "names" not in hierarchy or "num_leaves" not in hierarchy:
      raise ValueError(f"{hierarchy_path}: expected a JSON object with names, parents, num_leaves")
    names, source = list(hierarchy["names"][:hierarchy["num_leaves"]]), hierarchy_path
  else:
    names, source = sorted(set(found)), None
  unknown = [name for name in found if name not in names]
  if unknown:
    raise ValueError(f"{source}: class {unknown[0]!r} (used at {found[unknown[0]]}) is not listed "
                     f"here ({len(unknown)} unlisted classes: {unknown[:10]})")
  if hierarchy is not None:
    hierarchy = builders.check_hierarchy(hierarchy, names, hierarchy_path)
  return names, hierarchy, files


def _videos_below(directory) -> list[str]:
  found = []
  for dirpath, dirnames, filenames in fileio.walk(directory):
    dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
    found += [os.path.join(dirpath, n) for n in sorted(filenames) if builders.is_video_file(n)]
  return found


def _subdirs(path) -> list[str]:
  return sorted(d for d in fileio.listdir(path)
                if not d.startswith(".") and fileio.isdir(os.path.join(path, d)))


def read_folder(root) -> builders.Listing:
  """Videos in `root/<class>/...` (split train) or `root/<split>/<class>/...`."""
  root = fileio.resolve(root)
  if not fileio.isdir(root):
    raise FileNotFoundError(f"{root}: not a folder (expected root/<class>/<video files>)")
  top = _subdirs(root)
  if not top:
    raise ValueError(f"{root}: no class folders (expected root/<class>/<video files>)")
  order = list(SPLIT_DIRS)
  split_dirs = ({SPLIT_DIRS[d]: d for d in sorted(top, key=order.index)}
                if set(top) <= set(SPLIT_DIRS) else {"train": "."})
  if len(split_dirs) < len(top) and split_dirs.keys() != {"train"}:
    raise ValueError(f"{root}: both val/ and validation/ present; keep one")
  split_dirs = {s: fileio.normpath(os.path.join(root, d)) for s, d in split_dirs.items()}
  found = {split: {c: _videos_below(os.path.join(d, c)) for c in _subdirs(d)}
           for split, d in split_dirs.items()}
  used = {}
  for split, per_class in found.items():
    for c in per_class:
      used.setdefault(c, os.path.join(split_dirs[split], c))
  empty = [c for c in used if not any(per_class.get(c) for per_class in found.values())]
  if empty:
    raise ValueError(f"{used[empty[0]]}: class folder {empty[0]!r} holds no video files "
                     f"({len(empty)} empty class folders: {empty[:10]}); add videos or remove it")
  class_names, hierarchy, files = _class_order(used, root)
  ids = {name: i for i, name in enumerate(class_names)}
  splits = {}
  for split, per_class in found.items():
    base, seen, splits[split] = split_dirs[split], {}, []
    for c, paths in per_class.items():
      for p in paths:
        video_id = os.path.splitext(os.path.relpath(p, base))[0].replace(os.sep, "/")
        if video_id in seen:
          raise ValueError(f"{seen[video_id]} and {p} have the same video id {video_id!r} (ids "
                           "are paths without extension); keep one of them")
        seen[video_id] = p
        splits[split].append(builders.Item(video_id, p, (ids[c],)))
  return builders.Listing(kind="folder", root=root, class_names=class_names, splits=splits,
                          files=files, hierarchy=hierarchy)


def read_csv(path) -> builders.Listing:
  """Videos listed in a CSV manifest `path,label[;label...][,split]`."""
  path = fileio.resolve(path)
  if not fileio.isfile(path):
    raise FileNotFoundError(f"{path}: no such CSV file (expected rows path,label[;label][,split])")
  base = os.path.dirname(path)
  rows = []
  with io.TextIOWrapper(fileio.open_binary(path), newline="", encoding="utf-8-sig") as f:
    for lineno, row in enumerate(csv.reader(f), 1):
      row = [c.strip() for c in row]
      if not any(row) or (lineno == 1 and row[0].lower() == "path"):
        continue
      labels = [x.strip() for x in row[1].split(";") if x.strip()] if len(row) >= 2 else []
      if len(row) not in (2, 3) or not row[0] or not labels:
        raise ValueError(f"{path}:{lineno}: expected 'path,label[;label...][,split]', got {row}")
      split = builders.check_split_name(row[2] if len(row) == 3 and row[2] else "train",
                                        f"{path}:{lineno}")
      rows.append((lineno, row[0], labels, split))
  if not rows:
    raise ValueError(f"{path}: no videos listed (expected rows path,label[;label][,split])")
  used = {}
  for lineno, _, labels, _ in rows:
    for name in labels:
      used.setdefault(name, f"{path}:{lineno}")
  class_names, hierarchy, files = _class_order(used, base)
  ids = {name: i for i, name in enumerate(class_names)}
  splits, seen, seen_ids = {}, {}, {}
  for lineno, rel, labels, split in rows:
    video_path = fileio.normpath(os.path.join(base, rel))
    if (split, video_path) in seen:
      raise ValueError(f"{path}:{lineno}: {rel} already listed in split {split} on line "
                       f"{seen[split, video_path]}")
    seen[split, video_path] = lineno
    video_id = os.path.splitext(rel)[0].replace("\\", "/")
    if (split, video_id) in seen_ids:
      other_line, other_rel = seen_ids[split, video_id]
      raise ValueError(f"{path}:{lineno}: {rel} has the same video id {video_id!r} as {other_rel} "
                       f"on line {other_line} (ids are paths without extension); keep one")
    seen_ids[split, video_id] = lineno, rel
    label_ids = tuple(dict.fromkeys(ids[x] for x in labels))
    splits.setdefault(split, []).append(
        builders.Item(video_id, video_path if fileio.isfile(video_path) else None, label_ids))
  files = {"manifest.csv": path, **files}
  return builders.Listing(kind="csv", root=base, class_names=class_names, splits=splits,
                          files=files, hierarchy=hierarchy)
