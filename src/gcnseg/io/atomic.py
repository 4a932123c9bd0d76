"""Atomic file writes: a crash or Ctrl-C never leaves a half-written checkpoint, report or image."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gcnseg.errors import GcnsegError


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it over `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    try:
        yield tmp_path
        # mkstemp makes 0600 files, and some writers (safetensors) replace the file with their
        # own: outputs get the usual mode, set once the content is written.
        tmp_path.chmod(0o666 & ~umask)
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_json(path: str | Path, data: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2) + "\n")


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def ensure_writable(path: str | Path, kind: str, *, folder: bool = False) -> None:
    """Raise a one-line GcnsegError now if `path` could not be written later, creating nothing.

    `kind` says what it is ("the JSON report"); `folder` whether `path` is a folder to write
    into rather than a file. Called before long work starts, so a typo in an output path does
    not cost a whole evaluation. Catches: a file where a folder goes (or a folder where a file
    goes), a parent that is a file, and a folder that may not be written.
    """
    path = Path(path)
    if path.is_dir() and not folder:
        raise GcnsegError(f"{path}: cannot write {kind}: this is a folder, not a file")
    if path.exists() and folder and not path.is_dir():
        raise GcnsegError(f"{path}: cannot write {kind}: this is a file, not a folder")
    target = path if path.is_dir() else path.parent
    while not os.path.lexists(target):  # the nearest part that exists will be written into
        target = target.parent
    if not target.is_dir():
        raise GcnsegError(f"{path}: cannot write {kind}: {target} is a file, not a folder")
    if not os.access(target, os.W_OK | os.X_OK):
        raise GcnsegError(f"{path}: cannot write {kind}: {target} is not writable")
