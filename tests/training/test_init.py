"""`--init`: training starts from a segmentation model; only class-shaped layers restart."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from _data import make_tiny_folders
from gcnseg.classes import ClassSet
from gcnseg.cli import main
from gcnseg.config import load_config
from gcnseg.errors import GcnsegError
from gcnseg.training.init import apply_init, read_init
from smoke import TINY_TRAINING

LITE2 = "gcn_efficientnet_lite2"  # pets-default's architecture


@pytest.fixture(scope="module")
def pets_default_state() -> dict[str, torch.Tensor]:
    return read_init("pets-default")[0]


def _model(classes: int, *overrides: str):
    cfg = load_config(None, [f"model.name={LITE2}", *overrides])
    torch.manual_seed(0)
    return cfg, cfg.model.build(classes, backbone_weights="random")


def _names(n: int) -> ClassSet:
    return ClassSet.from_dict({"names": [f"c{i}" for i in range(n)]})


def test_other_class_count_restarts_the_class_shaped_decoder_only(pets_default_state) -> None:
    cfg, model = _model(2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fresh = apply_init(model, cfg, _names(2), "pets-default")
    state = model.state_dict()
    # decoder_width unset: the decoder carries class scores, so all of it is class-shaped
    assert fresh == [k for k in state if k.startswith("decoder.")]
    for key, value in state.items():
        expected = before[key] if key in fresh else pets_default_state[key]
        assert torch.equal(value, expected), key


def test_same_class_count_copies_everything(pets_default_state) -> None:
    cfg, model = _model(3)
    assert apply_init(model, cfg, _names(3), "pets-default") == []
    for key, value in model.state_dict().items():
        assert torch.equal(value, pets_default_state[key]), key


def test_a_wider_decoder_keeps_its_width_tied_layers_apart(pets_default_state) -> None:
    # pets-default's decoder is 3 wide (its class count); a 16-wide one cannot take those weights,
    # so the whole decoder and the classifier restart while the backbone is copied
    cfg, model = _model(2, "model.decoder_width=16")
    fresh = apply_init(model, cfg, _names(2), "pets-default")
    assert any(k.startswith("classifier.") for k in fresh)
    assert all(k.startswith(("decoder.", "classifier.")) for k in fresh)
    backbone = [k for k in model.state_dict() if k.startswith("backbone.")]
    assert backbone and not set(backbone) & set(fresh)


def test_other_model_or_shape_is_one_line() -> None:
    cfg, model = _model(3)
    cfg.model.name = "gcn_efficientnet_lite0"
    with pytest.raises(GcnsegError, match="is a gcn_efficientnet_lite2 model but this run trains"):
        apply_init(model, cfg, _names(3), "pets-default")
    cfg, model = _model(3, "model.kernel_size=7")
    with pytest.raises(GcnsegError, match=r"kernel_size or model\.decoder_width differ"):
        apply_init(model, cfg, _names(3), "pets-default")


def _binary(root: Path) -> Path:
    """The generated folders layout with both shapes as one class: object / background."""
    make_tiny_folders(root)
    for path in (root / "masks").iterdir():
        mask = np.asarray(Image.open(path))
        Image.fromarray(np.where(mask == 2, 1, mask).astype(np.uint8)).save(path)
    (root / "classes.yaml").write_text(yaml.safe_dump({"names": ["background", "object"]}))
    return root


def test_cli_trains_from_pets_default_then_from_that_run(tmp_path, monkeypatch) -> None:
    data = _binary(tmp_path / "binary")
    work = tmp_path / "elsewhere"
    work.mkdir()
    monkeypatch.chdir(work)  # nothing is read from the repository
    tiny = [x for x in TINY_TRAINING if not x.startswith("model.")]
    args = ["train", "-q", "--data", str(data), "--model", LITE2, "--epochs", "1"]
    args += ["--set", "train.max_steps_per_epoch=1", "--set", "data.batch_size=2"]
    for item in tiny:
        args += ["--set", item]
    assert main([*args, "--init", "pets-default", "--name", "first"]) == 0
    run = work / "runs" / "first"
    assert yaml.safe_load((run / "config.yaml").read_text())["model"]["init"] == "pets-default"
    # a run folder is a source too; same classes, so every tensor is copied
    assert main([*args, "--init", str(run), "--name", "second"]) == 0
    assert (work / "runs" / "second" / "best.pt").is_file()
