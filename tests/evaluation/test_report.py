"""The test report's files: which of the outputs asked for are on disk, in a stable order."""

from __future__ import annotations

from pathlib import Path

from gcnseg.evaluation.report import CONFUSION_MATRIX_FILE, WORST_FILE, written_files


def test_written_files_lists_what_exists_in_order(tmp_path: Path) -> None:
    out, draw, report = tmp_path / "figures", tmp_path / "draw", tmp_path / "r.json"
    out.mkdir()
    (out / CONFUSION_MATRIX_FILE).write_bytes(b"png")
    assert written_files(out_dir=out) == [
        out / CONFUSION_MATRIX_FILE
    ]  # no image scored: no gallery
    (out / WORST_FILE).write_bytes(b"png")
    draw.mkdir()
    report.write_text("{}")
    got = written_files(json_out=report, draw_dir=draw, out_dir=out)
    assert got == [report, draw, out / CONFUSION_MATRIX_FILE, out / WORST_FILE]
    assert written_files() == []
