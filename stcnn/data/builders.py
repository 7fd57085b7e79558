"""The prepared data sets as TFDS builders (ArrayRecord), and `load()` to read them back.

Readers (`ucf101`, `sports1m`, `folder`) turn a source into a `Listing`; `prepare` decodes the
videos and streams examples to `write()`, which stores them as one of the builders below, exactly
as the contract in `stcnn/data/__init__.py` says. The rest of the project reads a prepared data set
with `load()`.

Layout on disk: `<output>/<builder name>[/<config>]/<version>/` (the *builder dir*, holding
dataset_info.json, features.json, metadata.json, the ArrayRecord shards and one
`index-<split>.jsonl` per split). UCF-101 has one config per official split (`split1..3`), so the
three splits may share one output folder.

Metadata (DatasetInfo.metadata, metadata.json): source_kind, config, class_names, hierarchy (or
None), frame_size, settings, source_checksums (sha256 of the split/list/label files), items_sha256,
builder_version, fingerprint, notes (reader remarks) and counts (per split, filled in after
writing).

Decisions [choice]:
- fingerprint = sha256 over builder name/config/version, the prepare settings, the split files'
  checksums and `items_sha256` (the listed items: split, id, path relative to the source, labels,
  file size). The item digest makes a Sports-1M set with more downloaded videos a different data
  set.
- Records are stored in listing order, a video's segments next to each other; shuffling is the
  sampler's job (grain). `write()` streams them into ArrayRecord shards of about `SHARD_BYTES` and
  writes the TFDS metadata itself: TFDS's own `download_and_prepare` routes every example through
  its shuffler, which holds ~1 GB in memory and then spills through TensorFlow (not a dependency).
- Strings come back as bytes (TFDS numpy decoding): `video_id` is bytes when read.
"""
from __future__ import annotations

import collections.abc
import dataclasses
import functools
import hashlib
import json
import os
import re
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from array_record.python import array_record_module
from etils import epath
import numpy as np
import tensorflow_datasets as tfds

from stcnn import classtree, fileio

DATA_VERSION = "1.0.0"
INFO_FILE = "dataset_info.json"
INDEX_FILE = "index-{split}.jsonl"
SHARD_BYTES = 1 << 30  # [choice] ~1 GiB ArrayRecord shards.
# Files that are never videos (sidecars of downloaders, lists, images); readers skip them.
NON_VIDEO_SUFFIXES = frozenset({
    ".txt", ".json", ".csv", ".md", ".xml", ".part", ".ytdl", ".tmp", ".temp", ".log",
    ".jpg", ".jpeg", ".png", ".webp", ".gif", ".vtt", ".srt", ".description", ".db", ".ini",
    ".py", ".zip", ".tar", ".gz", ".rar"})
_CITATION = """@inproceedings{karpathy2014large,
  title={Large-scale Video Classification with Convolutional Neural Networks},
  author={Karpathy, Andrej and Toderici, George and Shetty, Sanketh and Leung, Thomas and
          Sukthankar, Rahul and Fei-Fei, Li},
  booktitle={CVPR}, year={2014}}"""


# ----------------------------------------------------------------- what a reader hands to `prepare`
@dataclasses.dataclass(frozen=True)
class Item:
  """One listed video: `path` is None when the video is listed but not found locally."""
  video_id: str
  path: str | None
  labels: tuple[int, ...]


@dataclasses.dataclass
class Listing:
  """A reader's result: per split, the listed videos; plus class names and the split files."""
  kind: str                              # "ucf101" | "sports1m" | "folder" | "csv"
  root: str                              # source root; paths are made relative to it
  class_names: list[str]
  splits: dict[str, list[Item]]
  files: dict[str, str] = dataclasses.field(default_factory=dict)  # name -> split/list file
  hierarchy: dict | None = None
  config: str | None = None              # builder config (UCF-101: "split1".."split3")
  notes: dict = dataclasses.field(default_factory=dict)

  @property
  def num_classes(self) -> int:
    return len(self.class_names)


