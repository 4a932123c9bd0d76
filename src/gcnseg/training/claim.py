"""Claiming a run folder: one training process per folder, however close two runs start.

A folder is made with `os.mkdir`, which exactly one process wins, so two runs started in the same
second never share an automatic (timestamped) name: the later one takes `NAME-2`, `NAME-3`. Every
run, whatever its name, then holds an exclusive lock on `.lock` in the folder (the file holds its
process id) until it ends; a second run on the same folder (same `--name`, `--resume` or
`--overwrite` while the first is alive) is refused in one line. The lock is the kernel's
(`flock`), so a run killed with kill -9 leaves no stale lock behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from gcnseg.errors import GcnsegError
from gcnseg.training.checkpoints import check_run_dir
from gcnseg.training.distributed import DistInfo, from_main

LOCK_FILE = ".lock"


def _make(run_dir: Path, numbered: bool) -> tuple[Path, bool]:
    """(folder, whether this process made it): `run_dir`, or with `numbered` the first free of
    `run_dir`, `run_dir-2`, `run_dir-3`, ... made here."""
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    number = 1
    while True:
        folder = run_dir if number == 1 else run_dir.with_name(f"{run_dir.name}-{number}")
        try:
            os.mkdir(folder)
            return folder, True
        except FileExistsError:
            if not numbered:
                return folder, False
        number += 1


def _lock(run_dir: Path) -> int:
    """An open descriptor holding the folder's lock, or GcnsegError naming the holder."""
    path = run_dir / LOCK_FILE
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise GcnsegError(
                f"{run_dir}: another training run (process {holder}) is using this run folder; "
                "wait for it to end, or pick another --name"
            ) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:  # not a file its last holder unlinked while this process waited to lock it
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return fd
        os.close(fd)


def _release(run_dir: Path, fd: int, made: bool) -> None:
    (run_dir / LOCK_FILE).unlink(missing_ok=True)  # while still locked: nobody else holds it
    os.close(fd)
    if made:
        with contextlib.suppress(OSError):  # only if empty: a run that failed before writing
            run_dir.rmdir()


@contextlib.contextmanager
def claim_run_dir(
    run_dir: Path, info: DistInfo, *, numbered: bool, resuming: bool, overwrite: bool
) -> Iterator[Path]:
    """Hold `run_dir` (or, with `numbered`, the next free numbered name) for this training run.

    Rank 0 claims and tells the other ranks the folder (or the refusal), so all use one folder.
    The folder is checked again once locked: a run that ended between the first check and the
    lock may have left a finished run in it.
    """
    claimed: tuple[int, bool] | None = None
    outcome: tuple[str, str | None]
    if info.is_main:
        try:
            run_dir, made = _make(run_dir, numbered)
            claimed = _lock(run_dir), made
            check_run_dir(run_dir, resuming=resuming, overwrite=overwrite)
            outcome = str(run_dir), None
        except (GcnsegError, OSError) as exc:
            if claimed is not None:
                _release(run_dir, *claimed)
            if isinstance(exc, OSError):
                exc = GcnsegError(f"{run_dir}: cannot make the run folder ({exc.strerror or exc})")
            outcome = str(run_dir), str(exc)
    folder, refusal = from_main(outcome if info.is_main else None)  # type: ignore[misc]
    if refusal is not None:
        raise GcnsegError(refusal)
    try:
        yield Path(folder)
    finally:
        if claimed is not None:
            _release(Path(folder), *claimed)
