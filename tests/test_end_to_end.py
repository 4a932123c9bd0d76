"""Every path a user takes, through the command line, on generated data: runs on any clone.

split → train → resume → test → predict → export, on the Oxford layout and on images/ + masks/,
and a miniature `gcnseg demo`. The real-sample versions in tests/training add real photos.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from _data import FOLDER_CLASSES, assert_predicted, make_tiny_pets, write_odd_images
from gcnseg.checkpoint import load_checkpoint
from gcnseg.cli import main
from gcnseg.models.gcn import GCN
from gcnseg.source import read_model
from gcnseg.tools import demo
from smoke import TINY_TRAINING, TWO_STEPS

pytestmark = pytest.mark.slow

# Two epochs of two steps: the smallest run with an epoch boundary and a mid-epoch to resume at.
TINY = [*TINY_TRAINING, *TWO_STEPS, "train.epochs=2", "data.batch_size=2", "data.eval_batch_size=4"]


def _train_argv(data: Path, manifest: Path, out: Path, name: str, *extra: str) -> list[str]:
    sets = [arg for override in [*TINY, *extra] for arg in ("--set", override)]
    paths = ["--data", str(data), "--manifest", str(manifest), "--output", str(out)]
    return ["-q", "train", *paths, "--name", name, *sets]


def _split(data: Path, out: Path) -> Path:
    manifest = out / "manifest.json"
    assert main(["-q", "data", "split", str(data), "--out", str(manifest), "--test", "0.2"]) == 0
    return manifest


@pytest.fixture(scope="module")
def pets_split(tiny_pets: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _split(tiny_pets, tmp_path_factory.mktemp("split"))


@pytest.fixture(scope="module")
def pets_run(tiny_pets: Path, pets_split: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    assert main(_train_argv(tiny_pets, pets_split, out, "full")) == 0
    return out / "full"


def test_split_is_stratified_and_disjoint(pets_split: Path) -> None:
    splits = json.loads(pets_split.read_text())["splits"]
    assert {k: len(v) for k, v in splits.items()} == {"train": 20, "val": 4, "test": 4}
    assert len(set().union(*splits.values())) == 28
    assert {name.rsplit("_", 1)[0] for name in splits["test"]} == {
        "Abyssinian", "Bengal", "beagle", "boxer",
    }  # fmt: skip


def test_split_follows_official_lists_when_present(tmp_path: Path) -> None:
    root = make_tiny_pets(tmp_path / "pets", official_splits=True)
    manifest = json.loads(_split(root, tmp_path).read_text())
    assert manifest["source"] == "official"
    assert manifest["splits"]["test"] == ["Abyssinian_7", "Bengal_7", "beagle_7", "boxer_7"]
    assert not set(manifest["splits"]["test"]) & set(manifest["splits"]["train"])


def test_train_writes_a_complete_run(pets_run: Path) -> None:
    for name in ("best.pt", "last.pt", "config.yaml", "manifest.json", "metrics.jsonl"):
        assert (pets_run / name).is_file(), name
    assert (pets_run / "learning_curve.png").is_file()
    records = [json.loads(line) for line in (pets_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [0, 1]
    assert all(np.isfinite(r["train_loss"]) and 0 <= r["val_miou"] <= 1 for r in records)
    payload = load_checkpoint(pets_run / "last.pt")
    trained = read_model(pets_run / "last.pt")
    model, cfg, classes = trained.model, trained.config, trained.classes
    assert classes.names == ("background", "cat", "dog") and cfg.data.crop_size == 64
    assert all(torch.equal(v, payload["model"][k]) for k, v in model.state_dict().items())


def test_interrupted_run_resumes_to_identical_weights(
    tiny_pets: Path, pets_split: Path, pets_run: Path, tmp_path: Path, monkeypatch
) -> None:
    """Ctrl-C in the middle of epoch 2's first step, then `--resume`: the same weights as never
    stopping (the step in flight finishes, so its BatchNorm statistics match its counter)."""
    real_forward = GCN.forward
    calls = {"n": 0}

    def ctrl_c_in_third_step(self: GCN, x: torch.Tensor) -> torch.Tensor:
        calls["n"] += self.training
        if calls["n"] == 3 and self.training:
            os.kill(os.getpid(), signal.SIGINT)
        return real_forward(self, x)

    monkeypatch.setattr(GCN, "forward", ctrl_c_in_third_step)
    assert main(_train_argv(tiny_pets, pets_split, tmp_path, "cut")) == 130
    saved = load_checkpoint(tmp_path / "cut" / "last.pt")["progress"]
    assert (saved["epoch"], saved["step_in_epoch"]) == (1, 1)
    monkeypatch.setattr(GCN, "forward", real_forward)

    assert main(["-q", "train", "--resume", str(tmp_path / "cut")]) == 0
    resumed = load_checkpoint(tmp_path / "cut" / "last.pt")["model"]
    uninterrupted = load_checkpoint(pets_run / "last.pt")["model"]
    for key, value in uninterrupted.items():
        torch.testing.assert_close(resumed[key], value, rtol=0, atol=1e-6, msg=key)
    lines = (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [0, 1]


def test_test_command_scores_every_labelled_pixel(
    tiny_pets: Path, pets_split: Path, pets_run: Path, tmp_path: Path, capsys
) -> None:
    argv = ["-q", "test", "--checkpoint", str(pets_run), "--data", str(tiny_pets)]
    argv += ["--manifest", str(pets_split), "--json", str(tmp_path / "r.json"), "--worst", "2"]
    argv += ["--out", str(tmp_path / "out"), "--draw", str(tmp_path / "draw"), "--device", "cpu"]
    assert main(argv) == 0
    assert "mean image accuracy" in capsys.readouterr().out
    report = json.loads((tmp_path / "r.json").read_text())
    names = json.loads(pets_split.read_text())["splits"]["test"]
    trimaps = [tiny_pets / "annotations" / "trimaps" / f"{name}.png" for name in names]
    labelled = sum(int((np.asarray(Image.open(p)) != 3).sum()) for p in trimaps)
    assert sum(map(sum, report["confusion_matrix"])) == labelled  # at original resolution
    assert set(report["per_image"]) == set(names)
    assert {p.name for p in (tmp_path / "out").iterdir()} >= {"confusion_matrix.png", "worst.png"}
    assert sorted(p.stem for p in (tmp_path / "draw").iterdir()) == sorted(names)


def test_predict_odd_formats_and_draws_a_panel_with_ground_truth(
    tiny_pets: Path, pets_run: Path, tmp_path: Path, capsys
) -> None:
    labelled = tiny_pets / "images" / "Bengal_7.jpg"
    inputs = write_odd_images(labelled, tmp_path / "in")
    out = tmp_path / "out"
    for given in (tmp_path / "in", labelled):
        argv = ["-q", "predict", str(given), "--checkpoint", str(pets_run), "--out", str(out)]
        assert main([*argv, "--device", "cpu", "--flip"]) == 0
    assert capsys.readouterr().out.startswith("5 images segmented")  # broken.jpg skipped
    assert_predicted([*inputs, labelled], out, num_classes=3)
    panel = Image.open(out / "Bengal_7_panel.png")
    assert panel.width == 3 * Image.open(labelled).width


def test_export_onnx_and_gzipped_release_agree_with_the_run(pets_run: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime", reason="the [onnx] extra is not installed")
    from gcnseg.inference.engines import OnnxEngine
    from gcnseg.inference.segmenter import load

    onnx_path, release = tmp_path / "model.onnx", tmp_path / "release.pt.gz"
    for out in (onnx_path, release):
        assert main(["-q", "export", "--checkpoint", str(pets_run), "--out", str(out)]) == 0
    best = read_model(pets_run / "best.pt")
    full, classes = best.model, best.classes
    payload = load_checkpoint(release)
    assert release.read_bytes()[:2] == b"\x1f\x8b" and "optimizer" not in payload
    assert all(v.dtype == torch.float16 for v in payload["model"].values() if v.is_floating_point())
    slim = read_model(release).model
    segmenter = OnnxEngine(onnx_path, threads=1)
    assert load(onnx_path).classes == classes
    x = torch.rand(2, 3, 70, 90)
    with torch.no_grad():
        expected = full.eval()(x)
        assert (slim.eval()(x).argmax(1) == expected.argmax(1)).float().mean() > 0.99
    assert (segmenter(x) - expected).abs().max().item() <= 1e-3


def test_predict_with_the_onnx_engine_matches_torch(
    tiny_pets: Path, pets_run: Path, tmp_path: Path
) -> None:
    pytest.importorskip("onnxruntime", reason="the [onnx] extra is not installed")
    image = str(tiny_pets / "images" / "beagle_7.jpg")
    for engine in ("torch-fp32", "onnx"):  # the same precision: bf16 is guarded on real photos
        argv = ["-q", "predict", image, "--checkpoint", str(pets_run), "--engine", engine]
        assert main([*argv, "--out", str(tmp_path / engine), "--device", "cpu"]) == 0
    a, b = (
        np.asarray(Image.open(tmp_path / e / "beagle_7_mask.png")) for e in ("torch-fp32", "onnx")
    )
    assert (a == b).mean() > 0.99


def test_folders_layout_trains_tests_and_predicts_its_own_classes(
    tiny_folders: Path, tmp_path: Path, capsys
) -> None:
    manifest = _split(tiny_folders, tmp_path)
    argv = _train_argv(tiny_folders, manifest, tmp_path, "folders", "train.epochs=1")
    assert main(argv) == 0
    run = tmp_path / "folders"
    classes = read_model(run / "best.pt").classes
    # the classes.yaml's, and no class is background unless it says so
    assert yaml.safe_load((tiny_folders / "classes.yaml").read_text()) == FOLDER_CLASSES
    assert classes.to_dict() == {**FOLDER_CLASSES, "background": None}

    test = ["-q", "test", "--checkpoint", str(run), "--data", str(tiny_folders), "--device", "cpu"]
    assert main([*test, "--manifest", str(manifest), "--json", str(tmp_path / "r.json")]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    names = json.loads(manifest.read_text())["splits"]["test"]
    masks = [np.asarray(Image.open(tiny_folders / "masks" / f"{n}.png")) for n in names]
    assert sum(map(sum, report["confusion_matrix"])) == sum(int((m != 255).sum()) for m in masks)

    image = tiny_folders / "images" / f"{names[0]}.png"
    predict = ["-q", "predict", str(image), "--checkpoint", str(run), "--out", str(tmp_path / "p")]
    assert main([*predict, "--device", "cpu"]) == 0
    mask = Image.open(tmp_path / "p" / f"{names[0]}_mask.png")
    assert mask.getpalette()[:9] == [c for color in FOLDER_CLASSES["colors"] for c in color]


def test_miniature_demo_trains_tests_and_draws(
    tiny_pets: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    """`gcnseg demo` on 28 small pets at 64² (its 256² crops triple the time); a budget this
    short stops it after its first epoch."""
    tiny = [*demo.DEMO_OVERRIDES, "data.crop_size=64", "data.eval_size=64", "train.threads=1"]
    monkeypatch.setattr(demo, "DEMO_OVERRIDES", tiny)
    out = tmp_path / "demo"
    assert (
        main(["-q", "demo", "--data", str(tiny_pets), "--out", str(out), "--minutes", "0.001"]) == 0
    )
    assert "mean image accuracy" in capsys.readouterr().out
    lines = (out / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 1
    report = json.loads((out / "test" / "report.json").read_text())
    test_names = json.loads((out / "manifest.json").read_text())["splits"]["test"]
    assert set(report["per_image"]) == set(test_names)
    overlays = sorted(p.name for p in (out / "overlays").glob("*_overlay.jpg"))
    assert overlays == sorted(f"{name}_overlay.jpg" for name in test_names)
