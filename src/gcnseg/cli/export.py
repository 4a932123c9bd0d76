"""`gcnseg export`: a model as ONNX (fp32 or int8), a slim fp16 .pt, or a saved folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from gcnseg.cli.arguments import integer, positive_int


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    export = subparsers.add_parser("export", help="export a checkpoint to ONNX, or a slim fp16 .pt")
    export.add_argument("--checkpoint", required=True)
    export.add_argument(
        "--out",
        type=Path,
        required=True,
        help="model.onnx; release.pt / release.pt.gz (fp16; .gz compressed); "
        "or a folder (safetensors + config.json)",
    )
    export.add_argument("--opset", type=integer, default=17)
    export.add_argument(
        "--int8",
        type=Path,
        metavar="DATA",
        help="quantise the ONNX model to int8, calibrated on this dataset's training images",
    )
    export.add_argument("--manifest", type=Path, help="with --int8: calibrate on its train split")
    export.add_argument(
        "--calibration-images", type=positive_int, default=32, help="with --int8: how many images"
    )
    export.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gcnseg.inference.export import export_model

    path = export_model(
        args.checkpoint,
        args.out,
        opset=args.opset,
        int8_data=args.int8,
        int8_manifest=args.manifest,
        calibration_images=args.calibration_images,
    )
    print(f"wrote {path}")
    return 0
