"""What the subcommands share: argument types, the parser, flag groups and the output check.

A bad value is one line naming the flag, before any work starts. A limit the library checks
itself (TTA scales, split fractions, ONNX opsets, overlay opacity) is only converted here, so the
command and the Python API refuse the same values with the same words.
"""

from __future__ import annotations

import argparse
import math
import urllib.parse
from pathlib import Path

from gcnseg.errors import GcnsegError
from gcnseg.limits import MIN_SIDE

DEVICES = ["auto", "cpu", "cuda"]


class Parser(argparse.ArgumentParser):
    """Parse errors as the one line every other user mistake gets (exit 2, no usage dump)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise GcnsegError(f"{message} (see `{self.prog} --help`)")


def _number(text: str, kind: type) -> int | float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def integer(text: str) -> int:
    return int(_number(text, int))


def finite_float(text: str) -> float:
    return float(_number(text, float))


def _ranged(kind: type, low: float, *, unit: str = ""):
    """An argparse type: a `kind` number >= low."""

    def parse(text: str) -> int | float:
        value = _number(text, kind)
        if value < low:
            raise argparse.ArgumentTypeError(f"{value} must be >= {low}{unit}")
        return value

    return parse


positive_int = _ranged(int, 1)
non_negative_int = _ranged(int, 0)
image_side = _ranged(int, MIN_SIDE, unit=" pixels")  # below it the coarsest features vanish


def http_url(text: str) -> str:
    parts = urllib.parse.urlparse(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise argparse.ArgumentTypeError(f"{text!r} is not an http(s) URL")
    return text


def add_verbosity(parser: argparse.ArgumentParser, default: object) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "-q",
        "--quiet",
        dest="verbosity",
        action="store_const",
        const=-1,
        default=default,
        help="warnings only: no progress bars, no INFO lines",
    )
    group.add_argument(
        "-v",
        "--verbose",
        dest="verbosity",
        action="store_const",
        const=1,
        default=default,
        help="debug messages too",
    )


def verbosity_everywhere(parser: argparse.ArgumentParser) -> None:
    """-q/-v after any subcommand too (`gcnseg predict -q ...`); SUPPRESS as their default so a
    subcommand without them keeps what was given before it."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                add_verbosity(child, argparse.SUPPRESS)
                verbosity_everywhere(child)


def add_engine(parser: argparse.ArgumentParser) -> None:
    from gcnseg.inference import ENGINES

    parser.add_argument(
        "--engine",
        default="auto",
        choices=ENGINES,
        help="what runs the model (default auto: the fastest accurate one on this machine)",
    )
    parser.add_argument(
        "--cache-dir",
        type=cache_dir,
        help="where the onnx/openvino engines keep their export (default ~/.cache/gcnseg or "
        "$GCNSEG_CACHE; 'off': nowhere)",
    )


def cache_dir(text: str) -> Path | bool:
    """A folder, or `off` for no cache (see gcnseg.io.cache)."""
    return False if text.lower() == "off" else Path(text)


def add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", choices=DEVICES)


def add_tta(parser: argparse.ArgumentParser) -> None:
    """Test-time augmentation, the same for `test` and `predict`."""
    parser.add_argument("--flip", action="store_true", help="flip test-time augmentation")
    parser.add_argument(
        "--scales",
        type=float,
        nargs="+",
        default=[1.0],
        help="multi-scale test-time augmentation, e.g. 0.75 1 1.25 (default: 1)",
    )


def check_outputs(*outputs: tuple[Path | None, str, bool]) -> None:
    """(path, what it is, a folder?) for each output given: an unwritable path or a file where a
    folder goes is refused before the work starts, so it costs nothing."""
    from gcnseg.io.atomic import ensure_writable

    for path, kind, folder in outputs:
        if path is not None:
            ensure_writable(path, kind, folder=folder)
