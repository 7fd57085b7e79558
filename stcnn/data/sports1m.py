"""Sports-1M (Karpathy et al. 2014): the released partitions over the videos you downloaded.

Release (github.com/gtoderici/sports-1m-dataset, CC BY 3.0, see SPORTS1M_LICENSE.txt):
`train_partition.txt` and `test_partition.txt`, one video a line, `<YouTube URL> <id>[,<id>...]`
(0-based ids into `labels.txt`, ~5% of videos have several); `labels.txt` ships with this package
(`LABELS`, 487 names). The videos themselves must be downloaded by the user: put them anywhere under
the source folder (subfolders fine) named by YouTube id, `<id>.<any ext>`, or yt-dlp's default
`<title> [<id>].<ext>`. The partition files are looked for in the source folder tree.

Decisions [choice]:
- Splits train / val / test. The paper splits 70/10/20 but only train and test were released, so
  val is carved out of train: a video is in val iff the first 8 bytes of sha256(YouTube id), read
  big-endian, are 0 mod 8 (1/8 of train, about 10% of all videos; stable across machines and runs).
- Missing videos (not downloaded, taken down) are listed with path None and counted, never fatal.
- A video listed twice in one partition gets the union of its labels; one listed in both train and
  test is kept in test only (no leakage). Both are counted in `Listing.notes`.
- Several local files for one id: `<id>.<ext>` beats `<id>.f137.<ext>`, then mp4 > webm > mkv >
  the rest.
- The source folder may be a URI (gs://...; `stcnn.fileio`).
"""
from __future__ import annotations

import hashlib
import importlib.resources
import os
import re
import urllib.parse

from stcnn import fileio
from stcnn.data import builders

PARTITIONS = {"train": "train_partition.txt", "test": "test_partition.txt"}
VAL_MODULUS = 8
LABELS: tuple[str, ...] = tuple(
    line.strip() for line in importlib.resources.files("stcnn.data").joinpath(
        "sports1m_labels.txt").read_text(encoding="utf-8").splitlines() if line.strip())
_ID = re.compile(r"^[A-Za-z0-9_-]{11}$")
_BRACKET_ID = re.compile(r"\[([A-Za-z0-9_-]{11})\]")
_EXT_RANK = {".mp4": 0, ".webm": 1, ".mkv": 2}
_FORMAT = "'<YouTube URL or id> <label id>[,<label id>...]'"


def youtube_id(text: str) -> str | None:
  """The 11-character id of a YouTube URL (watch?v=, youtu.be/, /embed/, /shorts/) or a bare id."""
  if _ID.match(text):
    return text
  url = urllib.parse.urlparse(text)
  candidates = urllib.parse.parse_qs(url.query).get("v", []) + [url.path.rstrip("/").split("/")[-1]]
  return next((c for c in candidates if _ID.match(c)), None)


def is_val(video_id: str) -> bool:
  """Whether a train-partition video is carved out as validation (1/VAL_MODULUS, stable hash)."""
  digest = hashlib.sha256(video_id.encode()).digest()
  return int.from_bytes(digest[:8], "big") % VAL_MODULUS == 0


def read_labels(path) -> tuple[str, ...]:
  return tuple(line for _, line in builders.numbered_lines(path))


def parse_partition(path, num_classes: int = len(LABELS)) -> tuple[dict[str, tuple[int, ...]], int]:
  """{YouTube id: label ids} in file order, and how many duplicate lines were merged."""
  videos, duplicates = {}, 0
  for lineno, line in builders.numbered_lines(path):
    parts = line.split()
    vid = youtube_id(parts[0]) if len(parts) == 2 else None
    if vid is None:
      raise ValueError(f"{path}:{lineno}: expected {_FORMAT}, got {line!r}")
    try:
      labels = tuple(int(x) for x in parts[1].split(","))
    except ValueError:
      raise ValueError(f"{path}:{lineno}: labels must be comma-separated integers, "
                       f"got {parts[1]!r}") from None
    bad = [x for x in labels if not 0 <= x < num_classes]
    if bad:
      raise ValueError(f"{path}:{lineno}: label ids {bad} outside 0..{num_classes - 1}")
    if vid in videos:
      duplicates += 1
      labels = videos[vid] + tuple(x for x in labels if x not in videos[vid])
    videos[vid] = tuple(dict.fromkeys(labels))
  return videos, duplicates


def scan(root) -> tuple[dict[str, str], dict[str, list[str]]]:
  """({YouTube id: video path}, {partition file name: paths found}) under `root`."""
  candidates, partitions = {}, {name: [] for name in PARTITIONS.values()}
  for dirpath, dirnames, filenames in fileio.walk(root):
    dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
    for name in filenames:
      path = os.path.join(dirpath, name)
      if name in partitions:
        partitions[name].append(path)
      if not builders.is_video_file(name):
        continue
      match = _BRACKET_ID.search(name)
      vid = match.group(1) if match else name.split(".")[0]
      if _ID.match(vid):
        rank = (name.count("."), _EXT_RANK.get(os.path.splitext(name)[1].lower(), 9), path)
        if vid not in candidates or rank < candidates[vid][0]:
          candidates[vid] = (rank, path)
  return {vid: path for vid, (_, path) in candidates.items()}, partitions


def read(root, labels_file=None) -> builders.Listing:
  """Sports-1M train/val/test over the videos found under `root`."""
  root = fileio.resolve(root)
  if not fileio.isdir(root):
    raise FileNotFoundError(f"{root}: not a folder (expected the downloaded Sports-1M videos and "
                            "train_partition.txt / test_partition.txt)")
  labels = read_labels(labels_file) if labels_file else LABELS
  local, found = scan(root)
  files = {}
  for name, paths in found.items():
    if len(paths) != 1:
      raise FileNotFoundError(
          f"{root}: expected exactly one {name} (from github.com/gtoderici/sports-1m-dataset) "
          f"in this folder tree, found {len(paths) or 'none'}{': ' + str(paths) if paths else ''}")
    files[os.path.relpath(paths[0], root)] = paths[0]
  train_path, test_path = (found[PARTITIONS[s]][0] for s in ("train", "test"))
  train, train_dups = parse_partition(train_path, len(labels))
  test, test_dups = parse_partition(test_path, len(labels))
  overlap = [vid for vid in train if vid in test]
  for vid in overlap:
    del train[vid]
  if labels_file:
    files["labels.txt"] = os.fspath(labels_file)

  def items(videos, keep=lambda vid: True):
    return [builders.Item(vid, local.get(vid), labs) for vid, labs in videos.items() if keep(vid)]

  return builders.Listing(
      kind="sports1m", root=root, class_names=list(labels),
      splits={"train": items(train, lambda v: not is_val(v)),
              "val": items(train, is_val), "test": items(test)},
      files=files,
      notes={"duplicate_lines_merged": train_dups + test_dups, "train_test_overlap": len(overlap),
             "val_rule": f"sha256(youtube_id)[:8] % {VAL_MODULUS} == 0, carved from train"})
