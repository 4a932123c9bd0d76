"""`gcnseg predict`: outputs never replace inputs, a bad truth mask costs only its panel, Ctrl-C
leaves a summary, and a bad size is refused before the model loads."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gcnseg.cli import main
from gcnseg.inference import segmenter

PREDICT = ["-q", "predict", "--size", "64", "--engine", "torch-fp32"]


def _photos(folder: Path, count: int, shape: tuple[int, int] = (40, 48)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        paths.append(folder / f"p{i:03d}.jpg")
        Image.fromarray(rng.integers(0, 255, (*shape, 3), np.uint8)).save(paths[-1])
    return paths


def _one_line(capsys: pytest.CaptureFixture[str], *expected: str) -> None:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gcnseg: error: "), lines
    for text in expected:
        assert text in lines[0], (text, lines[0])


@pytest.fixture
def no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading a model fails the test: these refusals must come before it."""

    def refuse(source: object) -> None:
        raise AssertionError(f"the model {source} was loaded")

    monkeypatch.setattr(segmenter, "resolve_source", refuse)


def test_an_output_that_would_overwrite_an_input_is_refused(
    tmp_path: Path, no_model: None, capsys
) -> None:
    cat, overlay = _photos(tmp_path / "pin", 2)
    overlay = overlay.rename(tmp_path / "pin" / "cat_overlay.jpg")
    cat = cat.rename(tmp_path / "pin" / "cat.jpg")
    before = overlay.read_bytes()
    assert main([*PREDICT, str(cat), str(overlay), "--out", str(tmp_path / "pin")]) == 2
    _one_line(capsys, str(overlay), f"the overlay of {cat} would overwrite this input")
    assert overlay.read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "pin").iterdir()) == ["cat.jpg", "cat_overlay.jpg"]


def test_earlier_outputs_in_an_input_folder_are_not_inputs(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "pin"
    _photos(folder, 2)
    argv = [*PREDICT, str(folder), "--out", str(folder), "--json", str(tmp_path / "s.json")]
    for _ in range(2):  # the second run must not segment the first run's masks and overlays
        assert main(argv) == 0
        assert json.loads((tmp_path / "s.json").read_text())["written"] == 2
    names = sorted(p.name for p in folder.iterdir())
    assert names == [
        f"p00{i}{end}" for i in (0, 1) for end in (".jpg", "_mask.png", "_overlay.jpg")
    ]


def test_a_truth_mask_outside_the_class_set_costs_only_its_panel(tmp_path: Path, capsys) -> None:
    photos = _photos(tmp_path / "images", 3)
    masks = tmp_path / "masks"
    masks.mkdir()
    for i, photo in enumerate(photos):
        truth = np.zeros((40, 48), np.uint8)
        truth[10:20] = 1
        truth[0, 0] = 7 if i == 0 else 0  # the pets model knows 3 classes
        Image.fromarray(truth).save(masks / f"{photo.stem}.png")
    out, summary = tmp_path / "out", tmp_path / "s.json"
    argv = [str(tmp_path / "images"), "--masks", str(masks), "--out", str(out)]
    assert main([*PREDICT, *argv, "--json", str(summary)]) == 0
    assert "3 images segmented" in capsys.readouterr().out
    for photo in photos:
        assert (out / f"{photo.stem}_mask.png").is_file()
        assert (out / f"{photo.stem}_overlay.jpg").is_file()
        assert (out / f"{photo.stem}_panel.png").is_file() == (photo != photos[0])
    saved = json.loads(summary.read_text())
    assert saved["written"] == 3 and not saved["interrupted"]
    assert len(saved["no_panel"]) == 1 and "class 7" in saved["no_panel"][0]
    assert str(masks / "p000.png") in saved["no_panel"][0]


def test_an_oversized_size_is_one_line_before_the_model_loads(
    tmp_path: Path, no_model: None, capsys
) -> None:
    (photo,) = _photos(tmp_path, 1)
    assert main(["predict", str(photo), "--size", "100000", "--out", str(tmp_path / "o")]) == 2
    _one_line(capsys, "size must be an integer from 32 to 4096, got 100000")


@pytest.mark.slow
def test_ctrl_c_writes_the_summary_of_what_was_done(tmp_path: Path) -> None:
    photos = _photos(tmp_path / "many", 60, shape=(480, 640))
    out, summary = tmp_path / "out", tmp_path / "s.json"
    argv = [*PREDICT, str(tmp_path / "many"), "--out", str(out), "--json", str(summary)]
    env = os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)}
    run = subprocess.Popen(
        [sys.executable, "-m", "gcnseg", *argv, "--batch-size", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 120
        while not list(out.glob("*_overlay.jpg")):
            assert run.poll() is None and time.monotonic() < deadline, run.communicate()
            time.sleep(0.05)
        run.send_signal(signal.SIGINT)
        stdout, stderr = run.communicate(timeout=60)
    finally:
        run.kill()
    assert run.returncode == 130, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gcnseg: interrupted: "), stderr
    saved = json.loads(summary.read_text())
    assert saved["interrupted"] is True
    assert saved["written"] >= 1 and saved["left"] >= 1
    assert saved["written"] + len(saved["skipped"]) + saved["left"] == len(photos)
    assert len(list(out.glob("*_overlay.jpg"))) == saved["written"]  # the image at hand finished
    assert f"{saved['written']} images segmented" in lines[0]
    assert stdout == ""


def test_cache_dir_off_writes_no_cache(tmp_path: Path, monkeypatch) -> None:
    """`--cache-dir off`: the onnx engine runs from a temporary export, nothing is cached."""
    pytest.importorskip("onnxruntime", reason="the [onnx] extra is not installed")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("GCNSEG_CACHE", raising=False)
    (photo,) = _photos(tmp_path / "in", 1)
    argv = ["-q", "predict", str(photo), "--size", "64", "--engine", "onnx", "--cache-dir", "off"]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "p000_mask.png").is_file()
    assert not (tmp_path / "home").exists()
    moved = tmp_path / "cache"
    argv[-1] = str(moved)
    assert main([*argv, "--out", str(tmp_path / "out2")]) == 0
    assert list((moved / "weights" / "onnx").glob("*.onnx"))
