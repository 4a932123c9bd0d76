"""The command line as a whole: one-line errors for a user's mistakes, every command listed."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gcnseg.cli import COMMANDS, build_parser, main


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


def test_each_command_runs_the_run_of_its_module() -> None:
    parser = build_parser()
    argv = {
        "data": ["data", "check", "."],
        "init": ["init", "."],
        "test": ["test", "--checkpoint", "c", "--data", "."],
        "predict": ["predict", "x.jpg"],
        "export": ["export", "--checkpoint", "c", "--out", "x.onnx"],
        "demo": ["demo", "--data", "."],
    }
    (sub,) = [a for a in parser._actions if a.dest == "command"]
    names = [
        "data",
        "init",
        "train",
        "test",
        "predict",
        "models",
        "export",
        "demo",
        "bench",
        "serve",
    ]
    assert list(sub.choices) == names
    runs = {module.run for module in COMMANDS}
    handlers = {parser.parse_args(argv.get(name, [name])).func for name in sub.choices}
    assert handlers == runs  # every command reaches a module's run, and every module is reached


def test_quiet_after_the_subcommand_and_before_it() -> None:
    parser = build_parser()
    assert parser.parse_args(["-q", "models"]).verbosity == -1
    assert parser.parse_args(["models", "-v"]).verbosity == 1
    assert parser.parse_args(["models"]).verbosity == 0


def test_python_dash_m_gcnseg_is_the_same_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gcnseg", "--version"], capture_output=True, text=True, check=True
    )
    assert done.stdout.startswith("gcnseg ")
