"""The package as a user gets it: a wheel built with `pip wheel .` installs into a fresh venv
(after torch) and `gcnseg predict` runs offline from another folder, with no repository files."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
TORCH = "torch==2.13.0"  # the pinned build the Makefile installs (a local CPU wheel here)
pytestmark = pytest.mark.slow


def _run(args: list[str], cwd: Path, timeout: int, env: dict | None = None):
    return subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env, check=False
    )


def _last_line(result: subprocess.CompletedProcess) -> str:
    lines = (result.stderr or result.stdout).strip().splitlines()
    return lines[-1] if lines else f"exit {result.returncode}"


def test_wheel_installs_and_predicts_offline(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    built = _run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-w", str(wheels), "-q"],
        tmp_path,
        600,
    )
    if built.returncode != 0:
        pytest.skip(f"cannot build a wheel here (pip wheel: {_last_line(built)})")
    (wheel,) = wheels.glob("gcnseg-*.whl")

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    for requirement in (TORCH, str(wheel)):
        installed = _run([str(python), "-m", "pip", "install", "-q", requirement], tmp_path, 1200)
        if installed.returncode != 0:
            pytest.skip(f"cannot install {requirement} here: {_last_line(installed)}")

    photo = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (60, 80, 3), np.uint8)).save(photo)
    work = tmp_path / "elsewhere"
    work.mkdir()
    offline = os.environ | {
        "http_proxy": "http://127.0.0.1:9",  # any download attempt fails at once
        "https_proxy": "http://127.0.0.1:9",
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": "",
    }
    gcnseg = str(env_dir / "bin" / "gcnseg")
    result = _run(
        [gcnseg, "predict", str(photo), "--size", "64", "--json", "s.json", "-q"],
        work,
        300,
        offline,
    )
    assert result.returncode == 0, result.stderr
    with Image.open(work / "predictions" / "photo_mask.png") as mask:
        assert mask.size == (80, 60)  # at the photo's own size
    assert (work / "s.json").is_file()
    # the packaged configs came with it, and read no path of the repository
    shown = _run(
        [gcnseg, "train", "--config", "pets_default", "--data", ".", "--print-config"],
        work,
        120,
        offline,
    )
    assert shown.returncode == 0 and "gcn_efficientnet_lite2" in shown.stdout
