"""Writes that never leave a half-written result behind: a temporary sibling, then one rename.

The one home of the write-to-temp-then-rename rule (data sets, prepared records, reports, JSON
files). Temporaries get the permissions a plain `open`/`mkdir` would give under the process umask,
so a published file or directory looks exactly like one written in place.
"""
from __future__ import annotations

import contextlib
import json
import os
import pathlib
import shutil
import tempfile
from typing import Any, Callable, Iterator


def _temporary_prefix(final: pathlib.Path) -> str:
  return f".{final.name}.incomplete-"


def stale_temporaries(final: str | os.PathLike) -> list[pathlib.Path]:
  """Temporaries of `final` that a killed writer left behind (`atomic_dir` removes its own)."""
  final = pathlib.Path(final)
  return sorted(final.parent.glob(_temporary_prefix(final) + "*"))


def _umask() -> int:
  mask = os.umask(0)
  os.umask(mask)
  return mask


@contextlib.contextmanager
def atomic_dir(final: str | os.PathLike, *,
               keep_existing: Callable[[], bool] | None = None) -> Iterator[pathlib.Path]:
  """Yields a temporary sibling directory of `final`, renamed to `final` when the block succeeds.

  On an exception the temporary directory is removed and nothing appears at `final`. If the rename
  fails (another process published first), `keep_existing()` decides: True keeps theirs, otherwise
  the OSError is raised. A killed process may leave a hidden `.NAME.incomplete-*` sibling
  (`stale_temporaries`), never a partial `final`.
  """
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


def write_text(path: str | os.PathLike, text: str) -> None:
  """Writes `text` to `path` atomically (a reader sees the old file or the new one, never part)."""
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
