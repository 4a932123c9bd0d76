"""The CLI from a folder outside the repository: no repo paths, side files only where asked,
strict JSON, logs made for files, -q/-v after every subcommand."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from gcnseg.cli import main
from smoke import ONE_RANDOM_STEP, set_flags


def _strict(text: str):
    """json.loads that refuses NaN/Infinity, as strict parsers (JavaScript, jq, Go) do."""

    def refuse(name: str):
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(autouse=True)
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run every test from an empty folder, and restore gcnseg's log level afterwards."""
    work = tmp_path / "elsewhere"
    work.mkdir()
    monkeypatch.chdir(work)
    logger = logging.getLogger("gcnseg")
    level = logger.level
    yield work
    logger.setLevel(level)


def _train_args(data: Path, *extra: str) -> list[str]:
    return ["train", "--data", str(data), "--epochs", "1", *extra, *set_flags(ONE_RANDOM_STEP)]


def test_train_needs_data_and_demo_too(capsys) -> None:
    assert main(["train", "--epochs", "1"]) == 2
    assert "pass --data DATA" in capsys.readouterr().err
    assert main(["demo"]) == 2
    assert "--data" in capsys.readouterr().err


def test_init_writes_a_starter_config_train_reads(tiny_folders: Path, elsewhere: Path, capsys):
    assert main(["init", str(tiny_folders)]) == 0
    text = (elsewhere / "gcnseg.yaml").read_text()
    assert "classes (from the data): background, disc, box" in text
    assert yaml.safe_load(text)["data"]["root"] == str(tiny_folders.resolve())
    assert main(["init", str(tiny_folders)]) == 2  # never replaced without --force
    assert "--force" in capsys.readouterr().err
    capsys.readouterr()
    assert main(["train", "--config", "gcnseg.yaml", "--print-config", "--epochs", "3"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert (
        printed["data"]["root"] == str(tiny_folders.resolve()) and printed["train"]["epochs"] == 3
    )
    assert not (elsewhere / "runs").exists()  # --print-config trains nothing


def test_packaged_config_runs_from_anywhere_with_a_seeded_split(tiny_pets: Path, capsys) -> None:
    assert (
        main(["train", "--config", "pets_default", "--data", str(tiny_pets), "--print-config"]) == 0
    )
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["data"]["manifest"] is None and printed["data"]["split_seed"] == 0


def test_log_file_gets_epoch_lines_not_bars(tiny_folders: Path, elsewhere: Path, capsys, caplog):
    caplog.set_level(logging.DEBUG, logger="nothing")  # caplog's handler, not gcnseg's level
    assert main(_train_args(tiny_folders, "--name", "loud")) == 0
    err = capsys.readouterr().err
    assert "\r" not in err and "it/s" not in err  # stderr is no terminal here: no tqdm redraws
    assert any(r.getMessage().startswith("epoch 1/1") for r in caplog.records)
    metrics = (elsewhere / "runs" / "loud" / "metrics.jsonl").read_text().splitlines()
    assert [_strict(line)["epoch"] for line in metrics] == [0]
    caplog.clear()
    assert main([*_train_args(tiny_folders, "--name", "quiet"), "-q"]) == 0
    assert not [r for r in caplog.records if r.levelno < logging.WARNING]


@pytest.mark.parametrize(
    "argv",
    [
        ["models", "--pattern", "gcn_k1_resnet18", "--size", "64", "-q"],
        ["data", "check", "{data}", "-v"],
        ["data", "-q", "check", "{data}"],
        ["-q", "models", "--pattern", "gcn_k1_resnet18", "--size", "64"],
    ],
)
def test_quiet_and_verbose_after_any_subcommand(argv: list[str], tiny_folders: Path) -> None:
    assert main([a.format(data=tiny_folders) for a in argv]) == 0


def test_empty_model_listing_says_why(capsys) -> None:
    assert main(["models", "--pattern", "unet*"]) == 2
    err = capsys.readouterr().err
    assert "no model matches 'unet*'" in err and "gcn_<backbone>" in err


def test_test_json_writes_only_the_report(tiny_pets: Path, elsewhere: Path, capsys) -> None:
    argv = ["test", "--checkpoint", "pets-default", "--data", str(tiny_pets), "--size", "64"]
    assert main([*argv, "--json", "r.json", "--worst", "2", "-q"]) == 0
    assert sorted(p.name for p in elsewhere.iterdir()) == ["r.json"]
    report = _strict((elsewhere / "r.json").read_text())
    assert report["miou"] > 0 and report["images"] == 28
    assert "wrote r.json" in capsys.readouterr().out
    assert main([*argv, "--out", "figures", "--worst", "2", "-q"]) == 0
    out = capsys.readouterr().out
    assert sorted(p.name for p in (elsewhere / "figures").iterdir()) == [
        "confusion_matrix.png",
        "worst.png",
    ]
    assert f"wrote {Path('figures') / 'worst.png'}" in out


def test_predict_json_summary(tmp_path: Path, elsewhere: Path) -> None:
    photo = tmp_path / "photo.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 64, 3), np.uint8)).save(photo)
    argv = ["predict", str(photo), "--size", "64", "--engine", "torch-fp32", "--json", "s.json"]
    assert main([*argv, "-q"]) == 0
    summary = _strict((elsewhere / "s.json").read_text())
    assert summary["written"] == 1 and summary["skipped"] == [] and summary["engine"]
    assert summary["out"] == "predictions"


def test_pets_default_seeded_split_is_the_shipped_manifest(pets_root: Path) -> None:
    """The packaged recipe names no manifest file; its seeded split is the README's test split."""
    from gcnseg.config import load_config
    from gcnseg.data.layouts import index_dataset
    from gcnseg.data.splits import load_manifest, make_split

    data = load_config("pets_default").data
    split = make_split(
        index_dataset(pets_root),
        test_fraction=data.test_fraction,
        val_fraction=data.val_fraction,
        seed=data.split_seed,
        max_side=data.max_side,
    )
    shipped = Path(__file__).resolve().parents[1] / "manifests" / "oxford-pets-sample.json"
    assert split["splits"] == load_manifest(shipped)["splits"]
