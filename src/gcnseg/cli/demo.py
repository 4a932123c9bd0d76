"""`gcnseg demo` (what `make demo` runs): train, test and draw on the Oxford-IIIT Pet sample."""

from __future__ import annotations

import argparse
from pathlib import Path

from gcnseg.cli.arguments import finite_float
from gcnseg.errors import GcnsegError

GET_DATA = (
    "fetch Oxford-IIIT Pet with `gcnseg data download --root DIR`, then run "
    "`gcnseg demo --data DIR` (or `gcnseg demo --data DIR --download` in one step)"
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser(
        "demo", help="train, test and draw on the Oxford-IIIT Pet sample (CPU, minutes)"
    )
    demo.add_argument(
        "--data",
        type=Path,
        help="Oxford-IIIT Pet folder (make demo passes the sample; "
        "`gcnseg data download --root DIR` fetches the official set)",
    )
    demo.add_argument("--out", type=Path, default=Path("runs/demo"))
    demo.add_argument("--minutes", type=finite_float, default=8.0, help="training time budget")
    demo.add_argument(
        "--download", action="store_true", help="fetch the full official set into --data first"
    )
    demo.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gcnseg.tools.demo import run_demo

    if args.data is None:
        raise GcnsegError(f"gcnseg demo needs data: {GET_DATA}")
    if not args.download and not args.data.is_dir():
        raise GcnsegError(f"{args.data}: no such folder; {GET_DATA}")
    run_demo(args.data, args.out, minutes=args.minutes, download=args.download)
    return 0
