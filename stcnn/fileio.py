"""Writes that never leave a half-written result behind, and the few file operations that also
take remote paths.

The one home of the write-to-temp-then-rename rule (data sets, prepared records, reports, JSON
files). Temporaries get the permissions a plain `open`/`mkdir` would give under the process umask,
so a published file or directory looks exactly like one written in place.

Remote paths: a path with a scheme (`gs://bucket/x`, `s3://...`; `is_remote`) goes through
`etils.epath` (which needs its backend for that scheme: gcsfs or TensorFlow for gs://); a local
path goes through `os` exactly as before. Object stores have no directory rename: `atomic_dir`
there moves the files one by one, `marker` (the file readers look for) last, so a reader still
never sees a complete-looking part.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import pathlib
import posixpath
import shutil
import tempfile
from typing import Any, Callable, Iterator
import uuid

from etils import epath


# --------------------------------------------------------------------------- local or remote paths
def is_remote(path: str | os.PathLike) -> bool:
  """Whether `path` is a URI (gs://, s3://, ...), handled through etils.epath."""
  return "://" in os.fspath(path)


def resolve(path: str | os.PathLike) -> str:
  """A local path with ~ expanded, made absolute; a URI normalised (no `..`, no trailing /)."""
  path = os.fspath(path)
  if is_remote(path):
    scheme, rest = path.split("://", 1)
    return f"{scheme}://{posixpath.normpath(rest)}" if rest.strip("/") else path
  return os.path.abspath(os.path.expanduser(path))


def normpath(path: str) -> str:
  """os.path.normpath, keeping a URI's `scheme://`."""
  return resolve(path) if is_remote(path) else os.path.normpath(path)


def isdir(path) -> bool:
  return epath.Path(path).is_dir() if is_remote(path) else os.path.isdir(path)


def isfile(path) -> bool:
  return epath.Path(path).is_file() if is_remote(path) else os.path.isfile(path)


def listdir(path) -> list[str]:
  return [p.name for p in epath.Path(path).iterdir()] if is_remote(path) else os.listdir(path)


def getsize(path) -> int:
  return int(epath.Path(path).stat().length) if is_remote(path) else os.path.getsize(path)


def walk(top) -> Iterator[tuple[str, list[str], list[str]]]:
  """os.walk (top-down; prune by editing the yielded dirnames in place), for URIs too."""
  top = os.fspath(top)
  if not is_remote(top):
    yield from os.walk(top)
    return
  scheme = top.split("://", 1)[0]
  for dirpath, dirnames, filenames in epath.Path(top).walk():
    dirpath = os.fspath(dirpath)
    if not is_remote(dirpath):  # some backends drop the scheme
      dirpath = f"{scheme}://{dirpath.lstrip('/')}"
    yield dirpath, dirnames, filenames


def read_bytes(path) -> bytes:
  with (epath.Path(path).open("rb") if is_remote(path) else open(path, "rb")) as f:
    return f.read()


def open_binary(path, mode: str = "rb"):
  """A binary file object of a local path or a URI."""
  return epath.Path(path).open(mode) if is_remote(path) else open(path, mode)


def text_lines(path) -> Iterator[str]:
  """The lines of a UTF-8 text file (a BOM dropped, CRLF read as LF), without their newlines."""
  with io.TextIOWrapper(open_binary(path), encoding="utf-8-sig", newline=None) as f:
    for line in f:
      yield line.rstrip("\n")


def upload(local: str, target: str) -> None:
  """Copies the local file `local` to `target` (a URI or a local path), replacing it."""
  if is_remote(target):
    epath.Path(local).copy(epath.Path(target), overwrite=True)
  else:
    shutil.copyfile(local, target)


def _temporary_prefix(final: pathlib.Path) -> str:
  return f".{final.name}.incomplete-"


def stale_temporaries(final: str | os.PathLike) -> list[pathlib.Path] | list[epath.Path]:
  """Temporaries of `final` that a killed writer left behind (`atomic_dir` removes its own)."""
  final = epath.Path(final) if is_remote(final) else pathlib.Path(final)
  if is_remote(final) and not final.parent.exists():
    return []
  return sorted(final.parent.glob(_temporary_prefix(final) + "*"))


def remove(path) -> None:
  """Removes a file (a local path or a URI)."""
  if is_remote(path):
    epath.Path(path).unlink()
  else:
    os.remove(path)


def remove_tree(path) -> None:
  """Removes a directory tree (a local path or a URI)."""
  if is_remote(path):
    epath.Path(path).rmtree()
  else:
    shutil.rmtree(path)


def _umask() -> int:
  mask = os.umask(0)
  os.umask(mask)
  return mask


@contextlib.contextmanager
def atomic_dir(final: str | os.PathLike, *, keep_existing: Callable[[], bool] | None = None,
               marker: str | None = None) -> Iterator[pathlib.Path | epath.Path]:
  """Yields a temporary sibling directory of `final`, renamed to `final` when the block succeeds.

  On an exception the temporary directory is removed and nothing appears at `final`. If the rename
  fails (another process published first), `keep_existing()` decides: True keeps theirs, otherwise
  the OSError is raised. A killed process may leave a hidden `.NAME.incomplete-*` sibling
  (`stale_temporaries`), never a partial `final`. For a URI `final` (see the module docstring) the
  files are moved one by one, the top-level file named `marker` last; an existing `final` is
  an error there.
  """
  if is_remote(final):
    with _remote_atomic_dir(epath.Path(final), marker) as tmp:
      yield tmp
    return
  final = pathlib.Path(final)
  final.parent.mkdir(parents=True, exist_ok=True)
  tmp = pathlib.Path(tempfile.mkdtemp(prefix=_temporary_prefix(final), dir=final.parent))
  tmp.chmod(0o777 & ~_umask())  # mkdtemp makes it private; the result is not
  try:
    yield tmp
    try:
      os.replace(tmp, final)
    except OSError:
      if keep_existing is None or not keep_existing():
        raise
  finally:
    if tmp.exists():
      shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def _remote_atomic_dir(final: epath.Path, marker: str | None) -> Iterator[epath.Path]:
  tmp = final.parent / f"{_temporary_prefix(final)}{uuid.uuid4().hex[:8]}"
  tmp.mkdir(parents=True)
  try:
    yield tmp
    if final.exists():
      raise FileExistsError(f"{final} exists")
    files = [(os.fspath(d), name) for d, _, names in walk(tmp) for name in names]
    files.sort(key=lambda f: f == (os.fspath(tmp), marker))  # the marker last
    for directory, name in files:
      target = final / os.path.relpath(os.path.join(directory, name), os.fspath(tmp))
      target.parent.mkdir(parents=True, exist_ok=True)
      (epath.Path(directory) / name).rename(target)
  finally:
    if tmp.exists():
      tmp.rmtree()


def write_text(path: str | os.PathLike, text: str) -> None:
  """Writes `text` to `path` atomically (a reader sees the old file or the new one, never part)."""
  if is_remote(path):  # an object is written whole
    epath.Path(path).parent.mkdir(parents=True, exist_ok=True)
    epath.Path(path).write_text(text)
    return
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
  try:
    with os.fdopen(fd, "w") as f:
      f.write(text)
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, path)
  except BaseException:
    with contextlib.suppress(FileNotFoundError):
      os.remove(tmp)
    raise


def write_json(path: str | os.PathLike, obj: Any, indent: int | None = 1) -> None:
  """`obj` as JSON (one trailing newline) at `path`, atomically."""
  write_text(path, json.dumps(obj, indent=indent) + "\n")
