"""Verified, resumable downloads and safe tar extraction.

Datasets and pretrained weights are large and fetched over flaky links, so a download resumes
from its `.part` file, is checked against a known digest before it is trusted, and only then
appears under its final name. A link that stalls is abandoned, not waited on forever: like curl's
--speed-limit/--speed-time, a download slower than LOW_SPEED_BYTES per LOW_SPEED_S stops (its
`.part` is kept for the next try), as does a single read that waits longer than TIMEOUT_S.
Archives come from the internet, so extraction refuses any member that would land outside the
target directory.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import shutil
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from gcnseg.errors import GcnsegError
from gcnseg.logs import progress_enabled

_CHUNK = 1 << 20
TIMEOUT_S = 60.0  # the longest wait for any single read
LOW_SPEED_BYTES = 10 << 10  # give up when fewer than 10 KiB arrive ...
LOW_SPEED_S = 60.0  # ... within this many seconds
_HEX = re.compile(r"[0-9a-f]+")
_MIN_SHA256_PREFIX = 8


@dataclass(frozen=True)
class Speed:
    """When a download counts as stalled: a read waits more than `timeout_s`, or fewer than
    `low_bytes` arrive within `low_s` seconds (a server trickling one byte every 50 s)."""

    timeout_s: float = TIMEOUT_S
    low_bytes: int = LOW_SPEED_BYTES
    low_s: float = LOW_SPEED_S


def download_file(
    url: str,
    dest: Path,
    *,
    sha256: str | None = None,
    md5: str | None = None,
    progress: bool = True,
    speed: Speed | None = None,
) -> Path:
    """Fetch `url` to `dest`, resuming a previous `.part` and verifying the given digest(s).

    `sha256` may be a prefix of >= 8 hex digits (torchvision weight file names carry one).
    With no digest given, an existing `dest` is trusted as is. `speed` sets the stall limits
    (default: `Speed()`, from the module constants).
    """
    dest = Path(dest)
    expected = _expected_digests(sha256, md5)
    if dest.is_file() and _mismatch(dest, expected) is None:
        return dest
    part = dest.with_suffix(dest.suffix + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    _fetch(url, part, dest.name, progress, speed or Speed())
    if (bad := _mismatch(part, expected)) is not None:
        part.unlink()
        algo, want, got = bad
        raise GcnsegError(f"checksum mismatch for {url}: expected {algo} {want}, got {got}")
    os.replace(part, dest)
    return dest


def _expected_digests(sha256: str | None, md5: str | None) -> dict[str, str]:
    """Normalise the digests up front so a typo fails before a long download, not after."""
    expected: dict[str, str] = {}
    if sha256 is not None:
        sha256 = sha256.lower()
        if not (_HEX.fullmatch(sha256) and _MIN_SHA256_PREFIX <= len(sha256) <= 64):
            raise GcnsegError(f"bad sha256 {sha256!r}: need 8 to 64 hex digits")
        expected["sha256"] = sha256
    if md5 is not None:
        md5 = md5.lower()
        if not (_HEX.fullmatch(md5) and len(md5) == 32):
            raise GcnsegError(f"bad md5 {md5!r}: need 32 hex digits")
        expected["md5"] = md5
    return expected


def _mismatch(path: Path, expected: dict[str, str]) -> tuple[str, str, str] | None:
    """(algorithm, expected, actual) for the first digest that does not match, else None."""
    if not expected:
        return None
    hashes = {algo: hashlib.new(algo, usedforsecurity=False) for algo in expected}
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            for h in hashes.values():
                h.update(chunk)
    for algo, want in expected.items():
        got = hashes[algo].hexdigest()
        if not got.startswith(want):  # equal length unless `want` is a sha256 prefix
            return algo, want, got
    return None


def _fetch(url: str, part: Path, desc: str, progress: bool, speed: Speed) -> None:
    """Append the rest of `url` to `part`; network errors keep `part` so a rerun resumes."""
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "gcnseg"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        with urllib.request.urlopen(request, timeout=speed.timeout_s) as response:
            if offset and getattr(response, "status", None) != 206:
                offset = 0  # the server ignored Range and sends the whole file: start over
            total = _total_size(response, offset)
            written = _stream(response, part, offset, total, desc, progress, speed)
    except Stalled as e:
        raise GcnsegError(f"download failed: {url}: {e} (run again to resume)") from None
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:  # `part` is not a prefix of the file (any more): restart
            part.unlink()
            return _fetch(url, part, desc, progress, speed)
        raise GcnsegError(f"download failed: {url}: HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        raise GcnsegError(f"download failed: {url}: {e.reason}") from None
    except (OSError, http.client.HTTPException) as e:
        raise GcnsegError(f"download failed: {url}: {type(e).__name__}: {e}") from None
    if total is not None and written != total:
        raise GcnsegError(
            f"download failed: {url}: connection closed after {written} of {total} bytes "
            "(run again to resume)"
        )


def _total_size(response: http.client.HTTPResponse, offset: int) -> int | None:
    """Full file size from Content-Length (which counts only the rest on a 206), if known."""
    length = response.headers.get("Content-Length")
    return offset + int(length) if length and length.isdigit() else None


class Stalled(Exception):
    """The server sends too slowly; `_fetch` turns it into a GcnsegError naming the URL."""


def _stream(
    response: http.client.HTTPResponse,
    part: Path,
    offset: int,
    total: int | None,
    desc: str,
    progress: bool,
    speed: Speed,
) -> int:
    """Write the body after the first `offset` bytes of `part`; return the size of `part`.

    `read1` returns whatever has arrived (a plain `read` would wait for a whole chunk), so the
    rate is checked after every packet and a trickle is caught.
    """
    written = offset
    window_start, window_bytes = time.monotonic(), 0
    with (
        part.open("ab" if offset else "wb") as f,
        tqdm(
            total=total,
            initial=offset,
            desc=desc,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            disable=not (progress and progress_enabled()),  # no bars in a log file
        ) as bar,
    ):
        while chunk := response.read1(_CHUNK):
            f.write(chunk)
            written += len(chunk)
            bar.update(len(chunk))
            window_bytes += len(chunk)
            elapsed = time.monotonic() - window_start
            if elapsed >= speed.low_s:
                if window_bytes < speed.low_bytes:
                    raise Stalled(
                        f"only {window_bytes} bytes in {elapsed:.0f} s, "
                        f"below {speed.low_bytes} per {speed.low_s:g} s"
                    )
                window_start, window_bytes = time.monotonic(), 0
    return written


def safe_extract_tar(archive: Path, target: Path) -> None:
    """Extract a .tar/.tar.gz into `target`, refusing members that would escape it.

    Everything is unpacked into a temporary directory beside `target` first and moved in only
    when the whole archive has passed, so a rejected or corrupt archive leaves `target` as it was.
    """
    archive, target = Path(archive), Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".extract", dir=target.parent))
    try:
        _extract_checked(archive, tmp)
        target.mkdir(exist_ok=True)
        _merge_into(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _extract_checked(archive: Path, dest: Path) -> None:
    """Our own member checks (the same on every Python) plus tarfile's "data" filter if present."""
    extra = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
    try:
        with tarfile.open(archive, "r:*") as tar:
            tar.extractall(dest, members=_checked_members(tar, archive, dest), **extra)
    except GcnsegError:
        raise
    except getattr(tarfile, "FilterError", ()) as e:
        raise GcnsegError(f"unsafe archive {archive}: member {e.tarinfo.name!r}: {e}") from None
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise GcnsegError(f"cannot extract {archive}: {e}") from None


