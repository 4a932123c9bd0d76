"""A run folder holding a resumable last.pt, written directly: what a resume reads, no training."""

from __future__ import annotations

from pathlib import Path

import torch

from gcnseg.checkpoint import save_checkpoint
from gcnseg.config import Config
from gcnseg.data.oxford_pets import PETS


def write_resumable_run(run_dir: Path, config: Config) -> Path:
    """Every key a resume needs; the weights are a stand-in (nothing here builds the model)."""
    payload = {
        "model": {"weight": torch.zeros(1)},
        "optimizer": {},
        "schedule": {},
        "progress": {"epoch": 1, "global_step": 3},
        "torch_rng": torch.get_rng_state(),
        "config": config.to_dict(),
        "classes": PETS.to_dict(),
    }
    save_checkpoint(run_dir / "last.pt", payload)
    return run_dir
