"""Limits on what the library is asked to do, each checked here once.

The CLI, the Python API and the server call these checks, so a bad value gives the same
one-line error whichever way it came in; `name` is the argument as the caller spells it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from gcnseg.errors import GcnsegError

OUTPUT_STRIDE = 32  # the backbones' coarsest feature map is 1/32 of the input
MIN_SIDE = OUTPUT_STRIDE  # below it the coarsest features vanish
MAX_EVAL_SIZE = 4096  # a 4096² letterbox already holds 50 M pixels per image
MAX_BATCH_SIZE = 1024
SCALE_RANGE = (0.25, 4.0)  # test-time scales

# Where the decoder's last two Boundary Refinements run. "full": the paper's Figure 2, one at half
# and one at full resolution. "quarter": both at 1/4 (the finest stage's resolution), then the
# scores are upsampled once: the same weights, without the high-resolution convolutions on
# C-channel maps that took a third of GCN-Lite0's inference (benchmarks/README.md, "Inference speed").
REFINE_FULL = "full"
REFINE_QUARTER = "quarter"
REFINE_MODES = (REFINE_FULL, REFINE_QUARTER)
REFINE_DEFAULT = REFINE_QUARTER  # as accurate as "full" on pets and CamVid, and faster


def check_eval_size(value: object, name: str = "size") -> int:
    """The side of the square images are letterboxed into."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not MIN_SIDE <= value <= MAX_EVAL_SIZE
    ):
        raise GcnsegError(
            f"{name} must be an integer from {MIN_SIDE} to {MAX_EVAL_SIZE}, got {value!r}"
        )
    return value


def check_refine(value: object, name: str = "refine") -> str:
    """Where the decoder's last refinements run: one of REFINE_MODES."""
    if value not in REFINE_MODES:
        raise GcnsegError(f"{name} must be one of {', '.join(REFINE_MODES)}, got {value!r}")
    return value


def check_batch_size(value: object, name: str = "batch_size") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_BATCH_SIZE:
        raise GcnsegError(f"{name} must be an integer from 1 to {MAX_BATCH_SIZE}, got {value!r}")
    return value


def check_scales(scales: Sequence[float], name: str = "scales") -> tuple[float, ...]:
    """Test-time scales, e.g. (0.75, 1, 1.25)."""
    low, high = SCALE_RANGE
    try:
        values = tuple(float(s) for s in scales)
    except (TypeError, ValueError):
        raise GcnsegError(
            f"{name} must be numbers from {low:g} to {high:g}, got {scales!r}"
        ) from None
    if not values or not all(math.isfinite(s) and low <= s <= high for s in values):
        raise GcnsegError(f"{name} must be numbers from {low:g} to {high:g}, got {list(values)}")
    return values


def round_to_stride(side: float) -> int:
    """`side` rounded to the nearest multiple of the output stride (at least one stride)."""
    return max(OUTPUT_STRIDE, int(side / OUTPUT_STRIDE + 0.5) * OUTPUT_STRIDE)
