"""The run folder's files: what a resume reads (the state and the config it trains with), and a
checkpoint that cannot be written says why and what is left."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import pytest
import torch

from _runs import write_resumable_run
from gcnseg import checkpoint as checkpoint_module
from gcnseg.checkpoint import save_checkpoint
from gcnseg.config import Config
from gcnseg.data.oxford_pets import PETS
from gcnseg.errors import GcnsegError
from gcnseg.training.checkpoints import load_resume, save_run_checkpoint


def test_resume_config_is_the_saved_one_changed_by_the_overrides(tmp_path: Path) -> None:
    saved = Config()
    saved.train.epochs = 5
    saved.model.name = "gcn_k1_resnet18"
    run = write_resumable_run(tmp_path, saved)
    state, config = load_resume(run, ["train.epochs=9"])
    assert state["progress"] == {"epoch": 1, "global_step": 3}
    assert (config.train.epochs, config.model.name) == (9, "gcn_k1_resnet18")
    assert load_resume(run)[1].to_dict() == saved.to_dict()


def test_resume_without_a_resumable_last_pt_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(GcnsegError, match=r"no last\.pt to resume from"):
        load_resume(tmp_path)
    release = {"model": {"w": torch.zeros(1)}, "config": Config().to_dict()}
    save_checkpoint(tmp_path / "last.pt", release | {"classes": PETS.to_dict()})  # no optimizer
    with pytest.raises(GcnsegError, match="not a resumable training checkpoint"):
        load_resume(tmp_path)


def test_a_bad_override_names_its_key(tmp_path: Path) -> None:
    run = write_resumable_run(tmp_path, Config())
    with pytest.raises(GcnsegError, match=r"train\.epochs"):
        load_resume(run, ["train.epochs=0"])


PAYLOAD = {"model": {"w": torch.zeros(4096)}}


@pytest.fixture
def full_disk(monkeypatch):
    if not sys.platform.startswith("linux"):
        pytest.skip("needs Linux's /dev/full")
    """Every checkpoint write goes to /dev/full, which fails each write with ENOSPC."""

    @contextlib.contextmanager
    def to_dev_full(path):
        yield Path("/dev/full")

    monkeypatch.setattr(checkpoint_module, "atomic_path", to_dev_full)


def test_full_disk_says_no_space_and_that_the_previous_file_is_intact(
    tmp_path: Path, full_disk
) -> None:
    (tmp_path / "best.pt").write_bytes(b"the previous best")
    (tmp_path / "last.pt").write_bytes(b"the previous last")
    with pytest.raises(GcnsegError) as exc:
        save_run_checkpoint(tmp_path / "best.pt", PAYLOAD)
    assert str(exc.value) == (
        f"{tmp_path / 'best.pt'}: could not be written (No space left on device); the previous "
        f"best.pt is intact: free some space and continue with --resume {tmp_path}"
    )
    assert (tmp_path / "best.pt").read_bytes() == b"the previous best"


def test_full_disk_on_the_first_save_claims_no_previous_file(tmp_path: Path, full_disk) -> None:
    with pytest.raises(GcnsegError) as exc:
        save_run_checkpoint(tmp_path / "last.pt", PAYLOAD)
    message = str(exc.value)
    assert "No space left on device" in message and "inline_container" not in message
    assert "intact" not in message and "there was no last.pt yet" in message
    assert message.endswith("free some space and start the run again")
    assert not (tmp_path / "last.pt").exists()


def test_a_vanished_run_folder_is_not_called_a_full_disk(tmp_path: Path) -> None:
    from gcnseg.training.checkpoints import append_jsonl

    gone = tmp_path / "deleted-run"
    with pytest.raises(GcnsegError) as exc:
        append_jsonl(gone / "steps.jsonl", [{"step": 1}])
    assert "free some space" not in str(exc.value)
    assert "make the run folder writable" in str(exc.value)
