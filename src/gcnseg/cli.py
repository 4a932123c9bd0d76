"""The `gcnseg` command: argparse subcommands that parse, load the config and call the library.

A user's mistake (GcnsegError) is printed as one line and exits 2; nothing else is caught.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import urllib.parse
from pathlib import Path

from gcnseg import __version__
from gcnseg.errors import GcnsegError
from gcnseg.logs import setup_logging

# Argument types: a bad value is one line naming the flag, before any work starts.
ONNX_OPSETS = range(13, 21)  # what the exporter and ONNX Runtime both handle for these models


def _number(text: str, kind: type) -> int | float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _ranged(
    kind: type, low: float, high: float | None = None, *, above: bool = False, unit: str = ""
):
    """An argparse type: a `kind` number >= low (> low with `above`), and <= high if given."""

    def parse(text: str) -> int | float:
        value = _number(text, kind)
        if high is not None and not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} must be in [{low}, {high}]")
        if value < low or (above and value == low):
            raise argparse.ArgumentTypeError(
                f"{value} must be {'>' if above else '>='} {low}{unit}"
            )
        return value

    return parse


positive_int = _ranged(int, 1)
non_negative_int = _ranged(int, 0)
image_side = _ranged(int, 32, unit=" pixels")  # below 32 the stride-32 features vanish
positive_float = _ranged(float, 0, above=True)
unit_float = _ranged(float, 0, 1)


def onnx_opset(text: str) -> int:
    value = _number(text, int)
    if value not in ONNX_OPSETS:
        raise argparse.ArgumentTypeError(
            f"{value} is not supported; use {ONNX_OPSETS.start} to {ONNX_OPSETS.stop - 1}"
        )
    return value


def http_url(text: str) -> str:
    parts = urllib.parse.urlparse(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise argparse.ArgumentTypeError(f"{text!r} is not an http(s) URL")
    return text


class _Parser(argparse.ArgumentParser):
    """Parse errors as the one line every other user mistake gets (exit 2, no usage dump)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise GcnsegError(f"{message} (see `{self.prog} --help`)")


def _add_data(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="check, split or download datasets")
    dsub = data.add_subparsers(dest="data_command", required=True)
    check = dsub.add_parser("check", help="scan a dataset and report problems")
    check.add_argument("root", type=Path)
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.add_argument("--strict", action="store_true", help="exit 1 if any pair is unusable")
    check.set_defaults(func=cmd_data_check)
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
    split.set_defaults(func=cmd_data_split)
    download = dsub.add_parser("download", help="fetch the official Oxford-IIIT Pet release")
    download.add_argument("--root", type=Path, required=True)
    download.add_argument(
        "--url-base", type=http_url, help="mirror serving images.tar.gz and annotations.tar.gz"
    )
    download.set_defaults(func=cmd_data_download)


def _add_train(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser("train", help="train a model (YAML config + overrides)")
    train.add_argument(
        "--config", help="shipped config name or YAML path (default: pets_gcn_lite0)"
    )
    train.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE"
    )
    train.add_argument(
        "--data", help="dataset folder (data.root); needed unless the config sets it"
    )
    train.add_argument("--manifest", help="split manifest JSON (data.manifest)")
    train.add_argument("--model", help="model name (model.name); see `gcnseg models`")
    train.add_argument("--epochs", type=int)
    train.add_argument("--device", choices=["auto", "cpu", "cuda"])
    train.add_argument("--amp", choices=["auto", "none", "bf16", "fp16"])
    train.add_argument("--output", help="folder holding run folders (train.output)")
    train.add_argument("--name", help="run folder name (train.name)")
    train.add_argument("--backbone-weights", help="imagenet | random | PATH | URL")
    train.add_argument(
        "--init",
        metavar="MODEL",
        help="start from a segmentation model: pets-default, a run folder or a checkpoint "
        "(model.init; class-shaped layers restart when the class count differs)",
    )
    train.add_argument(
        "--print-config", action="store_true", help="print the resolved config (YAML) and exit"
    )
    train.add_argument(
        "--resume", type=Path, metavar="RUN_DIR", help="continue a run where it stopped"
    )
    train.add_argument(
        "--overwrite", action="store_true", help="replace the run already in the run folder"
    )
    train.add_argument(
        "--nproc",
        type=positive_int,
        default=1,
        help="processes on this machine (launches torchrun)",
    )
    train.set_defaults(func=cmd_train)


