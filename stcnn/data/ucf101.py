"""UCF-101 (Soomro et al. 2012) in its official layout.

  <root>/UCF-101/<Class>/v_<Class>_gXX_cYY.avi
  <root>/ucfTrainTestlist/classInd.txt            "1 ApplyEyeMakeup" (1-based ids)
  <root>/ucfTrainTestlist/trainlist0{1,2,3}.txt   "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1"
  <root>/ucfTrainTestlist/testlist0{1,2,3}.txt    "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi"

The official split convention (split k tests on groups 1-7 / 8-14 / 15-21) is whatever the list
files say; we only read them. Label ids are 0-based (classInd id - 1); a test video's label comes
from its class folder. Files are matched case-insensitively, because the lists and the released
archive disagree on case (`HandStandPushups` vs `HandstandPushups`). Video id = the list's stem.
`root` may be the folder holding UCF-101/ and ucfTrainTestlist/, the UCF-101 folder itself, or a
parent of the root (one level); a URI (gs://...; `stcnn.fileio`) too. UCF-101's five action groups
are not in the release: hierarchy=None.
"""
from __future__ import annotations

import os

from stcnn import fileio
from stcnn.data import builders

SPLITS = (1, 2, 3)
VIDEO_DIRS = ("UCF-101", "UCF101")
LIST_DIR = "ucfTrainTestlist"
_LAYOUT = ("expected <root>/UCF-101/<Class>/*.avi and <root>/ucfTrainTestlist/classInd.txt, "
           "trainlist0N.txt, testlist0N.txt")


def find_root(path) -> tuple[str, str]:
  """(video dir, list dir) of a UCF-101 tree given the root, the UCF-101 folder or their parent."""
  path = fileio.resolve(path)
  if not fileio.isdir(path):
    raise FileNotFoundError(f"{path}: not a folder; {_LAYOUT}")
  candidates = [path, os.path.dirname(path)] + sorted(
      os.path.join(path, d) for d in fileio.listdir(path) if fileio.isdir(os.path.join(path, d)))
  for root in candidates:
    lists = [d for d in (os.path.join(root, LIST_DIR), root)
             if fileio.isfile(os.path.join(d, "classInd.txt"))]
    videos = [os.path.join(root, d) for d in VIDEO_DIRS if fileio.isdir(os.path.join(root, d))]
    if os.path.basename(root) in VIDEO_DIRS:
      videos.append(root)
    if lists and videos:
      return videos[0], lists[0]
  raise FileNotFoundError(f"{path}: no UCF-101 tree found here, in its parent or its children; "
                          f"{_LAYOUT}")


def read_class_index(path) -> list[str]:
  """Class names in id order from classInd.txt ("<1-based id> <name>" lines, ids 1..N in order)."""
  names = []
  for lineno, line in builders.numbered_lines(path):
    parts = line.split()
    if len(parts) != 2 or not parts[0].isdigit() or int(parts[0]) != len(names) + 1:
      raise ValueError(f"{path}:{lineno}: expected '{len(names) + 1} <ClassName>', got {line!r}")
    names.append(parts[1])
  if not names:
    raise ValueError(f"{path}: no classes listed")
  return names


def _read_list(path, class_ids, files):
  """Items of a trainlist/testlist file; `files` maps lower-case relative paths to real paths."""
  items, seen = [], set()
  for lineno, line in builders.numbered_lines(path):
    parts = line.split()
    rel = parts[0].replace("\\", "/")
    folder = rel.split("/")[0]
    if len(parts) > 2 or "/" not in rel or (len(parts) == 2 and not parts[1].isdigit()):
      raise ValueError(f"{path}:{lineno}: expected '<Class>/<video>.avi [<class id>]', "
                       f"got {line!r}")
    if folder.lower() not in class_ids:
      raise ValueError(f"{path}:{lineno}: class folder {folder!r} is not in classInd.txt")
    label = class_ids[folder.lower()]
    if len(parts) == 2 and int(parts[1]) - 1 != label:
      raise ValueError(f"{path}:{lineno}: label {parts[1]} disagrees with folder {folder!r} "
                       f"(classInd id {label + 1})")
    if rel.lower() in seen:
      raise ValueError(f"{path}:{lineno}: {rel} is listed twice")
    seen.add(rel.lower())
    video_id = os.path.splitext(os.path.basename(rel))[0]
    items.append(builders.Item(video_id, files.get(rel.lower()), (label,)))
  return items


def read(path, split: int = 1) -> builders.Listing:
  """The official train/test split `split` (1, 2 or 3) of the UCF-101 tree at `path`."""
  if split not in SPLITS:
    raise ValueError(f"UCF-101 split must be one of {SPLITS}, got {split!r}")
  video_dir, list_dir = find_root(path)
  class_index = os.path.join(list_dir, "classInd.txt")
  class_names = read_class_index(class_index)
  class_ids = {name.lower(): i for i, name in enumerate(class_names)}
  files = {}
  for dirpath, _, filenames in fileio.walk(video_dir):
    for name in filenames:
      full = os.path.join(dirpath, name)
      files[os.path.relpath(full, video_dir).replace(os.sep, "/").lower()] = full
  lists = {"train": os.path.join(list_dir, f"trainlist{split:02d}.txt"),
           "test": os.path.join(list_dir, f"testlist{split:02d}.txt")}
  for f in lists.values():
    if not fileio.isfile(f):
      raise FileNotFoundError(f"{f}: missing; {_LAYOUT}")
  root = os.path.dirname(video_dir)
  return builders.Listing(
      kind="ucf101", root=root, class_names=class_names,
      splits={s: _read_list(f, class_ids, files) for s, f in lists.items()},
      files={os.path.relpath(f, root): f for f in [class_index, *lists.values()]},
      config=f"split{split}")
