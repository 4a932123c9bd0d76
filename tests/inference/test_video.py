"""Video: an overlay video frame for frame, per-frame class shares, every n-th frame, and a file
that is not a video, or PyAV missing, as one clear error."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from _data import make_clip, overlay_frames
from gcnseg.errors import GcnsegError
from gcnseg.inference.segmenter import Segmenter, load
from gcnseg.inference.video import predict_video


@pytest.fixture(scope="module")
def segmenter() -> Segmenter:
    return load("pets-default", engine="torch-fp32", size=64, batch_size=2)


@pytest.fixture
def av():
    return pytest.importorskip("av")


def test_every_frame_comes_out_overlaid_with_shares_that_sum_to_one(
    tmp_path: Path, av, segmenter: Segmenter
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


def test_every_nth_frame_is_segmented_and_all_are_written(
    tmp_path: Path, av, segmenter: Segmenter
) -> None:
    clip = make_clip(tmp_path / "clip.mov", frames=5, size=(33, 47))  # odd sides
    summary = predict_video(clip, segmenter, tmp_path, every=2)
    assert [s["frame"] for s in summary.shares] == [0, 2, 4]
    assert overlay_frames(summary.out) == [(32, 46)] * 5  # yuv420p: even sides


def test_a_file_without_a_video_stream_is_refused(tmp_path: Path, av, segmenter: Segmenter) -> None:
    sound = tmp_path / "sound.mkv"
    with av.open(str(sound), "w") as sink:
        stream = sink.add_stream("mp2", rate=44100)
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 1152), np.int16), format="s16", layout="mono"
        )
        frame.sample_rate = 44100
        for packet in [*stream.encode(frame), *stream.encode()]:
            sink.mux(packet)
    with pytest.raises(GcnsegError, match=r"sound\.mkv: has no video stream"):
        predict_video(sound, segmenter, tmp_path / "out")
    assert not (tmp_path / "out" / "sound_overlay.mp4").exists()


def test_a_bad_every_is_refused(tmp_path: Path, segmenter: Segmenter) -> None:
    with pytest.raises(GcnsegError, match="every must be >= 1"):
        predict_video(tmp_path / "clip.mp4", segmenter, tmp_path, every=0)


def test_without_pyav_the_error_says_how_to_install_it(
    tmp_path: Path, segmenter: Segmenter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "av", None)  # import av raises ImportError
    with pytest.raises(GcnsegError, match=r"pip install 'gcnseg\[video\]'"):
        predict_video(tmp_path / "clip.mp4", segmenter, tmp_path)
