"""`gcnseg demo`: a bad time budget is refused before anything is split or trained."""

from __future__ import annotations

from pathlib import Path

from gcnseg.cli import main


def test_a_bad_time_budget_is_one_line_and_writes_nothing(
    tiny_pets: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--data", str(tiny_pets), "--out", str(out), "--minutes", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["gcnseg: error: train.time_budget_min: 0.0 must be > 0 or none"]
    assert not out.exists()
