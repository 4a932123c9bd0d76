"""The engine accuracy guard: every engine within tolerance of torch fp32."""

from __future__ import annotations

from pathlib import Path

import pytest

from gcnseg.evaluation.compare import EngineRow, compare_engines, largest_class_change, markdown
from gcnseg.inference.segmenter import load

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "manifests" / "oxford-pets-sample.json"


def test_reference_agrees_with_itself(tiny_pets: Path) -> None:
    segmenter = load("pets-default", engine="torch-fp32", device="cpu")
    rows = compare_engines({"torch-fp32": segmenter, "again": segmenter}, tiny_pets, limit=3)
    assert [r.engine for r in rows] == ["torch-fp32", "again"]
    assert rows[1].agreement == 1.0 and rows[1].miou == rows[0].miou
    assert "| again |" in markdown(rows) and "+0.0000" in markdown(rows)


def _row(engine: str, class_iou: tuple[float, ...]) -> EngineRow:
    return EngineRow(engine, 0.5, 0.9, 0.9, 0.99, 1.0, class_iou)


def test_the_largest_class_change_is_found_and_named() -> None:
    """A thin class losing much moves the mean little: the table names it."""
    nan = float("nan")
    reference = _row("torch-fp32", (0.9, 0.2, nan, 0.8))
    other = _row("openvino", (0.91, 0.15, 0.4, 0.8))  # a class absent from one side is skipped
    index, change = largest_class_change(other, reference)
    assert index == 1 and change == pytest.approx(-0.05)
    assert "| Pole -0.0500 |" in markdown([reference, other], ["Sky", "Pole", "Sign", "Road"])


@pytest.mark.slow
def test_engines_keep_the_packaged_models_accuracy_on_real_photos(
    pets_root: Path, tmp_path
) -> None:
    """mIoU within 0.003 of torch fp32 (int8 within 0.005), argmax agreement >= 99.5%, on the
    24 images spread over the sample's test split (the table in benchmarks/README.md covers all 97)."""
    pytest.importorskip("onnxruntime", reason="the [onnx] extra is not installed")
    from gcnseg.inference.export import export_checkpoint
    from gcnseg.inference.quantize import calibration_images

    int8 = export_checkpoint(
        "pets-default",
        tmp_path / "int8.onnx",
        int8_calibration=calibration_images(pets_root, MANIFEST, 32),
    )
    segmenters = {
        name: load("pets-default", engine=name, device="cpu")
        for name in ("torch-fp32", "torch-bf16", "onnx")
    }
    segmenters["onnx-int8"] = load(int8)
    rows = compare_engines(segmenters, pets_root, manifest=MANIFEST, limit=24)
    reference, table = rows[0], markdown(rows, segmenters["torch-fp32"].classes.names)
    for row in rows[1:]:
        tolerance = 0.005 if row.engine == "onnx-int8" else 0.003
        assert abs(row.miou - reference.miou) <= tolerance, table
        assert row.agreement >= 0.995, table
