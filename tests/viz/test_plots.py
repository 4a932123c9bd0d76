from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from gcnseg.errors import GcnsegError
from gcnseg.viz.plots import plot_confusion_matrix, plot_learning_curve


def _write_jsonl(path, records) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def _assert_png_with_content(path) -> None:
    assert path.stat().st_size > 0
    with Image.open(path) as png:
        assert png.format == "PNG"
        pixels = np.asarray(png.convert("L"))
    assert pixels.min() < pixels.max()  # something was drawn on the white page
    assert not list(path.parent.glob(".*.tmp*"))  # the atomic write cleaned up


def test_learning_curve_from_three_epochs(tmp_path):
    epochs = [
        {
            "epoch": e,
            "train_loss": 1.0 / e,
            "val_loss": 1.2 / e,
            "train_pixel_accuracy": 0.6 + 0.1 * e,
            "train_miou": 0.4 + 0.1 * e,
            "val_pixel_accuracy": 0.55 + 0.1 * e,
            "val_miou": 0.35 + 0.1 * e,
            "lr": 1e-3 / e,
        }
        for e in (1, 2, 3)
    ]
    steps = [{"step": s, "epoch": s // 10 + 1, "loss": 2.0 / (s + 1)} for s in range(30)]
    _write_jsonl(tmp_path / "metrics.jsonl", epochs)
    _write_jsonl(tmp_path / "steps.jsonl", steps)

    path = plot_learning_curve(tmp_path)

    assert path == tmp_path / "learning_curve.png"
    _assert_png_with_content(path)


def test_learning_curve_tolerates_one_sparse_epoch_and_no_steps(tmp_path):
    _write_jsonl(tmp_path / "metrics.jsonl", [{"epoch": 1, "val_loss": 0.7, "lr": 0.0}])
    (tmp_path / "steps.jsonl").write_text("")

    _assert_png_with_content(plot_learning_curve(tmp_path))


def test_learning_curve_skips_a_half_written_last_line(tmp_path):
    _write_jsonl(tmp_path / "metrics.jsonl", [{"epoch": 1, "train_loss": 0.9}])
    (tmp_path / "steps.jsonl").write_text('{"step": 0, "epoch": 1, "loss": 1.0}\n{"step": 1, "ep')

    _assert_png_with_content(plot_learning_curve(tmp_path))


def test_learning_curve_rejects_a_corrupt_line_in_the_middle(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"epoch": 1}\nnot json\n{"epoch": 2}\n')
    with pytest.raises(GcnsegError, match=r"metrics\.jsonl:2"):
        plot_learning_curve(tmp_path)
    assert not (tmp_path / "learning_curve.png").exists()


def test_confusion_matrix_plot(tmp_path):
    confmat = [[900, 50, 50], [10, 80, 10], [0, 0, 0]]  # last class never in the ground truth
    path = plot_confusion_matrix(confmat, ["background", "cat", "dog"], tmp_path / "cm.png")

    assert path == tmp_path / "cm.png"
    _assert_png_with_content(path)


def test_confusion_matrix_needs_one_name_per_class(tmp_path):
    with pytest.raises(ValueError, match="2 class names"):
        plot_confusion_matrix([[1, 0, 0]] * 3, ["a", "b"], tmp_path / "cm.png")
