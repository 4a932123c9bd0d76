"""`gcnseg test`: score a model on a dataset at original resolution, with figures on request."""

from __future__ import annotations

import argparse
from pathlib import Path

from gcnseg.cli.arguments import (
    add_device,
    add_engine,
    add_tta,
    check_outputs,
    image_side,
    non_negative_int,
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    test = subparsers.add_parser("test", help="evaluate a checkpoint at original resolution")
    test.add_argument(
        "--checkpoint", required=True, help="file, run folder, or packaged name (pets-default)"
    )
    test.add_argument("--data", type=Path, help="dataset root (default: a run folder's own)")
    test.add_argument(
        "--manifest", type=Path, help="evaluate one split of this manifest (default: the run's)"
    )
    test.add_argument(
        "--split",
        choices=["train", "val", "test"],
        help="default test: of the manifest, the run's, or the dataset's own split (CamVid, "
        "split folders); a dataset with none is scored whole, and a named split is refused",
    )
    test.add_argument(
        "--size", type=image_side, help="inference size (default: the checkpoint's eval size)"
    )
    add_tta(test)
    add_device(test)
    add_engine(test)
    test.add_argument(
        "--strict",
        action="store_true",
        help="stop on an unreadable image instead of leaving it out",
    )
    test.add_argument(
        "--any-class-names",
        action="store_true",
        help="score even if the dataset names its classes differently from the model",
    )
    test.add_argument("--json", type=Path, dest="json_out", help="write the report here")
    test.add_argument("--draw", type=Path, help="write an overlay panel for every image here")
    test.add_argument(
        "--worst", type=non_negative_int, default=8, help="gallery of the k worst images by IoU"
    )
    test.add_argument("--out", type=Path, help="folder for the confusion matrix and gallery")
    test.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gcnseg.evaluation.report import run_test, written_files

    check_outputs(
        (args.json_out, "the JSON report", False),
        (args.draw, "the overlays", True),
        (args.out, "the confusion matrix and gallery", True),
    )
    report = run_test(
        args.checkpoint,
        args.data,
        manifest=args.manifest,
        split=args.split,
        size=args.size,
        flip=args.flip,
        scales=tuple(args.scales),
        device=args.device,
        engine=args.engine,
        strict=args.strict,
        any_class_names=args.any_class_names,
        draw_dir=args.draw,
        out_dir=args.out,
        worst=args.worst,
        json_out=args.json_out,
        cache_dir=args.cache_dir,
    )
    print(report.format())
    for path in written_files(json_out=args.json_out, draw_dir=args.draw, out_dir=args.out):
        print(f"wrote {path}")
    return 0