def _add_tta(parser: argparse.ArgumentParser) -> None:
    """Test-time augmentation, the same for `test` and `predict`."""
    parser.add_argument("--flip", action="store_true", help="flip test-time augmentation")
    parser.add_argument(
        "--scales",
        type=float,
        nargs="+",
        default=[1.0],
        help="multi-scale test-time augmentation, e.g. 0.75 1 1.25 (default: 1)",
    )


def _add_eval(sub: argparse._SubParsersAction) -> None:
    test = sub.add_parser("test", help="evaluate a checkpoint at original resolution")
    test.add_argument(
        "--checkpoint", required=True, help="file, run folder, or packaged name (pets-default)"
    )
    test.add_argument("--data", type=Path, required=True, help="dataset root")
    test.add_argument("--manifest", type=Path, help="evaluate one split of this manifest")
    test.add_argument("--split", default="test", choices=["train", "val", "test"])
    test.add_argument(
        "--size", type=image_side, help="inference size (default: the checkpoint's eval size)"
    )
    _add_tta(test)
    test.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    _add_engine(test)
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
    test.set_defaults(func=cmd_test)

    predict = sub.add_parser("predict", help="segment images: masks, overlays, panels")
    predict.add_argument("inputs", nargs="+", help="files, folders or glob patterns")
    predict.add_argument("--checkpoint", default="pets-default")
    predict.add_argument("--out", type=Path, default=Path("predictions"))
    _add_engine(predict)
    predict.add_argument(
        "--batch-size", type=positive_int, default=4, help="images per forward pass"
    )
    predict.add_argument(
        "--size", type=image_side, help="inference size (default: the checkpoint's eval size)"
    )
    _add_tta(predict)
    predict.add_argument("--alpha", type=unit_float, default=0.5, help="overlay opacity")
    predict.add_argument("--masks", type=Path, help="folder of ground-truth masks for panels")
    predict.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    predict.add_argument(
        "--json", type=Path, dest="json_out", help="write a summary (counts, engine, skipped) here"
    )
    predict.set_defaults(func=cmd_predict)


def _add_engine(parser: argparse.ArgumentParser) -> None:
    from gcnseg.inference import ENGINES

    parser.add_argument(
        "--engine",
        default="auto",
        choices=ENGINES,
        help="what runs the model (default auto: the fastest accurate one on this machine)",
    )


def _add_tools(sub: argparse._SubParsersAction) -> None:
    models = sub.add_parser("models", help="list models: parameters, GFLOPs, offline weights")
    models.add_argument("--size", type=image_side, default=512)
    models.add_argument("--pattern", default="*")
    models.set_defaults(func=cmd_models)

    export = sub.add_parser("export", help="export a checkpoint to ONNX, or a slim fp16 .pt")
    export.add_argument("--checkpoint", required=True)
    export.add_argument(
        "--out",
        type=Path,
        required=True,
        help="model.onnx; release.pt / release.pt.gz (fp16; .gz compressed); or a folder (safetensors + config.json)",
    )
    export.add_argument("--opset", type=onnx_opset, default=17)
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
    export.set_defaults(func=cmd_export)

    demo = sub.add_parser(
        "demo", help="train, test and draw on the Oxford-IIIT Pet sample (CPU, minutes)"
    )
    demo.add_argument(
        "--data",
        type=Path,
        required=True,
        help="Oxford-IIIT Pet folder (make demo passes the sample)",
    )
    demo.add_argument("--out", type=Path, default=Path("runs/demo"))
    demo.add_argument("--minutes", type=positive_float, default=8.0, help="training time budget")
    demo.add_argument(
        "--download", action="store_true", help="fetch the full official set into --data first"
    )
    demo.set_defaults(func=cmd_demo)


