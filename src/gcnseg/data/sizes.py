"""Training crop and evaluation size that fit a dataset's frames, for `gcnseg init`.

Evaluation letterboxes the longer side to `eval_size`: the frames' own longer side keeps their
detail (CamVid's 480×360 frames evaluate at 480, not squeezed to or blown up from a default).
A crop no larger than the shorter side is filled with picture, not padding. Both are multiples of
32, the network's stride, and capped where a CPU run would crawl.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from gcnseg.data.images import image_size
from gcnseg.data.samples import DatasetIndex
from gcnseg.errors import GcnsegError
from gcnseg.limits import OUTPUT_STRIDE

MAX_EVAL_SIZE = 1024  # what init proposes; gcnseg.limits bounds what may be asked
MAX_CROP_SIZE = 512
HEADERS_READ = 200  # frames whose header is read, spread over the dataset


@dataclass(frozen=True)
class FittedSizes:
    width: int  # the median frame
    height: int
    crop_size: int
    eval_size: int


def fitted_sizes(index: DatasetIndex) -> FittedSizes | None:
    """Sizes from the median frame (headers only), or None when no image header is readable."""
    samples = index.samples
    step = max(1, len(samples) // HEADERS_READ)
    frames = []
    for sample in samples[::step]:
        try:
            frames.append(image_size(sample.image))
        except GcnsegError:  # `data check` reports it; the others decide the sizes
            continue
    if not frames:
        return None
    width = int(statistics.median(w for w, _ in frames))
    height = int(statistics.median(h for _, h in frames))
    eval_size = _clamp(round(max(width, height) / OUTPUT_STRIDE) * OUTPUT_STRIDE, MAX_EVAL_SIZE)
    crop_size = _clamp(
        min(width, height) // OUTPUT_STRIDE * OUTPUT_STRIDE, min(MAX_CROP_SIZE, eval_size)
    )
    return FittedSizes(width, height, crop_size, eval_size)


def _clamp(size: int, most: int) -> int:
    return max(OUTPUT_STRIDE, min(size, most))
