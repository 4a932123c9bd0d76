"""`gcnseg demo`: a bad time budget is refused before anything is split or trained, and without
data it says in one line how to get some."""

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


def test_without_data_it_says_how_to_get_it(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)  # as from a wheel: no clone, no shared sample beside it
    assert main(["demo"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "gcnseg data download --root DIR" in err[0]
    assert "gcnseg demo --data DIR" in err[0]
    assert list(tmp_path.iterdir()) == []


def test_a_missing_data_folder_names_it_and_says_how_to_get_data(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--data", "pets"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("gcnseg: error: pets: no such folder;")
    assert "gcnseg data download --root DIR" in err[0]
    assert list(tmp_path.iterdir()) == []
