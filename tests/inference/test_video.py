"""Video: an overlay video frame for frame, per-frame class shares, and a damaged file as one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gcnseg.cli import main
from gcnseg.errors import GcnsegError
from gcnseg.inference.segmenter import load

av = pytest.importorskip("av")

from gcnseg.inference.video import predict_video  # noqa: E402


def make_clip(path: Path, frames: int = 5, size: tuple[int, int] = (48, 64)) -> Path:
    """A short clip of moving noise, `size` (height, width), 10 frames a second."""
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as sink:
        stream = sink.add_stream("mpeg4", rate=10)
        stream.height, stream.width = size
        stream.pix_fmt = "yuv420p"
        for _ in range(frames):
            image = rng.integers(0, 255, (*size, 3), np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                sink.mux(packet)
        for packet in stream.encode():
            sink.mux(packet)
    return path


@pytest.fixture(scope="module")
def segmenter():
    return load("pets-default", engine="torch-fp32", size=64, batch_size=2)


def overlay_frames(path: Path) -> list[tuple[int, int]]:
    with av.open(str(path)) as container:
        return [(f.height, f.width) for f in container.decode(video=0)]


def test_every_frame_comes_out_overlaid_with_shares_that_sum_to_one(
    tmp_path: Path, segmenter
) -> None:
    clip = make_clip(tmp_path / "clip.mp4")
    summary = predict_video(clip, segmenter, tmp_path / "out")
    assert summary.out == tmp_path / "out" / "clip_overlay.mp4"
    assert summary.frames == 5
    assert summary.fps == pytest.approx(10)
    assert overlay_frames(summary.out) == [(48, 64)] * 5
    assert [s["frame"] for s in summary.shares] == [0, 1, 2, 3, 4]
    for record in summary.shares:
        assert set(record["shares"]) == set(segmenter.classes.names)
        assert sum(record["shares"].values()) == pytest.approx(1, abs=1e-4)


def test_every_nth_frame_is_segmented_and_all_are_written(tmp_path: Path, segmenter) -> None:
    clip = make_clip(tmp_path / "clip.mov", frames=5, size=(33, 47))  # odd sides
    summary = predict_video(clip, segmenter, tmp_path, every=2)
    assert [s["frame"] for s in summary.shares] == [0, 2, 4]
    assert overlay_frames(summary.out) == [(32, 46)] * 5  # yuv420p: even sides


def test_cli_writes_the_overlay_video_and_per_frame_shares(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "walk.mp4", frames=3)
    out, report = tmp_path / "out", tmp_path / "video.json"
    args = ["predict", str(clip), "--out", str(out), "--json", str(report)]
    assert main([*args, "--engine", "torch-fp32", "--size", "64"]) == 0
    assert overlay_frames(out / "walk_overlay.mp4") == [(48, 64)] * 3
    (video,) = json.loads(report.read_text())["videos"]
    assert video["frames"] == 3
    assert len(video["shares"]) == 3


@pytest.mark.parametrize("content", [b"", b"\x00\x00\x00\x18ftypmp42" + b"junk" * 100])
def test_a_corrupt_video_is_one_line_naming_the_file(
    tmp_path: Path, content: bytes, capsys
) -> None:
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(content)
    out = tmp_path / "out"
    assert main(["predict", str(bad), "--out", str(out), "--engine", "torch-fp32"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert str(bad) in err[0]
    assert not (out / "broken_overlay.mp4").exists()


def test_videos_and_images_together_are_refused(tmp_path: Path, capsys) -> None:
    clip = make_clip(tmp_path / "clip.mp4", frames=1)
    assert main(["predict", str(clip), str(tmp_path / "a.jpg"), "--out", str(tmp_path / "o")]) == 2
    assert "separate" in capsys.readouterr().err


def test_a_bad_every_is_refused(tmp_path: Path, segmenter) -> None:
    with pytest.raises(GcnsegError, match="every must be >= 1"):
        predict_video(tmp_path / "clip.mp4", segmenter, tmp_path, every=0)
