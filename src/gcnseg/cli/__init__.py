"""The `gcnseg` command: argparse subcommands that parse, load the config and call the library.

One module per command group, each with `add_parser(subparsers)` and `run(args) -> int`; what
they share (argument types, flag groups) is in `arguments`. A user's mistake (GcnsegError) is
printed as one line and exits 2; nothing else is caught.
"""

from __future__ import annotations

import argparse
import sys

from gcnseg._version import __version__
from gcnseg.cli import bench, data, demo, export, models, predict, serve, test, train
from gcnseg.cli.arguments import Parser, add_verbosity, verbosity_everywhere
from gcnseg.errors import GcnsegError
from gcnseg.logs import setup_logging

COMMANDS = (data, train, test, predict, models, export, demo, bench, serve)  # --help order


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="gcnseg", description="Semantic segmentation with Global Convolutional Networks."
    )
    parser.add_argument("--version", action="version", version=f"gcnseg {__version__}")
    add_verbosity(parser, 0)
    subparsers = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(subparsers)
    verbosity_everywhere(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except GcnsegError as exc:
        print(f"gcnseg: error: {exc}", file=sys.stderr)
        return 2
    setup_logging(args.verbosity)
    try:
        return args.func(args)
    except GcnsegError as exc:
        print(f"gcnseg: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gcnseg: interrupted", file=sys.stderr)
        return 130
