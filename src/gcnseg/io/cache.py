"""The one folder gcnseg writes to without being asked: ONNX exports of a model (so the `onnx` and
`openvino` engines start in a second the next time) and backbone weights fetched from a URL.

- Where: `~/.cache/gcnseg`; `$GCNSEG_CACHE` (a library call's `cache_dir`) moves it.
- Off: `GCNSEG_CACHE=off` (`cache_dir=False`): exports go to a temporary folder, removed once the
  engine has loaded them, and downloads likewise.
- Size: the ONNX exports are capped at `$GCNSEG_CACHE_MB` megabytes (default 256, about a dozen
  exports); past it the least recently used are deleted.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from gcnseg.errors import GcnsegError

CACHE_ENV = "GCNSEG_CACHE"
LIMIT_ENV = "GCNSEG_CACHE_MB"
DEFAULT_LIMIT_MB = 256
OFF = "off"

# A folder, False for no cache, None for $GCNSEG_CACHE or the default.
CacheDir = str | Path | Literal[False] | None


def cache_root(cache_dir: CacheDir = None) -> Path | None:
    """The cache folder `cache_dir` (or the environment) asks for, or None when caching is off."""
    if cache_dir is False:
        return None
    if cache_dir is None:
        cache_dir = os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "gcnseg"
    if str(cache_dir).strip().lower() == OFF:
        return None
    return Path(cache_dir).expanduser()


@contextlib.contextmanager
def cache_folder(folder: Path | None) -> Iterator[Path]:
    """`folder`, or with the cache off (None) a temporary folder removed after the block."""
    if folder is not None:
        yield folder
        return
    with tempfile.TemporaryDirectory(prefix="gcnseg-") as tmp:
        yield Path(tmp)


def limit_bytes() -> int:
    """The size cap from `$GCNSEG_CACHE_MB`, in bytes."""
    raw = os.environ.get(LIMIT_ENV, "").strip()
    if not raw:
        return DEFAULT_LIMIT_MB * 2**20
    try:
        megabytes = float(raw)
    except ValueError:
        megabytes = -1.0
    if not megabytes >= 0:  # also refuses nan
        raise GcnsegError(f"{LIMIT_ENV}={raw!r}: expected a size in megabytes, e.g. 256")
    return int(megabytes * 2**20)


def touch(path: Path) -> None:
    """Mark `path` as just used: eviction goes by last use."""
    with contextlib.suppress(OSError):
        os.utime(path)


def evict(folder: Path, pattern: str, limit: int, *, keep: Path | None = None) -> list[Path]:
    """Delete the least recently used `pattern` files of `folder` until they fit in `limit` bytes;
    `keep` (the entry in use) is never deleted. Returns what was deleted."""
    entries = []
    for path in folder.glob(pattern):
        with contextlib.suppress(OSError):  # another process may delete it meanwhile
            stat = path.stat()
            entries.append((stat.st_mtime, stat.st_size, path))
    total = sum(size for _, size, _ in entries)
    deleted = []
    for _, size, path in sorted(entries):
        if total <= limit:
            break
        if path == keep:
            continue
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        total -= size
        deleted.append(path)
    return deleted
