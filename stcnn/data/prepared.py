"""A prepared data set, read back: `load()` opens one as a `Prepared`.

A prepared data set is what `stcnn.data.prepare` writes through `stcnn.data.builders`: a builder
dir `<output>/<builder name>[/<config>]/<version>/` holding dataset_info.json, features.json,
metadata.json, the ArrayRecord shards and one `index-<split>.jsonl` per split; its records and index
keep the contract in `stcnn/data/__init__.py`. The rest of the project (training and evaluation
through `datasets.load`, `inspect`, `bench`, the predictor) opens a prepared data set here.

- `load(path)`: `path` is a builder dir or a parent holding exactly one (`find_builder_dirs`
  searches up to 4 levels down, skipping hidden, `incomplete.*` and `downloads` dirs, so a data set
  still being written in its hidden temporary sibling is not found). A builder dir without stcnn
  metadata (a fingerprint) is refused.
- `Prepared`: the metadata (class_names, hierarchy, frame_size, fingerprint, counts, ...; see
  `builders`), `source(split)`: a random-access sequence of record dicts, opened on first use, and
  `index(split)`: the record index (None for a data set written before the index existed).
- `read_metadata(builder_dir)`: metadata.json alone, without opening the data set through TFDS.
- `load_public_tfds`: the public TFDS `ucf101` builder behind the same `Prepared` interface, its
  records adapted to the contract (`_PublicUcf101Source`).
- Paths may be URIs (gs://...; `stcnn.fileio`, `etils.epath`).
- Strings come back as bytes (TFDS numpy decoding): `video_id` is bytes when read.
"""
from __future__ import annotations

import collections.abc
import hashlib
import json
import os
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import tensorflow_datasets as tfds

from stcnn import fileio
from stcnn.data import builders


def find_builder_dirs(path, max_depth: int = 4) -> list[str]:
  """Complete builder dirs (with dataset_info.json) at or below `path`; `incomplete.*` skipped."""
  path = fileio.resolve(path)
  found = []
  for dirpath, dirnames, filenames in fileio.walk(path):
    if builders.INFO_FILE in filenames:
      found.append(dirpath)
      dirnames[:] = []
      continue
    depth = dirpath[len(path):].count(os.sep)
    dirnames[:] = sorted(d for d in dirnames if depth < max_depth and not d.startswith(
        ("incomplete.", ".")) and d != "downloads")
  return sorted(found)


def read_metadata(builder_dir) -> dict:
  """The stcnn metadata (metadata.json) of a builder dir, as a plain dict."""
  path = os.path.join(builder_dir, "metadata.json")
  if not fileio.isfile(path):
    raise ValueError(f"{builder_dir}: no metadata.json; not a data set made by stcnn.data.prepare")
  return json.loads(fileio.read_bytes(path))


class Prepared:
  """A prepared data set: random-access sources per split plus its metadata."""

  def __init__(self, builder_dir: str, metadata: Mapping[str, Any], splits: Sequence[str],
               source_fn: Callable[[str], Sequence[dict]]):
    self.builder_dir = builder_dir
    self.metadata = dict(metadata)
    self.splits = tuple(splits)
    self._source_fn = source_fn
    self._sources, self._indexes = {}, {}

  class_names = property(lambda self: tuple(self.metadata["class_names"]))
  num_classes = property(lambda self: len(self.metadata["class_names"]))
  hierarchy = property(lambda self: self.metadata.get("hierarchy"))
  frame_size = property(lambda self: int(self.metadata["frame_size"]))
  fingerprint = property(lambda self: self.metadata["fingerprint"])
  counts = property(lambda self: self.metadata.get("counts", {}))

  def source(self, split: str) -> Sequence[dict]:
    """A random-access sequence (len, [i] -> record dict) of the split's segments."""
    if split not in self.splits:
      raise KeyError(f"{self.builder_dir}: no split {split!r}; available: {list(self.splits)}")
    if split not in self._sources:
      self._sources[split] = self._source_fn(split)
    return self._sources[split]

  def index(self, split: str) -> list[dict] | None:
    """The split's records without their frames, in stored order (`index-<split>.jsonl`).

    [{video_id, labels, segment, num_segments, num_frames, fps}, ...] (see the contract); None if
    the data set has no index (written by an older version): then scan `source(split)`.
    """
    if split not in self.splits:
      raise KeyError(f"{self.builder_dir}: no split {split!r}; available: {list(self.splits)}")
    if split not in self._indexes:
      path = os.path.join(self.builder_dir, builders.INDEX_FILE.format(split=split))
      if not fileio.isfile(path):
        return None
      self._indexes[split] = [json.loads(line) for line in fileio.text_lines(path)]
    return self._indexes[split]

  def __repr__(self):
    return (f"Prepared({self.builder_dir!r}, splits={self.splits}, "
            f"num_classes={self.num_classes}, frame_size={self.frame_size})")


