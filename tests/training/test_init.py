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
from gcnseg.config import Config, ModelConfig, load_config
from gcnseg.errors import GcnsegError
from gcnseg.io.atomic import write_json
from gcnseg.training import init as init_module
from gcnseg.training import run as run_module
from gcnseg.training.init import apply_init, follow_init_model, read_init, source_model
from gcnseg.training.loop import train
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


def test_the_source_implies_its_model_unless_the_command_line_names_one() -> None:
    cfg = load_config(None, ["model.init=pets-default"])
    assert cfg.model.name == "gcn_efficientnet_lite0"  # the default config's
    assert follow_init_model(cfg, []).model.name == LITE2
    named = ["model.init=pets-default", "model.name=gcn_efficientnet_lite0"]
    assert follow_init_model(load_config(None, named), named).model.name == "gcn_efficientnet_lite0"


def _save_run(run: Path, config: Config) -> None:
    """A run folder whose best.pt holds `config` and weights that fit no model."""
    from gcnseg.checkpoint import save_checkpoint

    payload = {
        "model": {"w": torch.zeros(1)},
        "config": config.to_dict(),
        "classes": _names(2).to_dict(),
    }
    save_checkpoint(run / "best.pt", payload)


def test_the_source_implies_its_decoder_refinement_too(tmp_path: Path) -> None:
    config = Config()
    config.model.refine = "full"
    _save_run(tmp_path / "run", config)
    source = [f"model.init={tmp_path / 'run'}"]
    assert load_config(None, source).model.refine == "quarter"  # the default
    assert follow_init_model(load_config(None, source), source).model.refine == "full"
    named = [*source, "model.refine=quarter"]
    assert follow_init_model(load_config(None, named), named).model.refine == "quarter"


def test_the_source_model_is_read_from_its_config_alone(tmp_path: Path) -> None:
    """Weights that fit no model: nothing is built, only the config is read."""
    config = Config()
    config.model.name = "gcn_resnet18"
    run = tmp_path / "run"
    _save_run(run, config)
    assert source_model(str(run))["name"] == "gcn_resnet18"
    pretrained = tmp_path / "pretrained"  # a save_pretrained folder: config.json
    config.model.name = "gcn_resnet50"
    write_json(
        pretrained / "config.json", {"config": config.to_dict(), "classes": _names(2).to_dict()}
    )
    assert source_model(str(pretrained))["name"] == "gcn_resnet50"
    (tmp_path / "model.onnx").write_bytes(b"")
    with pytest.raises(GcnsegError, match="an ONNX file holds no trainable weights"):
        source_model(str(tmp_path / "model.onnx"))


def test_another_model_is_refused_before_any_loading(tmp_path: Path, monkeypatch) -> None:
    def loaded(*args, **kwargs):
        raise AssertionError("loaded before the model was checked")

    monkeypatch.setattr(init_module, "read_init", loaded)
    monkeypatch.setattr(run_module, "index_dataset", loaded)
    monkeypatch.setattr(ModelConfig, "build", loaded)
    cfg = load_config(None, ["model.init=pets-default", f"data.root={tmp_path}"])
    cfg.train.output = str(tmp_path / "runs")
    with pytest.raises(GcnsegError) as exc:
        train(cfg, progress_bar=False)
    assert str(exc.value).startswith(
        f"--init pets-default is a {LITE2} model but this run trains gcn_efficientnet_lite0; "
        f"pass --model {LITE2}, or leave --model out"
    )
    assert not (tmp_path / "runs").exists()


def test_cli_init_needs_no_model_flag(tiny_folders: Path, capsys) -> None:
    argv = ["train", "--data", str(tiny_folders), "--init", "pets-default", "--print-config"]
    assert main(argv) == 0
    assert yaml.safe_load(capsys.readouterr().out)["model"]["name"] == LITE2


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
    args = ["train", "-q", "--data", str(data), "--epochs", "1"]
    args += ["--set", "train.max_steps_per_epoch=1", "--set", "data.batch_size=2"]
    for item in tiny:
        args += ["--set", item]
    assert main([*args, "--init", "pets-default", "--name", "first"]) == 0
    run = work / "runs" / "first"
    assert yaml.safe_load((run / "config.yaml").read_text())["model"]["init"] == "pets-default"
    # a run folder is a source too; same classes, so every tensor is copied
    assert main([*args, "--init", str(run), "--name", "second"]) == 0
    assert (work / "runs" / "second" / "best.pt").is_file()