def _checked_members(tar: tarfile.TarFile, archive: Path, dest: Path) -> Iterator[tarfile.TarInfo]:
    """Check each member just before it is extracted, so links already on disk are followed."""
    root = os.path.realpath(dest)
    for member in tar:
        problem = _member_problem(member, root)
        if problem is not None:
            raise GcnsegError(f"unsafe archive {archive}: member {member.name!r} {problem}")
        yield member


def _member_problem(member: tarfile.TarInfo, root: str) -> str | None:
    """Why `member` may not be extracted under `root`, or None when it is safe."""
    if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
        return "is a device, fifo or other special file"
    if os.path.isabs(member.name) or not _inside(os.path.join(root, member.name), root):
        return "would be written outside the target directory"
    if member.issym() or member.islnk():
        if os.path.isabs(member.linkname):
            return f"links to the absolute path {member.linkname!r}"
        base = os.path.dirname(member.name) if member.issym() else ""
        if not _inside(os.path.join(root, base, member.linkname), root):
            return f"links outside the target directory ({member.linkname!r})"
    return None


def _inside(path: str, root: str) -> bool:
    """Whether `path`, with symlinks resolved, is `root` or below it."""
    return os.path.commonpath([os.path.realpath(path), root]) == root


def _merge_into(src: Path, dst: Path) -> None:
    """Move the entries of `src` into `dst`: new subtrees by one rename, existing dirs merged."""
    for entry in src.iterdir():
        there = dst / entry.name
        entry_is_dir = entry.is_dir() and not entry.is_symlink()
        there_is_dir = there.is_dir() and not there.is_symlink()
        if entry_is_dir and there_is_dir:
            _merge_into(entry, there)
        elif not os.path.lexists(there) or not (entry_is_dir or there_is_dir):
            os.replace(entry, there)
        else:
            raise GcnsegError(f"cannot extract over {there}: a file and a directory clash")