def load(path) -> Prepared:
  """Opens a prepared data set: `path` is its builder dir or a parent holding exactly one."""
  dirs = find_builder_dirs(path)
  if not dirs:
    raise FileNotFoundError(
        f"{path}: no prepared data set (a folder with {builders.INFO_FILE}) found; make one with "
        "`python -m stcnn.data.prepare --dataset=... --source=... --output=...`")
  if len(dirs) > 1:
    raise ValueError(f"{path} holds {len(dirs)} prepared data sets, pass one of: {dirs}")
  builder = tfds.builder_from_directory(dirs[0])
  metadata = dict(builder.info.metadata or {})
  if "fingerprint" not in metadata:
    raise ValueError(f"{dirs[0]}: no stcnn metadata; not a data set made by stcnn.data.prepare")
  return Prepared(dirs[0], metadata, list(builder.info.splits), builder.as_data_source)


# -------------------------------------- the public TFDS `ucf101` builder through the same interface
class _PublicUcf101Source(collections.abc.Sequence):
  """Adapts public `ucf101` records {video (T,H,W,3), label} to the stcnn record contract.

  [choice] frames are centre-cropped, resized to frame_size and JPEG-encoded (so consumers see one
  format); one segment per video; fps 25 (UCF-101's frame rate; the public builder drops it);
  video_id = b"<split>_<index>" (the public records carry no file name).
  """

  def __init__(self, source, split: str, frame_size: int, jpeg_quality: int = 90):
    self._source, self._split = source, split
    self._frame_size, self._quality = frame_size, jpeg_quality

  def __len__(self):
    return len(self._source)

  def __getitem__(self, index):
    from stcnn.data import video_io  # pylint: disable=g-import-not-at-top
    record = self._source[index]
    frames = [video_io.encode_jpeg(video_io.centre_crop_resize(np.asarray(f), self._frame_size),
                                   self._quality) for f in record["video"]]
    return {"video_id": f"{self._split}_{index:06d}".encode(),
            "labels": np.asarray([record["label"]], np.int64), "frames": frames,
            "segment": np.int64(0), "num_segments": np.int64(1), "fps": np.float32(25.0)}


def load_public_tfds(name: str = "ucf101", data_dir=None, split: int = 1, *,
                     frame_size: int = 200) -> Prepared:
  """The public TFDS `ucf101` (prepared as ArrayRecord) as a `Prepared` with train/test sources.

  `name` is "ucf101" or "ucf101/<config>"; without a config, `split` (1..3) picks `ucf101_<split>`
  (for split 1, `ucf101_1_256` is used if that is the one prepared). Its Video feature decodes
  with TensorFlow, which stcnn does not otherwise need.
  """
  try:
    import tensorflow  # pylint: disable=g-import-not-at-top,unused-import  # noqa: F401
  except ImportError as e:
    raise ImportError(f"load_public_tfds({name!r}): the public TFDS builder's Video feature "
                      "needs TensorFlow: pip install tensorflow-cpu") from e
  base, _, config = name.partition("/")
  if base != "ucf101":
    raise ValueError(f"load_public_tfds: only 'ucf101' is supported, got {name!r}")
  if split not in (1, 2, 3):
    raise ValueError(f"load_public_tfds: split must be 1, 2 or 3, got {split!r}")
  candidates = [config] if config else ([f"ucf101_{split}_256"] if split == 1 else []) + [
      f"ucf101_{split}"]
  builders_ = [tfds.builder(f"ucf101/{cfg}", data_dir=data_dir) for cfg in candidates]
  builder = next((b for b in builders_ if b.is_prepared()), builders_[-1])
  info = builder.info
  metadata = {
      "source_kind": "tfds:" + info.full_name, "class_names": list(info.features["label"].names),
      "hierarchy": None, "frame_size": frame_size,
      "fingerprint": hashlib.sha256(f"{info.full_name}|{frame_size}".encode()).hexdigest()}

  def source_fn(s):
    try:
      source = builder.as_data_source(s)
    except (AssertionError, FileNotFoundError, ValueError) as e:
      raise FileNotFoundError(
          f"load_public_tfds: cannot read {info.full_name} split {s} from {data_dir} ({e}); "
          f"prepare it with `tfds build ucf101 --config={builder.builder_config.name} "
          "--file_format=array_record`") from e
    return _PublicUcf101Source(source, s, frame_size)

  return Prepared(os.fspath(builder.data_dir), metadata, list(info.splits), source_fn)
