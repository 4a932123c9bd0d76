"""The packaged `pets-default` model: small, self-describing, and good on pets it never saw."""

from __future__ import annotations

import gzip
import io
import json
import os
import zlib
from pathlib import Path

import pytest
import torch

from gcnseg import checkpoint
from gcnseg.checkpoint import load_checkpoint, save_checkpoint
from gcnseg.config import Config
from gcnseg.data.camvid import CAMVID_CLASSES
from gcnseg.data.oxford_pets import PETS
from gcnseg.errors import GcnsegError
from gcnseg.evaluation.report import run_test
from gcnseg.source import packaged_models, read_model, resolve_source

MANIFEST = Path(__file__).resolve().parents[1] / "manifests" / "oxford-pets-sample.json"
MAX_PACKAGED_MIB = 10
# On these 11 val frames camvid-default, which learned from val, scores 0.861 mIoU and 0.971 pixel
# accuracy; the recipe trained on train alone, 0.724 and 0.935: the floor guards the loading.
CAMVID_SUBSET_MIN = {"miou": 0.65, "pixel_accuracy": 0.90}


@pytest.mark.parametrize("name", packaged_models())
def test_packaged_models_are_small_fp16_and_carry_their_classes(name: str) -> None:
    path = resolve_source(name).path
    assert path.stat().st_size <= MAX_PACKAGED_MIB * 2**20
    payload = load_checkpoint(path)
    floats = [v for v in payload["model"].values() if v.is_floating_point()]
    assert floats and all(v.dtype == torch.float16 for v in floats)
    trained = read_model(name)
    model, config, classes = trained.model, trained.config, trained.classes
    expected = {"pets-default": PETS, "camvid-default": CAMVID_CLASSES}[name]
    assert classes.names == expected.names and classes.colors == expected.colors
    assert classes.background == expected.background  # CamVid has none: sky is painted
    assert config.model.name.startswith("gcn_")
    logits = model(torch.rand(1, 3, 64, 96))
    assert logits.shape == (1, len(expected.names), 64, 96) and torch.isfinite(logits).all()


def test_unknown_checkpoint_names_the_packaged_models() -> None:
    with pytest.raises(GcnsegError, match="pets-default"):
        resolve_source("pets-nonexistent")


# Real photos (skips without ../shared): accuracy on generated shapes would say nothing.
def test_packaged_model_segments_test_split_pets(pets_root: Path, tmp_path: Path) -> None:
    """A regression guard on images held out of its training: far above an all-background guess."""
    manifest = json.loads(MANIFEST.read_text())
    names = manifest["splits"]["test"][::8]  # 13 images, cats and dogs of several breeds
    manifest["splits"] = {"train": [], "val": [], "test": names}
    subset = tmp_path / "subset.json"
    subset.write_text(json.dumps(manifest))
    report = run_test("pets-default", pets_root, manifest=subset, device="cpu", worst=0)
    assert report.scored == report.listed == len(names) and not report.skipped
    assert report.metrics["pixel_accuracy"] >= 0.95
    assert report.metrics["miou"] >= 0.85


def _tiny_payload() -> dict:
    """A structurally valid checkpoint: weights, config and classes (the weights fit no model)."""
    return {
        "model": {"head.weight": torch.zeros(2, 3)},
        "config": Config().to_dict(),
        "classes": PETS.to_dict(),
    }


def _crafted(case: str, path: Path) -> None:
    """Write a broken or foreign checkpoint to `path`."""
    payload = _tiny_payload()
    if case == "empty":
        path.write_bytes(b"")
    elif case == "text":
        path.write_text("this is not a checkpoint\n")
    elif case == "list":
        torch.save([1, 2, 3], path)
    elif case == "no-classes":
        torch.save({k: v for k, v in payload.items() if k != "classes"}, path)
    elif case == "model-not-tensors":
        torch.save(payload | {"model": {"w": [1.0, 2.0]}}, path)
    elif case == "bad-config":
        torch.save(payload | {"config": {"optim": {"lr": -1.0}}}, path)
    elif case == "bad-classes":
        torch.save(payload | {"classes": {"names": "background cat"}}, path)
    elif case == "truncated-gzip":
        save_checkpoint(path, payload)
        path.write_bytes(path.read_bytes()[:-20])
    elif case == "gzip-garbage":
        path.write_bytes(b"\x1f\x8b" + os.urandom(200))


