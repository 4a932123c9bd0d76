"""The run folder's files: a checkpoint that cannot be written says why, and what is left."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import pytest
import torch

from gcnseg import checkpoint as checkpoint_module
from gcnseg.errors import GcnsegError
from gcnseg.training.checkpoints import save_run_checkpoint

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="needs Linux's /dev/full"
)
PAYLOAD = {"model": {"w": torch.zeros(4096)}}


@pytest.fixture
def full_disk(monkeypatch):
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
