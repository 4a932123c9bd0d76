"""`gcnseg data check | split | download`: look at a dataset, split it, or fetch Oxford-IIIT Pet."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gcnseg.cli.arguments import check_outputs, http_url, positive_int


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    data = subparsers.add_parser("data", help="check, split or download datasets")
    data.set_defaults(func=run)
    dsub = data.add_subparsers(dest="data_command", required=True)
    check = dsub.add_parser("check", help="scan a dataset and report problems")
    check.add_argument("root", type=Path)
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.add_argument("--strict", action="store_true", help="exit 1 if any pair is unusable")
    split = dsub.add_parser("split", help="write a seeded, stratified train/val/test manifest")
    split.add_argument("root", type=Path)
    split.add_argument("--out", type=Path, required=True)
    split.add_argument("--test", type=float, default=0.1, help="test fraction (default 0.1)")
    split.add_argument("--val", type=float, default=0.1, help="validation fraction of the rest")
    split.add_argument("--seed", type=int, default=0)
    split.add_argument(
        "--max-side", type=positive_int, help="drop images whose longer side is >= this"
    )
    split.add_argument(
        "--ignore-official", action="store_true", help="seeded split even if trainval/test exist"
    )
    split.add_argument(
        "--train-on-val",
        action="store_true",
        help="val joins train (a final model on every labelled image; test stays held out)",
    )
    download = dsub.add_parser("download", help="fetch the official Oxford-IIIT Pet release")
    download.add_argument("--root", type=Path, required=True)
    download.add_argument(
        "--url-base", type=http_url, help="mirror serving images.tar.gz and annotations.tar.gz"
    )


def run(args: argparse.Namespace) -> int:
    return {"check": _check, "split": _split, "download": _download}[args.data_command](args)


def _check(args: argparse.Namespace) -> int:
    from gcnseg.data.check import check_dataset

    report = check_dataset(args.root, progress=not args.json)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.format())
    return 1 if report.failed(args.strict) else 0


def _split(args: argparse.Namespace) -> int:
    from gcnseg.data.layouts import index_dataset
    from gcnseg.data.splits import make_split, save_manifest

    check_outputs((args.out, "the manifest", False))
    manifest = make_split(
        index_dataset(args.root),
        test_fraction=args.test,
        val_fraction=args.val,
        seed=args.seed,
        max_side=args.max_side,
        use_official=not args.ignore_official,
        train_on_val=args.train_on_val,
    )
    save_manifest(args.out, manifest)
    counts = ", ".join(f"{k} {len(v)}" for k, v in manifest["splits"].items())
    print(f"{args.out}: {manifest['source']} split: {counts}")
    return 0


def _download(args: argparse.Namespace) -> int:
    from gcnseg.data.oxford_pets import OXFORD_PETS_URL, download_oxford_pets

    check_outputs((args.root, "the dataset", True))
    root = download_oxford_pets(args.root, args.url_base or OXFORD_PETS_URL)
    print(f"Oxford-IIIT Pet ready in {root}")
    return 0
