"""What a run keeps in its folder: checkpoints, the jsonl logs, and the checks around them.

Every file is written atomically (gcnseg.io.atomic), so a kill leaves the previous version, never a
torn one; what a kill can leave is a temporary file (removed when the run starts or resumes) and a
torn last line of an appended log (dropped, with a warning, when the run resumes).
"""

from __future__ import annotations

import copy
import errno
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from gcnseg.checkpoint import load_checkpoint, save_checkpoint
from gcnseg.config import Config, apply_overrides, saved_config_from_dict
from gcnseg.errors import GcnsegError
from gcnseg.io.atomic import write_text
from gcnseg.io.formats import finite

log = logging.getLogger(__name__)

# What a run writes into its folder; `--overwrite` removes exactly these.
RUN_FILES = (
    "last.pt",
    "best.pt",
    "metrics.jsonl",
    "steps.jsonl",
    "learning_curve.png",
    "config.yaml",
    "manifest.json",
    "data.json",
)
RUN_FOLDERS = ("tensorboard",)
# A folder holding any of these holds a run: training into it again needs --resume or --overwrite.
RUN_MARKERS = ("last.pt", "best.pt", "metrics.jsonl")
RESUME_KEYS = ("model", "optimizer", "schedule", "progress", "torch_rng", "config", "classes")


def check_run_dir(run_dir: Path, *, resuming: bool, overwrite: bool) -> None:
    """Refuse, before any work, a run folder that cannot be written or would lose an earlier run.

    Only reads: under torchrun every rank calls it before rank 0 writes anything.
    """
    if run_dir.exists() and not run_dir.is_dir():
        raise GcnsegError(f"{run_dir}: is a file, not a folder; pick another --name or --output")
    ancestor = run_dir
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise GcnsegError(f"{ancestor}: is a file, so the run folder {run_dir} cannot be made")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise GcnsegError(f"{ancestor}: not writable, so the run folder {run_dir} cannot be made")
    if resuming or overwrite or not run_dir.is_dir():
        return
    held = [name for name in RUN_MARKERS if (run_dir / name).exists()]
    if held:
        raise GcnsegError(
            f"{run_dir} already holds a run ({held[0]}): continue it with --resume {run_dir}, "
            "pick another --name, or pass --overwrite to replace it"
        )


def clear_run_dir(run_dir: Path) -> None:
    """`--overwrite`: remove the earlier run's outputs, so the two runs' logs never mix."""
    for name in RUN_FILES:
        (run_dir / name).unlink(missing_ok=True)
    for name in RUN_FOLDERS:
        shutil.rmtree(run_dir / name, ignore_errors=True)


def remove_temp_files(run_dir: Path) -> None:
    """Delete the temporary files a kill left behind (atomic writes name them `.NAME.*.tmp*`)."""
    for name in RUN_FILES:
        for tmp in run_dir.glob(f".{name}.*.tmp*"):
            tmp.unlink(missing_ok=True)
            log.info("removed %s (left by an interrupted write)", tmp)


def load_resume(run_dir: Path, overrides: list[str] | None = None) -> tuple[dict[str, Any], Config]:
    """A run's last.pt and the config a resume trains with: the one saved in it, changed by
    `overrides` (e.g. `train.epochs=40`). The one source for resuming and for showing that config.
    """
    path = run_dir / "last.pt"
    if not path.is_file():
        raise GcnsegError(f"{run_dir}: no last.pt to resume from (is this a run folder?)")
    state = load_checkpoint(path)
    missing = [key for key in RESUME_KEYS if key not in state]
    if missing:
        raise GcnsegError(f"{path}: not a resumable training checkpoint (no {missing[0]})")
    changed = apply_overrides(copy.deepcopy(state["config"]), overrides or [])  # keep the saved one
    return state, saved_config_from_dict(changed)


def save_run_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """One line for a full disk or a folder gone read-only; the file on disk stays the old one."""
    existed = path.is_file()
    try:
        save_checkpoint(path, payload)
    except (OSError, RuntimeError) as exc:
        # Written through a Python file, so a full disk is OSError ENOSPC ("No space left on
        # device"); a RuntimeError is torch's own failure, kept as its first line.
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        kept = f"the previous {path.name} is intact" if existed else f"there was no {path.name} yet"
        fix = _fix(exc)
        if (path.parent / "last.pt").is_file():
            then = f"{fix} and continue with --resume {path.parent}"
        else:
            then = f"{fix} and start the run again"
        raise GcnsegError(
            f"{path}: could not be written ({reason.splitlines()[0]}); {kept}: {then}"
        ) from None


def read_jsonl(path: Path) -> list[dict]:
    """The records of a jsonl log; a line a kill or a full disk tore is dropped with a warning."""
    records = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if not isinstance(record, dict):
            log.warning("%s: line %d is torn or not a record; dropped", path, number)
            continue
        records.append(record)
    return records


def truncate_jsonl(path: Path, key: str, below: int) -> None:
    """Keep only records with record[key] < below (a resumed run rewrites what came after)."""
    if path.is_file():
        kept = [r for r in read_jsonl(path) if isinstance(r.get(key), int) and r[key] < below]
        write_text(path, "".join(json_line(r) for r in kept))


def json_line(record: dict) -> str:
    """One strict JSON line: a NaN or infinite number (the IoU of a class absent from the
    validation images) is written as null, which every JSON parser reads."""
    return json.dumps(finite(record), allow_nan=False) + "\n"


def append_jsonl(path: Path, records: list[dict]) -> None:
    if not records:
        return
    try:
        with path.open("a") as handle:
            handle.writelines(json_line(r) for r in records)
    except OSError as exc:
        raise GcnsegError(
            f"{path}: could not be written ({exc.strerror or exc}); "
            f"{_fix(exc)} and continue with --resume {path.parent}"
        ) from None


def _fix(exc: BaseException) -> str:
    """What to do about a failed write: free space for a full disk, else make the folder writable."""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return "free some space"
    return "make the run folder writable"
