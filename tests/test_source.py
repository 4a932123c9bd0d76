"""One model source: every way to name a model resolves here, and every reader agrees."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import torch

from gcnseg.checkpoint import save_checkpoint
from gcnseg.classes import ClassSet
from gcnseg.cli import main
from gcnseg.config import Config
from gcnseg.errors import GcnsegError
from gcnseg.inference.export import export_model
from gcnseg.source import read_config, read_model, resolve_source, write_pretrained

CLASSES = ClassSet(("background", "road", "car"), ((0, 0, 0), (128, 64, 128), (0, 0, 142)))


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder holding a small random model's best.pt."""
    folder = tmp_path_factory.mktemp("run")
    config = Config()
    config.data.eval_size = 96
    torch.manual_seed(0)
    model = config.model.build(len(CLASSES.names), backbone_weights="random").eval()
    payload = {
        "model": model.state_dict(),
        "config": config.to_dict(),
        "classes": CLASSES.to_dict(),
    }
    save_checkpoint(folder / "best.pt", payload | {"metrics": {"miou": 0.5}})
    return folder


@pytest.fixture(scope="module")
def saved_folder(run_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    trained = read_model(run_folder)
    return write_pretrained(tmp_path_factory.mktemp("saved") / "model", trained, eval_size=96)


def test_every_kind_of_name_resolves(run_folder: Path, saved_folder: Path, tmp_path: Path) -> None:
    assert resolve_source("pets-default").kind == "checkpoint"
    assert resolve_source("pets-default").training_data["name"] == "Oxford-IIIT Pet"
    assert resolve_source(run_folder).path == run_folder / "best.pt"
    assert resolve_source(run_folder / "best.pt").kind == "checkpoint"
    assert resolve_source(saved_folder).kind == "pretrained"
    onnx = tmp_path / "m.ONNX"
    onnx.write_bytes(b"")
    assert resolve_source(onnx).kind == "onnx"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("missing.pt", "model not found"),
        ("", "no model given"),
    ],
)
def test_names_of_nothing_are_one_line(name: str, message: str) -> None:
    with pytest.raises(GcnsegError, match=message) as exc:
        resolve_source(name)
    assert "\n" not in str(exc.value)


def test_an_empty_folder_says_what_it_lacks(tmp_path: Path) -> None:
    with pytest.raises(GcnsegError, match=r"no best\.pt or last\.pt.*config\.json"):
        resolve_source(tmp_path)


def test_saved_folder_reads_back_the_same_model(run_folder: Path, saved_folder: Path) -> None:
    original, again = read_model(run_folder), read_model(saved_folder)
    assert again.classes == CLASSES and again.name == original.name
    assert again.eval_size == 96 and again.metrics == {"miou": 0.5}
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(again.model(x), original.model(x))


def test_read_config_needs_no_model(saved_folder: Path, run_folder: Path) -> None:
    for source in (saved_folder, run_folder):
        config, classes = read_config(source)
        assert config.model.name == "gcn_efficientnet_lite0" and classes == CLASSES


@pytest.mark.parametrize(
    "out_name", ["model.onnx", "MODEL.ONNX", "release.pt", "release.pt.gz", "copy"]
)
def test_export_works_from_a_saved_folder(
    saved_folder: Path, tmp_path: Path, out_name: str
) -> None:
    if "onnx" in out_name.lower():
        pytest.importorskip("onnx", reason="the [onnx] extra is not installed")
    out = tmp_path / out_name
    assert main(["-q", "export", "--checkpoint", str(saved_folder), "--out", str(out)]) == 0
    reread = read_model(out) if not out_name.lower().endswith(".onnx") else None
    if reread is not None:
        assert reread.classes == CLASSES
    else:
        from gcnseg.inference.segmenter import load

        assert load(out).classes == CLASSES


def test_export_to_an_unknown_suffix_is_refused(run_folder: Path, tmp_path: Path) -> None:
    with pytest.raises(GcnsegError, match=r"m\.txt: unknown export format '\.txt'"):
        export_model(run_folder, tmp_path / "m.txt")
    assert not (tmp_path / "m.txt").exists()


def test_exported_folder_files_get_the_usual_mode(run_folder: Path, tmp_path: Path) -> None:
    umask = os.umask(0o022)
    try:
        folder = export_model(run_folder, tmp_path / "saved")
    finally:
        os.umask(umask)
    for name in ("model.safetensors", "config.json"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o644, name
