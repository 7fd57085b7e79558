"""Writing a prepared data set: the TFDS builders (ArrayRecord), the fingerprint and `write()`.

Readers (`ucf101`, `sports1m`, `folder`) turn a source into a `Listing`; `prepare` decodes the
videos (`stcnn.data.encode`) and streams examples to `write()`, which stores them as one of the
builders below, exactly as the contract in `stcnn/data/__init__.py` says. The rest of the project
reads a prepared data set back with `stcnn.data.prepared.load()`.

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
- Which shard a record goes to depends only on the sizes of the records before it (`ShardPlan`: a
  shard is closed once it holds `shard_bytes`), so any writer that has the records' sizes in stored
  order (`write()` as it streams, the Beam runner from all videos' results) makes the same shards;
  and a record's bytes do not depend on the process that serialises it (`serialize`).
- Paths may be URIs (gs://...; `stcnn.fileio`): readers, the fingerprint, the writers and
  `prepared.load` go through `fileio`/`etils.epath`. ArrayRecord writes local files only, so a
  shard for a URI is written to a local temporary file and copied.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import itertools
import json
import os
import re
import tempfile
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from array_record.python import array_record_module
from etils import epath
import numpy as np
import tensorflow_datasets as tfds
from tensorflow_datasets.core import example_serializer

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
  for lineno, line in enumerate(fileio.text_lines(path), 1):
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
  with fileio.open_binary(path) as f:
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
  """How videos are turned into records (see `stcnn.data.encode`)."""
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
        size = fileio.getsize(it.path) if it.path else -1
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
def make_features() -> tfds.features.FeaturesDict:
  """The record's TFDS features (the contract in stcnn/data/__init__.py)."""
  return tfds.features.FeaturesDict({
      "video_id": tfds.features.Tensor(shape=(), dtype=np.str_),
      "labels": tfds.features.Tensor(shape=(None,), dtype=np.int64),
      "frames": tfds.features.Sequence(tfds.features.Tensor(shape=(), dtype=np.bytes_)),
      "segment": tfds.features.Tensor(shape=(), dtype=np.int64),
      "num_segments": tfds.features.Tensor(shape=(), dtype=np.int64),
      "fps": tfds.features.Tensor(shape=(), dtype=np.float32),
  })


@functools.cache
def _serializer() -> tuple[tfds.features.FeaturesDict, example_serializer.ExampleSerializer]:
  features = make_features()
  return features, example_serializer.ExampleSerializer(features.get_serialized_info())


def serialize(example: Mapping[str, Any]) -> bytes:
  """The stored bytes of one record (every writer serialises through this): TFDS's tf.Example,
  serialised deterministically (its feature map in key order; protobuf's own map order differs
  between processes), so a record is the same bytes whichever process writes it."""
  features, serializer = _serializer()
  return serializer.get_tf_example(features.encode_example(example)).SerializeToString(
      deterministic=True)


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
        features=make_features(),
        metadata=tfds.core.MetadataDict(self._metadata_init),
        disable_shuffling=True,
        citation=_CITATION)

  def _split_generators(self, dl_manager):
    raise ValueError(f"{type(self).__name__} is not built by TFDS: use "
                     "stcnn.data.prepare.prepare(); read with stcnn.data.prepared.load().")

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


class ShardPlan:
  """Assigns records, taken in stored order, to shards: a shard is closed once it holds
  `shard_bytes` or more, so no shard is empty and each holds about `shard_bytes`."""

  def __init__(self, shard_bytes: int):
    self.shard_bytes = shard_bytes
    self.lengths: list[int] = []  # records per shard
    self.sizes: list[int] = []    # bytes per shard

  def add(self, size: int) -> int:
    """The shard of the next record, `size` bytes long."""
    if not self.lengths or self.sizes[-1] >= self.shard_bytes:
      self.lengths.append(0)
      self.sizes.append(0)
    self.lengths[-1] += 1
    self.sizes[-1] += size
    return len(self.lengths) - 1


def shard_path(name: str, directory, split: str, shard: int, num_shards: int) -> epath.Path:
  """TFDS's file name of shard `shard` of `num_shards` of a split of the data set `name` (the
  builder's name) in `directory`."""
  return _shard_template(name, directory, split).sharded_filepath(shard_index=shard,
                                                                  num_shards=num_shards)


def _shard_template(name: str, directory, split: str) -> tfds.core.ShardedFileTemplate:
  return tfds.core.ShardedFileTemplate(
      data_dir=epath.Path(directory), template=tfds.core.naming.DEFAULT_FILENAME_TEMPLATE,
      dataset_name=name, split=split, filetype_suffix="array_record")


