"""What `test` and `predict` score by default: a run folder's own data and split; a named split
needs a manifest. On a run folder as training leaves it (no model is loaded here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from _runs import write_started_run
from gcnseg.errors import GcnsegError
from gcnseg.evaluation.run_split import Scored, run_test_images, scored_data


@pytest.fixture
def run(tiny_folders: Path, tmp_path: Path) -> Path:
    run_dir = tmp_path / "runs" / "r"
    write_started_run(tiny_folders, run_dir)
    (run_dir / "config.yaml").write_text(yaml.safe_dump({"data": {"root": "elsewhere"}}))
    return run_dir


def _selection(scored: Scored) -> tuple:
    return scored.root, scored.manifest, scored.split


def test_a_run_folder_scores_its_own_test_split(run: Path, tiny_folders: Path) -> None:
    own = (tiny_folders.resolve(), run / "manifest.json", "test")
    assert _selection(scored_data(run)) == own
    assert _selection(scored_data(run / "best.pt")) == own  # one of its checkpoints names it too
    assert _selection(scored_data(run, split="val")) == (*own[:2], "val")
    index = scored_data(run).index  # the data indexed once, for the caller
    assert index.root.resolve() == tiny_folders.resolve() and len(index.samples) > 0
    assert scored_data(run, data_root=tiny_folders).manifest == run / "manifest.json"


def test_an_older_run_folder_falls_back_to_its_config(run: Path, tiny_folders: Path) -> None:
    (run / "data.json").unlink()
    (run / "config.yaml").write_text(yaml.safe_dump({"data": {"root": str(tiny_folders)}}))
    assert scored_data(run).root == tiny_folders


def test_other_data_is_scored_whole_and_a_split_of_it_needs_a_manifest(
    run: Path, tiny_pets: Path
) -> None:
    assert _selection(scored_data(run, data_root=tiny_pets)) == (tiny_pets, None, None)
    assert _selection(scored_data("pets-default", data_root=tiny_pets)) == (tiny_pets, None, None)
    for checkpoint in (run, "pets-default"):
        with pytest.raises(GcnsegError) as exc:
            scored_data(checkpoint, data_root=tiny_pets, split="val")
        message = str(exc.value)
        assert message.startswith("split 'val' needs a manifest (--manifest)")
        assert "training images included" in message and "\n" not in message


def test_a_checkpoint_without_a_run_folder_needs_data(tmp_path: Path) -> None:
    with pytest.raises(GcnsegError, match=r"pets-default: no dataset to score: pass data_root"):
        scored_data("pets-default")
    (tmp_path / "model.pt").write_bytes(b"x")
    with pytest.raises(GcnsegError, match="no dataset to score"):
        scored_data(tmp_path / "model.pt")


def test_predict_defaults_to_the_test_images_of_a_run(run: Path, tiny_folders: Path) -> None:
    test = json.loads((run / "manifest.json").read_text())["splits"]["test"]
    assert run_test_images(run) == [
        str(tiny_folders.resolve() / "images" / f"{name}.png") for name in test
    ]
    with pytest.raises(GcnsegError, match="no inputs: pass images"):
        run_test_images("pets-default")
