"""`gcnseg init`: a starter training config for a dataset, to edit and train with."""

from __future__ import annotations

import argparse
from pathlib import Path

from gcnseg.cli.arguments import check_outputs
from gcnseg.errors import GcnsegError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    init = subparsers.add_parser("init", help="write a starter training config for a dataset")
    init.add_argument("data", type=Path, help="dataset folder")
    init.add_argument("--out", type=Path, default=Path("gcnseg.yaml"), help="default: gcnseg.yaml")
    init.add_argument("--force", action="store_true", help="replace an existing --out")
    init.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gcnseg.config import starter_config
    from gcnseg.data.layouts import index_dataset
    from gcnseg.io.atomic import write_text

    check_outputs((args.out, "the config", False))
    if args.out.exists() and not args.force:
        raise GcnsegError(f"{args.out}: already exists; pass --force to replace it")
    index = index_dataset(args.data)
    write_text(args.out, starter_config(index.root.resolve(), index.classes, len(index.samples)))
    print(
        f"wrote {args.out} ({len(index.samples)} pairs, classes {', '.join(index.classes.names)})"
    )
    print(f"next: gcnseg train --config {args.out}")
    return 0
