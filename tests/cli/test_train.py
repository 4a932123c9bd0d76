"""`gcnseg train`: --print-config shows the config a run would train with, and trains nothing."""

from __future__ import annotations

from pathlib import Path

import yaml

from _runs import write_resumable_run
from gcnseg.cli import main
from gcnseg.config import Config


def test_print_config_of_a_resume_is_the_saved_config_with_the_flags(
    tmp_path: Path, capsys
) -> None:
    saved = Config()
    saved.train.epochs = 5
    saved.data.eval_size = 320
    run = write_resumable_run(tmp_path / "run", saved)
    # config.yaml is rewritten at every start; the resume trains with last.pt's config
    (run / "config.yaml").write_text("train: {epochs: 99}\n")
    argv = ["train", "--resume", str(run), "--epochs", "7", "--set", "train.threads=2"]
    assert main([*argv, "--print-config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["train"]["epochs"] == 7 and printed["train"]["threads"] == 2
    assert printed["data"]["eval_size"] == 320
    assert sorted(p.name for p in run.iterdir()) == ["config.yaml", "last.pt"]
