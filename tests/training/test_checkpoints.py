"""What a resume reads from a run folder: the state, and the config it trains with."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from _runs import write_resumable_run
from gcnseg.checkpoint import save_checkpoint
from gcnseg.config import Config
from gcnseg.data.oxford_pets import PETS
from gcnseg.errors import GcnsegError
from gcnseg.training.checkpoints import load_resume


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