def _add_bench(sub: argparse._SubParsersAction) -> None:
    from gcnseg.tools.bench import DEFAULT_MODELS, MODES, PET_CLASSES, TORCH_MODES

    bench = sub.add_parser("bench", help="measure GFLOPs, img/s, latency and peak memory")
    bench.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), metavar="MODEL")
    bench.add_argument("--sizes", nargs="+", type=int, default=[512], metavar="SIZE")
    bench.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    bench.add_argument("--batch-size", type=int, default=4, help="for img/s (latency: batch 1)")
    bench.add_argument("--repeats", type=int, default=10)
    bench.add_argument("--warmup", type=int, default=2)
    bench.add_argument("--quick", action="store_true", help="1 warm-up run and 3 repeats")
    bench.add_argument("--threads", type=int, default=None, help="default: torch's default")
    bench.add_argument(
        "--num-classes", type=int, default=PET_CLASSES, help="head size (default: the pet task's 3)"
    )
    bench.add_argument("--json", type=Path, dest="json_out", help="write results and environment")
    bench.add_argument("--markdown", action="store_true", help="print a markdown table")
    bench.add_argument(
        "--profile",
        choices=TORCH_MODES,
        default=None,
        help="instead of benchmarking, print the top ops of this mode (torch.profiler)",
    )
    bench.add_argument("--row-limit", type=int, default=20, help="ops shown by --profile")
    bench.set_defaults(func=cmd_bench)


def _add_serve(sub: argparse._SubParsersAction) -> None:
    serve = sub.add_parser("serve", help="an HTTP API and a web page for a model")
    serve.add_argument("--checkpoint", default="pets-default", help="file, run folder or name")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback)")
    serve.add_argument("--port", type=int, default=8000)
    _add_engine(serve)
    serve.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    serve.add_argument("--max-upload-mb", type=float, default=20.0, help="larger uploads get 413")
    serve.add_argument(
        "--max-queue", type=int, default=16, help="requests waiting or running; more get 503"
    )
    serve.add_argument(
        "--max-batch", type=int, default=4, help="requests waiting together share a forward pass"
    )
    serve.add_argument(
        "--memory-budget-mb", type=float, default=6144.0, help="for the images in line; 503 past it"
    )
    serve.add_argument("--body-timeout-s", type=float, default=30.0, help="slower uploads get 408")
    serve.add_argument(
        "--api-key",
        default=os.environ.get("GCNSEG_API_KEY"),
        help="require this key in the X-API-Key header (default: $GCNSEG_API_KEY, else none)",
    )
    serve.set_defaults(func=cmd_serve)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="gcnseg", description="Semantic segmentation with Global Convolutional Networks."
    )
    parser.add_argument("--version", action="version", version=f"gcnseg {__version__}")
    _add_verbosity(parser, 0)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_init(sub)
    _add_data(sub)
    _add_train(sub)
    _add_eval(sub)
    _add_tools(sub)
    _add_bench(sub)
    _add_serve(sub)
    _verbosity_everywhere(parser)
    return parser


def _add_verbosity(parser: argparse.ArgumentParser, default: object) -> None:
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


