"""`gcnseg models`: the model table (parameters, GFLOPs, offline weights)."""

from __future__ import annotations

import argparse

from gcnseg.cli.arguments import image_side


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    models = subparsers.add_parser(
        "models", help="list models: parameters, GFLOPs, offline weights; packaged models"
    )
    models.add_argument("--size", type=image_side, default=512)
    models.add_argument("--pattern", default="*")
    models.add_argument(
        "--packaged", action="store_true", help="only the trained models shipped in the package"
    )
    models.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gcnseg.models.summary import format_model_table
    from gcnseg.source import packaged_table

    if not args.packaged:
        print(format_model_table(args.size, args.pattern), end="\n\n")
    print(packaged_table())
    return 0