def write_shard(path, records: Iterable[bytes]) -> None:
  """An ArrayRecord file of `records` in order, with TFDS's options (random access). A URI `path`
  is written to a local temporary file, then copied."""
  path = os.fspath(path)
  if fileio.is_remote(path):
    with tempfile.TemporaryDirectory() as tmp:
      local = os.path.join(tmp, os.path.basename(path))
      write_shard(local, records)
      fileio.upload(local, path)
    return
  writer = array_record_module.ArrayRecordWriter(path, "group_size:1")
  try:
    for record in records:
      writer.write(record)
  finally:
    writer.close()


def split_info(builder, directory, split: str, lengths: Sequence[int],
               sizes: Sequence[int]) -> tfds.core.SplitInfo:
  """The SplitInfo of a split written to `directory` in shards of `lengths` records, `sizes`
  bytes (a `ShardPlan`'s)."""
  if not lengths:
    raise ValueError(f"split {split}: no examples to write")
  return tfds.core.SplitInfo(name=split, shard_lengths=list(lengths), num_bytes=sum(sizes),
                             filename_template=_shard_template(builder.name, directory, split))


@contextlib.contextmanager
def index_writer(path) -> Iterator[Callable[[dict], None]]:
  """Yields `write(entry)`, which appends one `index_entry` line to the file `path` (a split's
  `INDEX_FILE`, or a part of it)."""
  with fileio.open_binary(path, "wb") as f:
    yield lambda entry: f.write((json.dumps(entry) + "\n").encode())


def _write_split(builder, directory: str, split: str, examples: Iterable[dict],
                 shard_bytes: int) -> tfds.core.SplitInfo:
  """Streams one split's examples into ArrayRecord shards and its index; returns its SplitInfo."""
  plan = ShardPlan(shard_bytes)
  partial_path = lambda k: os.path.join(directory, f"{split}.partial-{k:05d}")
  with index_writer(os.path.join(directory, INDEX_FILE.format(split=split))) as write_entry:

    def records():
      for example in examples:
        record = serialize(example)
        write_entry(index_entry(example))
        yield plan.add(len(record)), record

    for k, shard in itertools.groupby(records(), key=lambda kr: kr[0]):
      write_shard(partial_path(k), (record for _, record in shard))
  info = split_info(builder, directory, split, plan.lengths, plan.sizes)
  for k in range(len(plan.lengths)):
    epath.Path(partial_path(k)).rename(
        shard_path(builder.name, directory, split, k, len(plan.lengths)))
  return info


@contextlib.contextmanager
def publishing(builder: _VideoClips) -> Iterator[str]:
  """Yields a temporary directory that becomes `builder`'s dir when the block succeeds
  (`fileio.atomic_dir`; dataset_info.json moved last where files move one by one)."""
  final = os.fspath(builder.data_dir)
  exists = epath.Path(final).exists() if fileio.is_remote(final) else os.path.exists(final)
  if exists:
    raise FileExistsError(f"{final} exists; remove it to prepare this data set again")
  with fileio.atomic_dir(final, marker=INFO_FILE) as tmp:
    yield os.fspath(tmp)


def write_info(builder: _VideoClips, directory: str, infos: Sequence[tfds.core.SplitInfo],
               metadata: Mapping[str, Any]) -> None:
  """The TFDS metadata files (dataset_info.json, features.json, metadata.json) of `directory`."""
  builder.info.set_splits(tfds.core.SplitDict(list(infos)))
  builder.info.metadata.clear()
  builder.info.metadata.update(metadata)
  builder.info.write_to_directory(directory)


def write(builder: _VideoClips, splits: Mapping[str, Iterable[dict]],
          metadata: Callable[[], Mapping[str, Any]], *, shard_bytes: int | None = None) -> str:
  """Writes `splits` (name -> examples, read once, in order) as `builder`'s data set; its dir.

  One example is in memory at a time; a new shard starts every `shard_bytes` (`ShardPlan`).
  Everything goes to a temporary sibling of the builder dir, renamed at the end (`publishing`), so
  a failed run leaves nothing that looks complete. `metadata()`, called once every split is
  written, gives DatasetInfo.metadata.
  """
  shard_bytes = shard_bytes or SHARD_BYTES
  with publishing(builder) as tmp:
    infos = [_write_split(builder, tmp, name, examples, shard_bytes)
             for name, examples in splits.items()]
    write_info(builder, tmp, infos, metadata())
  return os.fspath(builder.data_dir)
