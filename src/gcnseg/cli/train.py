"""`gcnseg init` and `gcnseg train`: a starter config for a dataset; a shipped or YAML config,
changed by flags and --set, trained or resumed."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from gcnseg.cli.arguments import DEVICES, check_outputs, positive_int
from gcnseg.errors import GcnsegError

if TYPE_CHECKING:
    from gcnseg.config import Config


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    init = subparsers.add_parser(
        "init", help="write a training config for a dataset: the measured recipe, fitted to it"
    )
    init.add_argument("data", type=Path, help="dataset folder")
    init.add_argument("--out", type=Path, default=Path("gcnseg.yaml"), help="default: gcnseg.yaml")
    init.add_argument("--force", action="store_true", help="replace an existing --out")
    init.set_defaults(func=run)
    train = subparsers.add_parser("train", help="train a model (YAML config + overrides)")
    train.add_argument("--config", help="shipped config name or YAML path (default: pets_default)")
    train.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE"
    )
    train.add_argument(
        "--data", help="dataset folder (data.root); needed unless the config sets it"
    )
    train.add_argument("--manifest", help="split manifest JSON (data.manifest)")
    train.add_argument("--model", help="model name (model.name); see `gcnseg models`")
    train.add_argument("--epochs", type=int)
    train.add_argument("--device", choices=DEVICES)
    train.add_argument("--amp", choices=["auto", "none", "bf16", "fp16"])
    train.add_argument("--output", help="folder holding run folders (train.output)")
    train.add_argument("--name", help="run folder name (train.name)")
    train.add_argument("--backbone-weights", help="imagenet | random | PATH | URL")
    train.add_argument(
        "--init",
        metavar="MODEL",
        help="start from a segmentation model: pets-default, a run folder or a checkpoint "
        "(model.init; its model is the run's, class-shaped layers restart when the class "
        "count differs)",
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
    train.set_defaults(func=run)


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


def run(args: argparse.Namespace) -> int:
    return _init(args) if args.command == "init" else _train(args)


def _init(args: argparse.Namespace) -> int:
    from gcnseg.config import starter_config
    from gcnseg.data.layouts import index_dataset
    from gcnseg.data.sizes import fitted_sizes
    from gcnseg.io.atomic import write_text

    check_outputs((args.out, "the config", False))
    if args.out.exists() and not args.force:
        raise GcnsegError(f"{args.out}: already exists; pass --force to replace it")
    index = index_dataset(args.data)
    sizes = fitted_sizes(index)
    config = starter_config(
        index.root.resolve(), index.classes, len(index.samples), sizes, index.layout
    )
    write_text(args.out, config)
    print(
        f"wrote {args.out} ({len(index.samples)} pairs, classes {', '.join(index.classes.names)})"
    )
    print(f"next: gcnseg train --config {args.out}")
    return 0


def _train(args: argparse.Namespace) -> int:
    if args.nproc > 1:
        from gcnseg.training.launch import launch_torchrun

        return launch_torchrun(args.nproc, sys.argv[1:])
    from gcnseg.config import DEFAULT_CONFIG, load_config
    from gcnseg.training.checkpoints import load_resume
    from gcnseg.training.loop import train

    overrides = train_overrides(args)
    if args.resume:  # the run's own config, changed only by explicit --set / flags
        if args.config is not None:
            raise GcnsegError(
                "--config cannot be combined with --resume: a resumed run keeps its saved "
                "config; change single settings with --set"
            )
        if args.print_config:
            return _print_config(load_resume(args.resume, overrides)[1])
        run_dir = train(
            None, resume=args.resume, resume_overrides=overrides, overwrite=args.overwrite
        )
    else:
        from gcnseg.training.init import follow_init_model

        config = follow_init_model(load_config(args.config or DEFAULT_CONFIG, overrides), overrides)
        if args.print_config:
            return _print_config(config)
        run_dir = train(config, overwrite=args.overwrite)
    if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 speaks for the job
        print(f"run folder: {run_dir}")
    return 0


def _print_config(config: Config) -> int:
    import yaml

    print(yaml.safe_dump(config.to_dict(), sort_keys=False), end="")
    return 0
