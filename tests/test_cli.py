"""The command line: one-line errors for a user's mistakes, and the listing commands."""

from __future__ import annotations

import pytest

from gcnseg.cli import main


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["data", "check", "/nonexistent/pets"], "/nonexistent/pets"),
        (["train", "--set", "optim.lrr=1"], "optim.lrr"),
        (["train", "--config", "/nope.yaml"], "/nope.yaml"),
        (["test", "--checkpoint", "/nope.pt", "--data", "{tiny_pets}"], "/nope.pt"),
        (
            ["test", "--checkpoint", "pets-default", "--data", "{tiny_pets}", "--split", "val"],
            "split 'val' needs a manifest",
        ),
        (["test", "--checkpoint", "pets-default"], "no dataset to score"),
        (["predict", "--checkpoint", "pets-default"], "no inputs"),
        (["predict", "/nope/*.jpg"], "/nope/*.jpg"),
        (["train", "--model", "gcn_nope", "--data", "{tiny_pets}"], "gcn_nope"),
        *[
            (["train", "--data", "{tiny_pets}", "--set", f"{key}={value}"], key)
            for key, value in [
                ("train.seed", "99999999999999999999999"),
                ("optim.lr", "["),
                ("optim.lr", '!!python/object/apply:os.system ["true"]'),
                ("data.val_fraction", "0"),
            ]
        ],
    ],
)
def test_user_errors_are_one_line(
    argv: list[str], needle: str, tiny_pets, capsys, tmp_path, monkeypatch
) -> None:
    """Each argv has exactly one mistake (valid data where data is needed), named in one line."""
    monkeypatch.chdir(tmp_path)  # a mistake that went unnoticed would train into ./runs
    assert main([arg.format(tiny_pets=tiny_pets) for arg in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gcnseg: error:") and needle in err
    assert "\n" not in err and "Traceback" not in err


def test_corrupt_checkpoint_is_one_line(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00garbage")
    assert main(["export", "--checkpoint", str(bad), "--out", str(tmp_path / "x.pt")]) == 2
    assert str(bad) in capsys.readouterr().err


def test_models_lists_gflops_and_offline_weights(capsys) -> None:
    assert main(["models", "--size", "64", "--pattern", "gcn*_efficientnet_lite0"]) == 0
    out = capsys.readouterr().out.splitlines()
    rows = [line.split() for line in out[2:]]
    assert [r[0] for r in rows] == ["gcn_efficientnet_lite0", "gcn_k1_efficientnet_lite0"]
    gflops = {r[0]: float(r[3]) for r in rows}
    assert gflops["gcn_efficientnet_lite0"] > gflops["gcn_k1_efficientnet_lite0"] > 0
    assert all(r[4] == "yes" for r in rows)
