"""Each limit is checked in one place and names the argument it was given as."""

from __future__ import annotations

import math

import pytest

from gcnseg.errors import GcnsegError
from gcnseg.limits import (
    MAX_EVAL_SIZE,
    OUTPUT_STRIDE,
    check_batch_size,
    check_eval_size,
    check_refine,
    check_scales,
    round_to_stride,
)


@pytest.mark.parametrize("bad", [0, 31, -64, MAX_EVAL_SIZE + 1, 100_000, 512.0, True, "512", None])
def test_eval_size_out_of_range_names_the_argument(bad: object) -> None:
    with pytest.raises(GcnsegError, match=r"^--size must be an integer"):
        check_eval_size(bad, "--size")


def test_eval_size_in_range_passes() -> None:
    assert check_eval_size(32) == 32 and check_eval_size(MAX_EVAL_SIZE) == MAX_EVAL_SIZE


@pytest.mark.parametrize("bad", [0, -1, 10**9, 2.5])
def test_batch_size_out_of_range(bad: object) -> None:
    with pytest.raises(GcnsegError, match=r"^batch_size must be"):
        check_batch_size(bad)


@pytest.mark.parametrize("bad", ["half", "Quarter", "", None, ["full"]])
def test_refine_outside_its_modes_names_the_argument(bad: object) -> None:
    with pytest.raises(GcnsegError, match=r"^--refine must be one of full, quarter, got "):
        check_refine(bad, "--refine")
    assert check_refine("full") == "full" and check_refine("quarter") == "quarter"


@pytest.mark.parametrize("bad", [(), (0.1,), (1.0, 5.0), (math.nan,), (math.inf,), ("x",)])
def test_scales_out_of_range(bad: tuple) -> None:
    with pytest.raises(GcnsegError, match=r"^scales must be numbers from 0\.25 to 4"):
        check_scales(bad)


def test_scales_become_floats() -> None:
    assert check_scales([1, 0.75]) == (1.0, 0.75)


@pytest.mark.parametrize(("side", "expected"), [(1, 32), (47, 32), (48, 64), (100, 96), (512, 512)])
def test_round_to_stride(side: float, expected: int) -> None:
    assert round_to_stride(side) == expected and expected % OUTPUT_STRIDE == 0
