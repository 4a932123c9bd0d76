"""A run's data, fixed at its start: the split it trains on and what the split's files were.

A run folder keeps its split (manifest.json) and `data.json`: the dataset folder (absolute) and
the size and modification time of every image and mask the split names. A resume reads both
and never splits again: pairs added to the folder since are left out, and another dataset
folder, other split settings, other classes, or a file of the split that is missing or changed
are refused in one line. Resuming on other data would mix two experiments without a word, and a
re-split would move test images into training.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from gcnseg.classes import ClassSet
from gcnseg.config import Config
from gcnseg.data.layouts import index_dataset
from gcnseg.data.samples import DatasetIndex
from gcnseg.data.splits import SPLITS, load_manifest
from gcnseg.errors import GcnsegError

log = logging.getLogger(__name__)

DATA_FILE = "data.json"
MANIFEST_FILE = "manifest.json"
# The settings that decide the split: fixed for the life of a run.
SPLIT_SETTINGS = ("manifest", "test_fraction", "val_fraction", "split_seed", "max_side")


def data_record(index: DatasetIndex, manifest: dict) -> dict:
    """What `data.json` holds: the absolute dataset folder and, per file of the split (path
    below the folder), its [size in bytes, modification time in ns]. Stat calls only: cheap."""
    by_name = {sample.name: sample for sample in index.samples}
    files = {}
    for split in SPLITS:
        for name in manifest["splits"][split]:
            sample = by_name[name]
            for path in (sample.image, sample.mask):
                files[_below(path, index.root)] = _stamp(path)
    return {"root": str(index.root.resolve()), "files": files}


def _below(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:  # a file outside the folder (a layout that points elsewhere)
        return str(path.resolve())


def _stamp(path: Path) -> list[int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return [stat.st_size, stat.st_mtime_ns]


def read_data_record(run_dir: Path) -> dict | None:
    """The run's `data.json`, or None for a run folder written before runs kept one."""
    path = Path(run_dir) / DATA_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise GcnsegError(f"{path}: not readable ({exc})") from None
    if not (
        isinstance(record, dict)
        and isinstance(record.get("root"), str)
        and isinstance(record.get("files"), dict)
    ):
        raise GcnsegError(f"{path}: not a run's data record (needs root and files)")
    return record


def resume_data(
    run_dir: Path, cfg: Config, started: dict, classes: ClassSet
) -> tuple[DatasetIndex, dict]:
    """The index and split a resumed run trains on: its own. `started` is the config the run was
    saved with, `classes` the classes it trains; `cfg` holds the resume's overrides."""
    record = read_data_record(run_dir)
    root = _resume_root(run_dir, cfg, started, record)
    for key in SPLIT_SETTINGS:
        before, now = started.get("data", {}).get(key), getattr(cfg.data, key)
        if before != now and not (key == "manifest" and _same_path(before, now)):
            raise GcnsegError(
                f"{run_dir}: data.{key} cannot change on resume ({before!r}, now {now!r}): a "
                f"run's split is fixed at its start (its {MANIFEST_FILE})"
            )
    path = Path(run_dir) / MANIFEST_FILE
    if not path.is_file():
        raise GcnsegError(
            f"{run_dir}: no {MANIFEST_FILE}, so the split this run started with is unknown; "
            f"start a new run (--init {run_dir} starts from its weights)"
        )
    manifest = load_manifest(path)
    index = index_dataset(root)
    if index.classes.names != classes.names:
        raise GcnsegError(
            f"{root}: has classes {list(index.classes.names)}, but {run_dir} trains "
            f"{list(classes.names)}; resume with the run's own data, or start a new run "
            f"(--init {run_dir} starts from its weights)"
        )
    if record is None:
        log.warning("%s: no %s (an older run): its files are not checked", run_dir, DATA_FILE)
    else:
        _check_files(run_dir, index.root, record["files"])
    listed = {name for split in SPLITS for name in manifest["splits"][split]}
    new = sum(sample.name not in listed for sample in index.samples)
    if new:
        log.info("%s: %d pairs not in the run's split are left out", root, new)
    return index, manifest


def _same_path(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and Path(a).resolve() == Path(b).resolve()


def _resume_root(run_dir: Path, cfg: Config, started: dict, record: dict | None) -> Path:
    """The folder the run started on (absolute when recorded); another one is refused."""
    saved = started.get("data", {}).get("root")
    original = record["root"] if record else saved
    given = cfg.data.root
    if given == saved:  # not overridden: the recorded absolute folder, wherever this runs from
        return Path(original)
    if not _same_path(given, original):
        raise GcnsegError(
            f"{run_dir}: trains on {original}, not {given}: a run's data is fixed at its start; "
            f"resume without --data (data.root), or start a new run on {given} "
            f"(--init {run_dir} starts from its weights)"
        )
    return Path(given)


def _check_files(run_dir: Path, root: Path, files: dict) -> None:
    missing, changed = [], []
    for name, stamp in files.items():
        now = _stamp(root / name)
        if now is None:
            missing.append(name)
        elif now != stamp:
            changed.append(name)
    if missing or changed:
        found = []
        if missing:
            found.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if changed:
            found.append(f"{len(changed)} changed since the run started (e.g. {changed[0]})")
        raise GcnsegError(
            f"{run_dir}: of the {len(files)} files of its split in {root}, "
            f"{' and '.join(found)}; a run's data is fixed at its start: restore them, or "
            f"start a new run (--init {run_dir} starts from its weights)"
        )
