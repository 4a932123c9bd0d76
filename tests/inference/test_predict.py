"""Prediction's library side: the JSON summary, and settings refused before any work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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
    }


@pytest.mark.parametrize("alpha", [1.5, -0.1, float("nan")])
def test_a_bad_alpha_is_refused_before_the_inputs_are_read(alpha: float) -> None:
    with pytest.raises(GcnsegError, match=r"alpha must be in \[0, 1\]"):
        predict_files(["/nonexistent/*.jpg"], alpha=alpha)
