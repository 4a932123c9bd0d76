"""`gcnseg predict` on video files: the overlay video and per-frame shares, a damaged file as
one line, and videos kept apart from images."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from _data import make_clip, overlay_frames
from gcnseg.cli import main

pytest.importorskip("av")

FAST = ["--engine", "torch-fp32", "--size", "64"]


def test_writes_the_overlay_video_and_per_frame_shares(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "walk.mp4", frames=3)
    out, report = tmp_path / "out", tmp_path / "video.json"
    assert main(["predict", str(clip), "--out", str(out), "--json", str(report), *FAST]) == 0
    assert overlay_frames(out / "walk_overlay.mp4") == [(48, 64)] * 3
    (video,) = json.loads(report.read_text())["videos"]
    assert (video["video"], video["frames"], len(video["shares"])) == (str(clip), 3, 3)


@pytest.mark.parametrize(
    "content", [b"", b"\x00\x00\x00\x18ftypmp42" + b"junk" * 100], ids=["empty", "garbage"]
)
def test_a_damaged_video_is_one_line_naming_the_file(
    tmp_path: Path, content: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(content)
    out = tmp_path / "out"
    assert main(["predict", str(bad), "--out", str(out), *FAST]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"gcnseg: error: {bad}: not a readable video (")
    assert not (out / "broken_overlay.mp4").exists()


def test_a_missing_video_is_named_before_the_model_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.mp4"
    assert (
        main(
            ["predict", str(missing), "--out", str(tmp_path / "o"), "--checkpoint", "no-such-model"]
        )
        == 2
    )
    assert capsys.readouterr().err.strip() == f"gcnseg: error: {missing}: no such video file"


def test_videos_and_images_together_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clip = make_clip(tmp_path / "clip.mp4", frames=1)
    assert main(["predict", str(clip), str(tmp_path / "a.jpg"), "--out", str(tmp_path / "o")]) == 2
    assert "separate" in capsys.readouterr().err
