"""Run folders written directly, as training leaves them (no training): a resumable last.pt, or
the split and data record a run writes at its start."""

from __future__ import annotations

from pathlib import Path

import torch

from gcnseg.checkpoint import save_checkpoint
from gcnseg.config import Config
from gcnseg.data.layouts import index_dataset
from gcnseg.data.oxford_pets import PETS
from gcnseg.data.samples import DatasetIndex
from gcnseg.data.splits import make_split, save_manifest
from gcnseg.io.atomic import write_json
from gcnseg.training.rundata import data_record


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


def write_started_run(data: Path, run_dir: Path) -> tuple[DatasetIndex, dict]:
    """manifest.json (a seeded quarter for test, a quarter for val) and data.json of `data`."""
    index = index_dataset(data)
    manifest = make_split(index, test_fraction=0.25, val_fraction=0.25, seed=0)
    run_dir.mkdir(parents=True)
    save_manifest(run_dir / "manifest.json", manifest)
    write_json(run_dir / "data.json", data_record(index, manifest))
    return index, manifest
