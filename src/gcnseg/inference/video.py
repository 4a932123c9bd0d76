"""Video files: every frame through the Segmenter, an overlay video out, and each frame's class
shares. Decoding and encoding go through PyAV (the `video` extra), whose wheels bundle FFmpeg."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from gcnseg.errors import GcnsegError
from gcnseg.evaluation.metrics import pixel_shares
from gcnseg.inference.segmenter import Segmenter
from gcnseg.io.atomic import atomic_path
from gcnseg.viz.draw import check_alpha, overlay

VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm")


@dataclass
class VideoSummary:
    video: Path
    out: Path  # the overlay video
    frames: int  # frames written to `out`
    fps: float  # of the input, kept in the output
    engine: str
    seconds: float  # decoding, segmenting, drawing and encoding together
    shares: list[dict[str, Any]] = field(default_factory=list)  # per segmented frame

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def predict_video(
    path: str | Path,
    segmenter: Segmenter,
    out_dir: str | Path,
    *,
    alpha: float = 0.5,
    every: int = 1,
) -> VideoSummary:
    """Write `out_dir/<stem>_overlay.mp4` (H.264, the input's frame rate) and return each
    segmented frame's class shares. With `every` > 1 only every n-th frame is segmented and the
    frames between keep its mask: a cheaper pass over long clips."""
    check_alpha(alpha)
    if every < 1:
        raise GcnsegError(f"every must be >= 1, got {every}")
    av = _import_av()
    path = Path(path)
    if not path.is_file():
        raise GcnsegError(f"{path}: no such video file")
    out = Path(out_dir) / f"{path.stem}_overlay.mp4"
    start = time.perf_counter()
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise GcnsegError(f"{path}: not a readable video ({_reason(exc)})") from None
    with container:
        if not container.streams.video:
            raise GcnsegError(f"{path}: has no video stream")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        summary = VideoSummary(path, out, 0, float(rate), segmenter.engine_name, 0.0)
        with atomic_path(out) as tmp:
            _transcode(av, container, tmp, rate, segmenter, summary, alpha, every)
    summary.seconds = time.perf_counter() - start
    return summary


def _transcode(
    av: Any,
    container: Any,
    tmp: Path,
    rate: Fraction,
    segmenter: Segmenter,
    summary: VideoSummary,
    alpha: float,
    every: int,
) -> None:
    # The output opens at the first frame, when its size is known: a video with none writes none.
    with contextlib.ExitStack() as stack:
        sink = encoder = mask = None
        for batch in _frame_batches(av, container, summary.video, segmenter.batch_size):
            todo = [f for f in range(len(batch)) if (summary.frames + f) % every == 0]
            masks = (
                dict(zip(todo, segmenter.predict([batch[f] for f in todo]), strict=True))
                if todo
                else {}
            )
            for f, frame in enumerate(batch):
                if f in masks:
                    mask = masks[f]
                    summary.shares.append(
                        {"frame": summary.frames, "shares": _shares(mask, segmenter.classes.names)}
                    )
                drawn = _even(overlay(frame, mask, segmenter.classes, alpha=alpha))
                if sink is None:
                    sink = stack.enter_context(av.open(str(tmp), "w", format="mp4"))
                    encoder = _encoder(av, sink, rate, drawn.shape)
                for packet in encoder.encode(av.VideoFrame.from_ndarray(drawn, format="rgb24")):
                    sink.mux(packet)
                summary.frames += 1
        if sink is None:
            raise GcnsegError(f"{summary.video}: no frames could be decoded")
        for packet in encoder.encode():
            sink.mux(packet)


def _frame_batches(av: Any, container: Any, path: Path, size: int) -> Iterator[list[np.ndarray]]:
    """RGB frames in lists of `size`; a stream that breaks off mid-way is one error."""
    batch: list[np.ndarray] = []
    try:
        for frame in container.decode(video=0):
            batch.append(frame.to_ndarray(format="rgb24"))
            if len(batch) == size:
                yield batch
                batch = []
    except (av.FFmpegError, ValueError) as exc:
        raise GcnsegError(f"{path}: the video is damaged ({_reason(exc)})") from None
    if batch:
        yield batch


def _encoder(av: Any, sink: Any, rate: Fraction, shape: tuple[int, ...]) -> Any:
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    stream = sink.add_stream(codec, rate=rate)
    stream.height, stream.width = shape[:2]
    stream.pix_fmt = "yuv420p"
    return stream


def _shares(mask: np.ndarray, names: tuple[str, ...]) -> dict[str, float]:
    """Each class's share of the frame's pixels, by class name."""
    return dict(zip(names, pixel_shares(mask, len(names)), strict=True))


def _even(image: np.ndarray) -> np.ndarray:
    """yuv420p needs even sides: an odd last row or column is dropped."""
    h, w = image.shape[:2]
    return image[: h - h % 2, : w - w % 2]


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def _import_av() -> Any:
    try:
        import av
    except ImportError:
        raise GcnsegError(
            "reading video needs PyAV, which is not installed: pip install 'gcnseg[video]' "
            "(or pip install av)"
        ) from None
    return av