def numbered_lines(path) -> Iterator[tuple[int, str]]:
  """(1-based line number, stripped line) of a text file, blank lines skipped; CRLF is fine."""
  with open(path, encoding="utf-8-sig", newline=None) as f:
    for lineno, line in enumerate(f, 1):
      line = line.strip()
      if line:
        yield lineno, line


_SPLIT_NAME = re.compile(r"^[A-Za-z0-9_]+$")


def check_split_name(name: str, where: str) -> str:
  if not _SPLIT_NAME.match(name):
    raise ValueError(f"{where}: split name {name!r} must be letters, digits or _ (e.g. train)")
  return name


def is_video_file(name: str) -> bool:
  return not name.startswith(".") and os.path.splitext(name)[1].lower() not in NON_VIDEO_SUFFIXES


def sha256_file(path) -> str:
  h = hashlib.sha256()
  with open(path, "rb") as f:
    for chunk in iter(functools.partial(f.read, 1 << 20), b""):
      h.update(chunk)
  return h.hexdigest()


def check_hierarchy(hierarchy: Any, class_names: Sequence[str], where: str) -> dict:
  """Validates {"names", "parents", "num_leaves"} (see the contract) against the class names."""
  if not isinstance(hierarchy, dict) or not {"names", "parents", "num_leaves"} <= set(hierarchy):
    raise ValueError(f"{where}: expected a JSON object with names, parents, num_leaves")
  names, parents, num_leaves = hierarchy["names"], hierarchy["parents"], hierarchy["num_leaves"]
  if num_leaves != len(class_names) or list(names[:num_leaves]) != list(class_names):
    raise ValueError(f"{where}: the first num_leaves={num_leaves} names must be the "
                     f"{len(class_names)} class names in order, got {list(names[:5])}...")
  classtree.check(parents, num_leaves, names, where)
  return {"names": list(names), "parents": [int(p) for p in parents], "num_leaves": int(num_leaves)}


# ------------------------------------------------------------- prepare settings and the fingerprint
@dataclasses.dataclass(frozen=True)
class Settings:
  """How videos are turned into records (see `prepare.encode_video`)."""
  frame_size: int = 200
  segment_frames: int = 300
  max_segments: int = 10
  jpeg_quality: int = 90
  fps: float | None = None  # None: keep the video's own frame rate

  def __post_init__(self):
    # Normalised types, so that fps=10 and fps=10.0 give one fingerprint.
    for name in ("frame_size", "segment_frames", "max_segments", "jpeg_quality"):
      value = getattr(self, name)
      if isinstance(value, bool) or int(value) != value:
        raise ValueError(f"{name} must be an integer, got {value!r}")
      object.__setattr__(self, name, int(value))
    if self.fps is not None:
      object.__setattr__(self, "fps", float(self.fps))
    for name in ("frame_size", "segment_frames", "max_segments"):
      if getattr(self, name) < 1:
        raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
    if not 1 <= self.jpeg_quality <= 100:
      raise ValueError(f"jpeg_quality must be in 1..100, got {self.jpeg_quality}")
    if self.fps is not None and self.fps <= 0:
      raise ValueError(f"fps must be > 0 or None, got {self.fps}")


def _items_sha256(listing: Listing) -> str:
  h = hashlib.sha256()
  for split, items in listing.splits.items():
    for it in items:
      rel = os.path.relpath(it.path, listing.root) if it.path else "-"
      try:
        size = os.path.getsize(it.path) if it.path else -1
      except OSError:  # a symlink loop, a vanished file: decoding names it as unreadable
        size = -2
      h.update(f"{split}\t{it.video_id}\t{rel}\t{list(it.labels)}\t{size}\n".encode())
  return h.hexdigest()


def make_metadata(listing: Listing, settings: Settings, builder_cls) -> dict:
  """The DatasetInfo metadata of a listing prepared with `settings`, fingerprint included."""
  checksums = {name: sha256_file(path) for name, path in sorted(listing.files.items())}
  identity = {
      "builder": builder_cls.name, "config": listing.config, "builder_version": DATA_VERSION,
      "settings": dataclasses.asdict(settings), "source_checksums": checksums,
      "class_names": list(listing.class_names), "hierarchy": listing.hierarchy,
      "items_sha256": _items_sha256(listing)}
  fp = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
  return {**identity, "source_kind": listing.kind, "frame_size": settings.frame_size,
          "fingerprint": fp, "notes": listing.notes, "counts": {}}


