"""A run's data is fixed at its start: a resume gets the run's own split, and other data is one
line. On a copy of the generated images/ + masks/ set; no training (see test_run_safety.py)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

from _runs import write_started_run
from gcnseg.config import load_config
from gcnseg.errors import GcnsegError
from gcnseg.training.rundata import read_data_record, resume_data

SPLIT = ["data.test_fraction=0.25", "data.val_fraction=0.25"]


@pytest.fixture
def run(tiny_folders: Path, tmp_path: Path) -> dict:
    """A run folder as a run leaves it at its start: manifest.json and data.json of a copy."""
    data = tmp_path / "data"
    shutil.copytree(tiny_folders, data)
    run_dir = tmp_path / "runs" / "r"
    index, manifest = write_started_run(data, run_dir)
    cfg = load_config(None, [f"data.root={data}", *SPLIT])
    return {
        "dir": run_dir,
        "data": data,
        "manifest": manifest,
        "cfg": cfg,
        "classes": index.classes,
    }


def _resume(run: dict, *overrides: str):
    cfg = load_config(None, [f"data.root={run['data']}", *SPLIT, *overrides])
    return resume_data(run["dir"], cfg, run["cfg"].to_dict(), run["classes"])


def _refusal(run: dict, *overrides: str) -> str:
    with pytest.raises(GcnsegError) as exc:
        _resume(run, *overrides)
    assert "\n" not in str(exc.value)
    return str(exc.value)


def test_the_record_holds_every_file_of_the_split(run: dict) -> None:
    record = read_data_record(run["dir"])
    assert record["root"] == str(run["data"].resolve())
    names = [n for split in run["manifest"]["splits"].values() for n in split]
    assert sorted(record["files"]) == sorted(
        f"{folder}/{name}.png" for name in names for folder in ("images", "masks")
    )
    size = (run["data"] / "images" / f"{names[0]}.png").stat().st_size
    assert record["files"][f"images/{names[0]}.png"][0] == size


def test_pairs_added_since_the_start_leave_the_split_as_it_was(run: dict) -> None:
    for i in range(6):
        for folder in ("images", "masks"):
            shutil.copy(run["data"] / folder / "scene_0.png", run["data"] / folder / f"new_{i}.png")
    index, manifest = _resume(run)
    assert manifest["splits"] == run["manifest"]["splits"]
    assert len(index.samples) == 14  # the new pairs are there, and in no split


def test_the_recorded_folder_is_used_from_anywhere(run: dict, tmp_path: Path, monkeypatch) -> None:
    relative = load_config(None, ["data.root=data", *SPLIT])
    monkeypatch.chdir(tmp_path / "runs")  # where `data` is no folder
    index, _ = resume_data(run["dir"], relative, relative.to_dict(), run["classes"])
    assert index.root == run["data"].resolve()


def test_another_data_root_is_refused(run: dict, tiny_pets: Path) -> None:
    message = _refusal(run, f"data.root={tiny_pets}")
    assert message.startswith(f"{run['dir']}: trains on {run['data'].resolve()}, not {tiny_pets}")
    assert "a run's data is fixed at its start" in message


@pytest.mark.parametrize(
    "override",
    ["data.split_seed=1", "data.val_fraction=0.5", "data.max_side=500", "data.manifest=m.json"],
)
def test_other_split_settings_are_refused(run: dict, override: str) -> None:
    key = override.partition("=")[0]
    assert f"{key} cannot change on resume" in _refusal(run, override)


def test_a_missing_or_changed_file_is_refused(run: dict) -> None:
    split = run["manifest"]["splits"]
    (run["data"] / "masks" / f"{split['val'][0]}.png").unlink()
    with (run["data"] / "images" / f"{split['train'][0]}.png").open("ab") as handle:
        handle.write(b"more")
    message = _refusal(run)
    assert f"1 missing (e.g. masks/{split['val'][0]}.png)" in message
    assert f"1 changed since the run started (e.g. images/{split['train'][0]}.png)" in message


def test_a_file_rewritten_in_place_with_the_same_size_is_refused(run: dict) -> None:
    name = run["manifest"]["splits"]["test"][0]
    path = run["data"] / "masks" / f"{name}.png"
    stat = path.stat()
    path.write_bytes(bytes(reversed(path.read_bytes())))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert f"changed since the run started (e.g. masks/{name}.png)" in _refusal(run)


def test_another_class_set_is_named(run: dict) -> None:
    (run["data"] / "classes.yaml").write_text(yaml.safe_dump({"names": ["background", "a", "b"]}))
    message = _refusal(run)
    assert message.startswith(f"{run['data'].resolve()}: has classes ['background', 'a', 'b']")
    assert f"but {run['dir']} trains ['background', 'disc', 'box']" in message


def test_a_run_folder_without_its_manifest_is_refused(run: dict) -> None:
    (run["dir"] / "manifest.json").unlink()
    assert "no manifest.json, so the split this run started with is unknown" in _refusal(run)
