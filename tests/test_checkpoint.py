"""The packaged `pets-default` model: small, self-describing, and good on pets it never saw."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from gcnseg.checkpoint import load_checkpoint, model_from_checkpoint, resolve_checkpoint
from gcnseg.data.oxford_pets import PETS
from gcnseg.errors import GcnsegError
from gcnseg.evaluation.report import run_test

MANIFEST = Path(__file__).resolve().parents[1] / "manifests" / "oxford-pets-sample.json"
MAX_PACKAGED_MIB = 10


def test_packaged_model_is_small_fp16_and_carries_its_classes() -> None:
    path = resolve_checkpoint("pets-default")
    assert path.stat().st_size <= MAX_PACKAGED_MIB * 2**20
    payload = load_checkpoint("pets-default")
    floats = [v for v in payload["model"].values() if v.is_floating_point()]
    assert floats and all(v.dtype == torch.float16 for v in floats)
    model, config, classes = model_from_checkpoint(payload)
    assert classes.names == PETS.names and classes.colors == PETS.colors
    assert config.model.name.startswith("gcn_")
    logits = model(torch.rand(1, 3, 64, 96))
    assert logits.shape == (1, len(PETS.names), 64, 96) and torch.isfinite(logits).all()


def test_unknown_checkpoint_names_the_packaged_models() -> None:
    with pytest.raises(GcnsegError, match="pets-default"):
        resolve_checkpoint("pets-nonexistent")


def test_packaged_model_segments_test_split_pets(pets_root: Path, tmp_path: Path) -> None:
    """A regression guard on images held out of its training: far above an all-background guess."""
    manifest = json.loads(MANIFEST.read_text())
    names = manifest["splits"]["test"][::8]  # 13 images, cats and dogs of several breeds
    manifest["splits"] = {"train": [], "val": [], "test": names}
    subset = tmp_path / "subset.json"
    subset.write_text(json.dumps(manifest))
    report = run_test("pets-default", pets_root, manifest=subset, device="cpu", worst=0)
    assert report.images == len(names)
    assert report.metrics["pixel_accuracy"] >= 0.95
    assert report.metrics["miou"] >= 0.85