def _verbosity_everywhere(parser: argparse.ArgumentParser) -> None:
    """-q/-v after any subcommand too (`gcnseg predict -q ...`); SUPPRESS as their default so a
    subcommand without them keeps what was given before it."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _add_verbosity(child, argparse.SUPPRESS)
                _verbosity_everywhere(child)


def _add_init(sub: argparse._SubParsersAction) -> None:
    init = sub.add_parser("init", help="write a starter training config for a dataset")
    init.add_argument("data", type=Path, help="dataset folder")
    init.add_argument("--out", type=Path, default=Path("gcnseg.yaml"), help="default: gcnseg.yaml")
    init.add_argument("--force", action="store_true", help="replace an existing --out")
    init.set_defaults(func=cmd_init)


def cmd_data_check(args: argparse.Namespace) -> int:
    from gcnseg.data.check import check_dataset

    report = check_dataset(args.root, progress=not args.json)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.format())
    return 1 if args.strict and report.problems else 0


def cmd_data_split(args: argparse.Namespace) -> int:
    from gcnseg.data.layouts import index_dataset
    from gcnseg.data.splits import make_split, save_manifest

    manifest = make_split(
        index_dataset(args.root),
        test_fraction=args.test,
        val_fraction=args.val,
        seed=args.seed,
        max_side=args.max_side,
        use_official=not args.ignore_official,
    )
    save_manifest(args.out, manifest)
    counts = ", ".join(f"{k} {len(v)}" for k, v in manifest["splits"].items())
    print(f"{args.out}: {manifest['source']} split: {counts}")
    return 0


def cmd_data_download(args: argparse.Namespace) -> int:
    from gcnseg.data.oxford_pets import OXFORD_PETS_URL, download_oxford_pets

    root = download_oxford_pets(args.root, args.url_base or OXFORD_PETS_URL)
    print(f"Oxford-IIIT Pet ready in {root}")
    return 0


def train_overrides(args: argparse.Namespace) -> list[str]:
    """Plain flags are shorthands for --set; both end up as overrides on the YAML."""
    flags = {
        "data.root": args.data,
        "data.manifest": args.manifest,
        "model.name": args.model,
        "model.backbone_weights": args.backbone_weights,
        "model.init": args.init,
        "train.epochs": args.epochs,
        "train.device": args.device,
        "train.amp": args.amp,
        "train.output": args.output,
        "train.name": args.name,
    }
    return [f"{k}={v}" for k, v in flags.items() if v is not None] + args.overrides


def cmd_train(args: argparse.Namespace) -> int:
    if args.nproc > 1:
        from gcnseg.training.launch import launch_torchrun

        return launch_torchrun(args.nproc, sys.argv[1:])
    import yaml

    from gcnseg.config import DEFAULT_CONFIG, load_config
    from gcnseg.training.loop import train

    if args.resume:  # the run's own config, changed only by explicit --set / flags
        if args.config is not None:
            raise GcnsegError(
                "--config cannot be combined with --resume: a resumed run keeps its saved "
                "config; change single settings with --set"
            )
        if args.print_config:
            config = load_config(args.resume / "config.yaml", train_overrides(args))
            print(yaml.safe_dump(config.to_dict(), sort_keys=False), end="")
            return 0
        run_dir = train(
            None,
            resume=args.resume,
            resume_overrides=train_overrides(args),
            overwrite=args.overwrite,
        )
    else:
        config = load_config(args.config or DEFAULT_CONFIG, train_overrides(args))
        if args.print_config:
            print(yaml.safe_dump(config.to_dict(), sort_keys=False), end="")
            return 0
        run_dir = train(config, overwrite=args.overwrite)
    if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 speaks for the job
        print(f"run folder: {run_dir}")
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    from gcnseg.config import starter_config
    from gcnseg.data.layouts import index_dataset
    from gcnseg.io.atomic import write_text

    if args.out.exists() and not args.force:
        raise GcnsegError(f"{args.out}: already exists; pass --force to replace it")
    index = index_dataset(args.data)
    write_text(args.out, starter_config(index.root.resolve(), index.classes, len(index.samples)))
    print(
        f"wrote {args.out} ({len(index.samples)} pairs, classes {', '.join(index.classes.names)})"
    )
    print(f"next: gcnseg train --config {args.out}")
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    from gcnseg.evaluation.report import run_test

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
    )
    print(report.format())
    written = [args.json_out, args.draw]
    if args.out is not None:
        written += [args.out / "confusion_matrix.png", args.out / "worst.png"]
    for path in written:
        if path is not None and path.exists():  # worst.png only when an image was scored
            print(f"wrote {path}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from gcnseg.inference.predict import predict_files

    summary = predict_files(
        args.inputs,
        checkpoint=args.checkpoint,
        out_dir=args.out,
        engine=args.engine,
        size=args.size,
        flip=args.flip,
        scales=tuple(args.scales),
        alpha=args.alpha,
        masks_dir=args.masks,
        device=args.device,
        batch_size=args.batch_size,
    )
    skipped = f", {len(summary.skipped)} skipped" if summary.skipped else ""
    print(f"{summary.written} images segmented into {args.out} (engine {summary.engine}{skipped})")
    if args.json_out is not None:
        from gcnseg.io.atomic import write_json

        write_json(
            args.json_out,
            {
                "version": __version__,
                "checkpoint": str(args.checkpoint),
                "engine": summary.engine,
                "out": str(args.out),
                "written": summary.written,
                "skipped": summary.skipped,
            },
        )
        print(f"wrote {args.json_out}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from gcnseg.models.summary import format_model_table

    print(format_model_table(args.size, args.pattern))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    if args.int8 and args.out.suffix != ".onnx":
        raise GcnsegError(f"{args.out}: --int8 writes an ONNX model; name it *.onnx")
    if args.out.name.endswith((".pt", ".pt.gz")):
        from gcnseg.checkpoint import save_release

        path = save_release(args.checkpoint, args.out)
    elif args.out.suffix == ".onnx":
        from gcnseg.inference.export import export_checkpoint
        from gcnseg.inference.quantize import calibration_images

        images = None
        if args.int8:
            images = calibration_images(args.int8, args.manifest, args.calibration_images)
        path = export_checkpoint(
            args.checkpoint, args.out, opset=args.opset, int8_calibration=images
        )
    else:  # a folder: safetensors weights + config.json, for gcnseg.load(folder)
        from gcnseg.inference.segmenter import load

        path = load(args.checkpoint, engine="torch-fp32").save_pretrained(args.out)
    print(f"wrote {path}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from gcnseg.tools.bench.runner import bench_or_profile

    options = ("modes", "batch_size", "repeats", "warmup", "quick", "threads", "num_classes")
    options += ("json_out", "markdown", "profile", "row_limit")
    return bench_or_profile(args.models, args.sizes, **{k: getattr(args, k) for k in options})


def cmd_demo(args: argparse.Namespace) -> int:
    from gcnseg.tools.demo import run_demo

    run_demo(args.data, args.out, minutes=args.minutes, download=args.download)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from gcnseg.serving.server import serve

    options = ("host", "port", "engine", "device", "max_upload_mb", "max_queue", "max_batch")
    options += ("memory_budget_mb", "body_timeout_s")
    serve(args.checkpoint, api_key=args.api_key, **{k: getattr(args, k) for k in options})
    return 0


# Where each command writes: (argument, what it is, a folder?). Checked before the work starts,
# so an unwritable path or a file where a folder goes costs nothing.
OUTPUTS = {
    "split": [("out", "the manifest", False)],
    "download": [("root", "the dataset", True)],
    "test": [
        ("json_out", "the JSON report", False),
        ("draw", "the overlays", True),
        ("out", "the confusion matrix and gallery", True),
    ],
    "predict": [("out", "the predictions", True), ("json_out", "the JSON summary", False)],
    "init": [("out", "the config", False)],
}


def check_outputs(args: argparse.Namespace) -> None:
    from gcnseg.io.atomic import ensure_writable

    command = getattr(args, "data_command", None) or args.command
    for name, kind, folder in OUTPUTS.get(command, []):
        if getattr(args, name, None) is not None:
            ensure_writable(getattr(args, name), kind, folder=folder)
    if command == "export":  # a model file, or a folder for safetensors + config.json
        folder = not args.out.name.endswith((".onnx", ".pt", ".pt.gz"))
        ensure_writable(args.out, "the exported model", folder=folder)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except GcnsegError as exc:
        print(f"gcnseg: error: {exc}", file=sys.stderr)
        return 2
    setup_logging(args.verbosity)
    try:
        check_outputs(args)
        return args.func(args)
    except GcnsegError as exc:
        print(f"gcnseg: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gcnseg: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
