"""`gcnseg export`: one-line errors, and each output name gives the format it asks for."""

from __future__ import annotations

from pathlib import Path

import pytest

from gcnseg.cli import main


def test_corrupt_checkpoint_is_one_line(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00garbage")
    assert main(["export", "--checkpoint", str(bad), "--out", str(tmp_path / "x.pt")]) == 2
    assert str(bad) in capsys.readouterr().err


def test_release_and_folder_exports_say_what_they_wrote(tmp_path: Path, capsys) -> None:
    for out in (tmp_path / "release.pt.gz", tmp_path / "saved"):
        assert main(["-q", "export", "--checkpoint", "pets-default", "--out", str(out)]) == 0
        assert capsys.readouterr().out.strip() == f"wrote {out}"
    assert (tmp_path / "release.pt.gz").is_file() and (tmp_path / "saved").is_dir()


def test_a_bad_opset_is_refused_before_anything_is_written(tmp_path: Path, capsys) -> None:
    out = tmp_path / "m.onnx"
    argv = ["export", "--checkpoint", "pets-default", "--out", str(out), "--opset", "5"]
    assert main(argv) == 2
    assert "opset 5 is not supported" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_an_upper_case_onnx_suffix_exports_onnx(tmp_path: Path, capsys) -> None:
    """`--out M.ONNX` is an ONNX model, not a safetensors folder named M.ONNX."""
    pytest.importorskip("onnx", reason="the [onnx] extra is not installed")
    from gcnseg.inference.onnx_format import read_info

    out = tmp_path / "M.ONNX"
    assert main(["-q", "export", "--checkpoint", "pets-default", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out}"
    assert out.is_file()
    assert read_info(out).classes.names == ("background", "cat", "dog")