CRAFTED = {
    "empty": "empty file",
    "text": "not a readable checkpoint",
    "list": "not a gcnseg checkpoint",
    "no-classes": "needs model weights, config and classes",
    "model-not-tensors": "model is not a dict of tensors",
    "bad-config": "optim.lr",
    "bad-classes": "names must be a list",
    "truncated-gzip": "truncated gzip",
    "gzip-garbage": "gzip",
}


@pytest.mark.parametrize("case", CRAFTED)
def test_broken_checkpoints_are_one_line(tmp_path: Path, case: str) -> None:
    path = tmp_path / ("c.pt.gz" if "gzip" in case else "c.pt")
    _crafted(case, path)
    with pytest.raises(GcnsegError) as exc:
        load_checkpoint(path)
    message = str(exc.value)
    assert message.startswith(str(path)) and CRAFTED[case] in message and "\n" not in message


def test_gzip_round_trip_and_multi_member(tmp_path: Path) -> None:
    path = tmp_path / "c.pt.gz"
    save_checkpoint(path, _tiny_payload())
    assert torch.equal(load_checkpoint(path)["model"]["head.weight"], torch.zeros(2, 3))
    buffer = io.BytesIO()
    torch.save(_tiny_payload(), buffer)
    raw = buffer.getvalue()
    split = tmp_path / "two.pt.gz"  # `cat a.gz b.gz` is valid gzip too
    split.write_bytes(gzip.compress(raw[:100]) + gzip.compress(raw[100:]))
    assert load_checkpoint(split)["classes"] == PETS.to_dict()


def test_gzip_ratio_limit_holds_for_small_files(tmp_path: Path) -> None:
    """A 60 KB file that inflates to 60 MB is refused: the ratio limit, not a large floor."""
    path = tmp_path / "small-bomb.pt.gz"
    path.write_bytes(gzip.compress(b"\0" * (60 << 20)))
    assert path.stat().st_size < 100_000
    with pytest.raises(GcnsegError, match="refused as a gzip bomb"):
        load_checkpoint(path)


def test_gzip_bomb_is_refused_without_inflating_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A few KB of gzip that claims many MB: stopped at the limit, not after filling memory."""
    monkeypatch.setattr(checkpoint, "GZIP_MIN_BYTES", 1 << 20)
    path = tmp_path / "bomb.pt.gz"
    path.write_bytes(gzip.compress(b"\0" * (64 << 20)))  # 64 MiB of zeros in about 64 KB
    assert path.stat().st_size < 100_000
    inflated: list[int] = []
    real = zlib.decompressobj

    class Spy:
        def __init__(self, *args: object, **kwargs: object) -> None:
            self._d = real(*args, **kwargs)

        def decompress(self, data: bytes, max_length: int = 0) -> bytes:
            out = self._d.decompress(data, max_length)
            inflated.append(len(out))
            return out

        def __getattr__(self, name: str) -> object:
            return getattr(self._d, name)

    monkeypatch.setattr(checkpoint.zlib, "decompressobj", Spy)
    with pytest.raises(GcnsegError, match="refused as a gzip bomb") as exc:
        load_checkpoint(path)
    assert str(path) in str(exc.value)
    assert sum(inflated) <= 2 << 20  # at most the limit (1 MiB here) plus one byte, never 64 MiB


def test_packaged_camvid_model_segments_val_frames(camvid_root: Path, tmp_path: Path) -> None:
    """A regression guard on real road scenes: every 10th val frame, scored like `gcnseg test`
    (frames the shipped weights learned from, so a check of loading and scoring, not of skill)."""
    from gcnseg.data.layouts import index_dataset

    names = index_dataset(camvid_root).official_splits["val"][::10]
    subset = tmp_path / "subset.json"
    subset.write_text(json.dumps({"splits": {"train": [], "val": [], "test": names}}))
    report = run_test(
        "camvid-default", camvid_root, manifest=subset, engine="torch-fp32", device="cpu", worst=0
    )
    assert report.scored == report.listed == len(names) and not report.skipped
    assert report.metrics["pixel_accuracy"] >= CAMVID_SUBSET_MIN["pixel_accuracy"]
    assert report.metrics["miou"] >= CAMVID_SUBSET_MIN["miou"]
