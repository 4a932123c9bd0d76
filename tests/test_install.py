"""The package as a user gets it: a wheel built with `pip wheel .` installs into a fresh venv
(after torch) and `gcnseg predict` runs offline from another folder, with no repository files,
on a photo and on a short video; `gcnseg demo` there says how to get data."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
import zipfile
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
    with zipfile.ZipFile(wheel) as contents:
        names = contents.namelist()
    examples = [n for n in names if "/serving/static/examples/" in n]
    assert {Path(n).name for n in examples} >= {"LICENSE.md", "cat.jpg"}  # the page's examples
    assert "gcnseg/py.typed" in names  # type checkers read the package's hints
    packaged = {Path(n).name for n in names if "/pretrained/" in n}
    assert {"pets-default.pt.gz", "camvid-default.pt.gz"} <= packaged

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    for requirement in (TORCH, f"{wheel}[video]"):
        installed = _run(
            [str(python), "-m", "pip", "install", "-q", requirement],
            tmp_path,
            1200,
            os.environ | {"PYTHONPATH": ""},  # a source tree on it would look installed already
        )
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

    clip = work / "clip.mp4"  # written by the venv's own PyAV, which the video extra installed
    made = _run([str(python), "-c", CLIP_SCRIPT, str(clip)], work, 120, offline)
    assert made.returncode == 0, made.stderr
    video = _run([gcnseg, "predict", str(clip), "--size", "64", "-q"], work, 300, offline)
    assert video.returncode == 0, video.stderr
    assert (work / "predictions" / "clip_overlay.mp4").stat().st_size > 0

    demo = _run([gcnseg, "demo"], work, 120, offline)  # no sample beside a wheel
    assert demo.returncode == 2
    assert "gcnseg data download --root DIR" in demo.stderr.strip().splitlines()[-1]


CLIP_SCRIPT = """
import sys, av, numpy as np
with av.open(sys.argv[1], "w") as sink:
    stream = sink.add_stream("mpeg4", rate=10)
    stream.height, stream.width, stream.pix_fmt = 48, 64, "yuv420p"
    for i in range(3):
        frame = np.full((48, 64, 3), 60 * i, np.uint8)
        for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
            sink.mux(packet)
    for packet in stream.encode():
        sink.mux(packet)
"""
