"""Prediction's library side: the JSON summary, settings refused before any work, and a phone photo
segmented as it is shown (EXIF applied), its truth turned along."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gcnseg import __version__
from gcnseg.errors import GcnsegError
from gcnseg.inference.predict import PredictSummary, predict_files, write_summary


def test_summary_records_model_engine_and_what_was_left_out(tmp_path: Path) -> None:
    summary = PredictSummary(written=2, engine="torch-fp32", skipped=["bad.jpg: not an image"])
    path = tmp_path / "sub" / "summary.json"
    write_summary(path, summary, checkpoint=Path("runs/a/best.pt"), out_dir=tmp_path / "p")
    assert json.loads(path.read_text()) == {
        "version": __version__,
        "checkpoint": "runs/a/best.pt",
        "engine": "torch-fp32",
        "out": str(tmp_path / "p"),
        "written": 2,
        "skipped": ["bad.jpg: not an image"],
        "no_panel": [],
        "left": 0,
        "interrupted": False,
    }


@pytest.mark.parametrize("alpha", [1.5, -0.1, float("nan")])
def test_a_bad_alpha_is_refused_before_the_inputs_are_read(alpha: float) -> None:
    with pytest.raises(GcnsegError, match=r"alpha must be in \[0, 1\]"):
        predict_files(["/nonexistent/*.jpg"], alpha=alpha)


def test_exif_rotated_photo_gives_upright_mask_overlay_and_panel(tmp_path: Path) -> None:
    stored = np.random.default_rng(0).integers(0, 255, (24, 40, 3), np.uint8)  # 40 wide stored
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned 90° clockwise: 24 wide, 40 high
    photos, truths = tmp_path / "photos", tmp_path / "truth"
    photos.mkdir()
    truths.mkdir()
    Image.fromarray(stored).save(photos / "phone.jpg", exif=exif)
    truth = np.zeros((24, 40), np.uint8)  # aligned with the stored pixels, as datasets store it
    truth[:, :20] = 1
    Image.fromarray(truth).save(truths / "phone.png")
    out = tmp_path / "out"
    summary = predict_files(
        [str(photos / "phone.jpg")],
        out_dir=out,
        engine="torch-fp32",
        size=64,
        masks_dir=truths,
        workers=0,
    )
    assert summary.written == 1
    with Image.open(out / "phone_mask.png") as mask, Image.open(out / "phone_overlay.jpg") as lay:
        assert mask.size == lay.size == (24, 40)
    with Image.open(out / "phone_panel.png") as panel:  # the truth was turned to fit
        assert panel.width == 3 * 24


def test_an_interrupt_that_cannot_wait_still_counts_what_was_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second Ctrl-C (or one outside the main thread) stops at once, with the counts so far."""
    from gcnseg.inference import predict

    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (20, 30, 3), np.uint8)).save(tmp_path / f"{i}.jpg")
    writes = []

    def write_then_stop(prefix: Path, *args) -> None:
        if writes:
            raise KeyboardInterrupt
        writes.append(prefix)

    monkeypatch.setattr(predict, "_write_outputs", write_then_stop)
    with pytest.raises(predict.PredictInterrupted) as stop:
        predict_files(
            [str(tmp_path)], out_dir=tmp_path / "o", engine="torch-fp32", size=64, workers=0
        )
    summary = stop.value.summary
    assert (summary.written, summary.left, summary.interrupted) == (1, 3, True)