# ------------------------------------------------------------------------------------- the builders
class _VideoClips(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Video segments as JPEG frame lists: names, features and info; `write()` stores the data."""
  VERSION = tfds.core.Version(DATA_VERSION)
  RELEASE_NOTES = {DATA_VERSION: "One example per video segment (stcnn data contract)."}
  # TFDS's own lookup of the defining file needs the importlib_resources backport; spare it.
  code_path = epath.Path(__file__)

  def __init__(self, *, metadata: Mapping[str, Any] | None = None, **kwargs):
    self._metadata_init = dict(metadata or {})
    super().__init__(**kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description=("Videos stored as segments of centre-cropped square JPEG frames "
                     "(Karpathy et al. 2014 pre-processing); see stcnn/data/__init__.py."),
        features=tfds.features.FeaturesDict({
            "video_id": tfds.features.Tensor(shape=(), dtype=np.str_),
            "labels": tfds.features.Tensor(shape=(None,), dtype=np.int64),
            "frames": tfds.features.Sequence(tfds.features.Tensor(shape=(), dtype=np.bytes_)),
            "segment": tfds.features.Tensor(shape=(), dtype=np.int64),
            "num_segments": tfds.features.Tensor(shape=(), dtype=np.int64),
            "fps": tfds.features.Tensor(shape=(), dtype=np.float32),
        }),
        metadata=tfds.core.MetadataDict(self._metadata_init),
        disable_shuffling=True,
        citation=_CITATION)

  def _split_generators(self, dl_manager):
    raise ValueError(f"{type(self).__name__} is not built by TFDS: use "
                     "stcnn.data.prepare.prepare(); read with stcnn.data.builders.load().")

  def _generate_examples(self):
    raise NotImplementedError  # See _split_generators.


class Ucf101Clips(_VideoClips, skip_registration=True):
  """UCF-101 (Soomro et al. 2012), one config per official train/test split."""
  BUILDER_CONFIGS = [tfds.core.BuilderConfig(name=f"split{i}", description=f"Official split {i}.")
                     for i in (1, 2, 3)]


class Sports1mClips(_VideoClips, skip_registration=True):
  """Sports-1M (Karpathy et al. 2014): train / val (1/8 of train) / test."""


class FolderClips(_VideoClips, skip_registration=True):
  """A folder-per-class tree of videos."""


class CsvClips(_VideoClips, skip_registration=True):
  """Videos listed in a CSV manifest."""


BUILDERS = {"ucf101": Ucf101Clips, "sports1m": Sports1mClips, "folder": FolderClips,
            "csv": CsvClips}


def make_builder(listing: Listing, settings: Settings, output) -> _VideoClips:
  """The builder of `listing` prepared with `settings` under `output`.

  Its metadata is in `builder.metadata_to_write`: when `output` already holds this data set, TFDS
  loads the old metadata into `builder.info.metadata`.
  """
  cls = BUILDERS[listing.kind]
  metadata = make_metadata(listing, settings, cls)
  builder = cls(data_dir=os.fspath(output), config=listing.config, file_format="array_record",
                metadata=metadata)
  builder.metadata_to_write = metadata
  return builder


def index_entry(example: Mapping[str, Any]) -> dict:
  """The `index-<split>.jsonl` line of a record (see the contract): everything but the JPEGs."""
  video_id = example["video_id"]
  return {"video_id": video_id.decode() if isinstance(video_id, bytes) else str(video_id),
          "labels": [int(x) for x in example["labels"]], "segment": int(example["segment"]),
          "num_segments": int(example["num_segments"]), "num_frames": len(example["frames"]),
          "fps": float(np.float32(example["fps"]))}


def _write_split(builder, directory: str, split: str, examples: Iterable[dict],
                 shard_bytes: int) -> tfds.core.SplitInfo:
  """Streams one split's examples into ArrayRecord shards and its index; returns its SplitInfo."""
  features, lengths, sizes, writer = builder.info.features, [], [], None
  partial_path = lambda k: os.path.join(directory, f"{split}.partial-{k:05d}")
  with open(os.path.join(directory, INDEX_FILE.format(split=split)), "w") as index:
    try:
      for example in examples:
        record = features.serialize_example(example)
        if writer is None or sizes[-1] >= shard_bytes:
          if writer is not None:
            writer.close()
          writer = array_record_module.ArrayRecordWriter(  # TFDS's options: random access.
              partial_path(len(lengths)), "group_size:1")
          lengths.append(0)
          sizes.append(0)
        writer.write(record)
        lengths[-1] += 1
        sizes[-1] += len(record)
        index.write(json.dumps(index_entry(example)) + "\n")
    finally:
      if writer is not None:
        writer.close()
  if not lengths:
    raise ValueError(f"split {split}: no examples to write")
  template = tfds.core.ShardedFileTemplate(
      data_dir=epath.Path(directory), template=tfds.core.naming.DEFAULT_FILENAME_TEMPLATE,
      dataset_name=builder.name, split=split, filetype_suffix="array_record")
  for k in range(len(lengths)):
    os.rename(partial_path(k), template.sharded_filepath(shard_index=k, num_shards=len(lengths)))
  return tfds.core.SplitInfo(name=split, shard_lengths=lengths, num_bytes=sum(sizes),
                             filename_template=template)


def write(builder: _VideoClips, splits: Mapping[str, Iterable[dict]],
          metadata: Callable[[], Mapping[str, Any]], *, shard_bytes: int | None = None) -> str:
  """Writes `splits` (name -> examples, read once, in order) as `builder`'s data set; its dir.

  One example is in memory at a time; a new shard starts every `shard_bytes`. Everything goes to a
  temporary sibling of the builder dir, renamed at the end (`fileio.atomic_dir`), so a failed run
  leaves nothing that looks complete. `metadata()`, called once every split is written, gives
  DatasetInfo.metadata.
  """
  shard_bytes = shard_bytes or SHARD_BYTES
  final = os.fspath(builder.data_dir)
  if os.path.exists(final):
    raise FileExistsError(f"{final} exists; remove it to prepare this data set again")
  with fileio.atomic_dir(final) as tmp:
    infos = [_write_split(builder, os.fspath(tmp), name, examples, shard_bytes)
             for name, examples in splits.items()]
    builder.info.set_splits(tfds.core.SplitDict(infos))
    builder.info.metadata.clear()
    builder.info.metadata.update(metadata())
    builder.info.write_to_directory(os.fspath(tmp))
  return final


# ------------------------------------------------------------------------------------- reading back
def find_builder_dirs(path, max_depth: int = 4) -> list[str]:
  """Complete builder dirs (with dataset_info.json) at or below `path`; `incomplete.*` skipped."""
  path = os.path.abspath(os.fspath(path))
  found = []
  for dirpath, dirnames, filenames in os.walk(path):
    if INFO_FILE in filenames:
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
  if not os.path.exists(path):
    raise ValueError(f"{builder_dir}: no metadata.json; not a data set made by stcnn.data.prepare")
  with open(path) as f:
    return json.load(f)


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
      path = os.path.join(self.builder_dir, INDEX_FILE.format(split=split))
      if not os.path.exists(path):
        return None
      with open(path) as f:
        self._indexes[split] = [json.loads(line) for line in f]
    return self._indexes[split]

  def __repr__(self):
    return (f"Prepared({self.builder_dir!r}, splits={self.splits}, "
            f"num_classes={self.num_classes}, frame_size={self.frame_size})")


def load(path) -> Prepared:
  """Opens a prepared data set: `path` is its builder dir or a parent holding exactly one."""
  dirs = find_builder_dirs(path)
  if not dirs:
    raise FileNotFoundError(
        f"{path}: no prepared data set (a folder with {INFO_FILE}) found; make one with "
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
