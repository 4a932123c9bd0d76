"""Accuracy guard for the inference engines on the real sample's test split (the table in
benchmarks/README.md, "The same model on every engine"), or on another model and dataset.

    .venv/bin/python benchmarks/engine_accuracy.py [--flip] [--out benchmarks/results/engines.md]
    .venv/bin/python benchmarks/engine_accuracy.py --checkpoint camvid-default \
        --data ../shared/data/camvid --manifest none --split val

Exports an int8 model calibrated on 32 training images first (the engine needs one); OpenVINO
is included when installed.
"""

from __future__ import annotations

import argparse
import importlib.util
import tempfile
from pathlib import Path

from gcnseg.evaluation.compare import compare_engines, markdown
from gcnseg.inference.export import export_checkpoint
from gcnseg.inference.quantize import calibration_images
from gcnseg.inference.segmenter import load
from gcnseg.io.atomic import write_text
from gcnseg.runtime import cpu_features

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checkpoint", default="pets-default")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/oxford-pets-sample")
    parser.add_argument(
        "--manifest",
        default=str(ROOT / "manifests/oxford-pets-sample.json"),
        help="'none' for a dataset with its own split (CamVid)",
    )
    parser.add_argument("--split", default="test", choices=("train", "val", "test"))
    parser.add_argument("--flip", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    manifest = None if args.manifest == "none" else Path(args.manifest)
    with tempfile.TemporaryDirectory() as workdir:
        int8 = Path(workdir) / "int8.onnx"
        images = calibration_images(args.data, manifest, 32)
        export_checkpoint(args.checkpoint, int8, int8_calibration=images)
        names = ["torch-fp32", "torch-bf16", "onnx"]
        if importlib.util.find_spec("openvino"):
            names.append("openvino")
        segmenters = {
            name: load(args.checkpoint, engine=name, device="cpu", flip=args.flip) for name in names
        }
        segmenters["onnx-int8"] = load(int8, flip=args.flip)
        rows = compare_engines(segmenters, args.data, manifest=manifest, split=args.split)
    table = markdown(rows, segmenters["torch-fp32"].classes.names)
    cpu = cpu_features()
    text = (
        f"{args.checkpoint}, {args.split} split, flip {args.flip}, CPU: {cpu['model']}\n\n{table}\n"
    )
    print(text)
    if args.out:
        write_text(args.out, text)


if __name__ == "__main__":
    main()
