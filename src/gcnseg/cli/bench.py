"""`gcnseg bench`: GFLOPs, throughput, latency and peak memory, or a torch.profiler op table."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from gcnseg.limits import REFINE_DEFAULT, REFINE_MODES
    from gcnseg.tools.bench import DEFAULT_MODELS, MODES, PET_CLASSES, TORCH_MODES

    bench = subparsers.add_parser("bench", help="measure GFLOPs, img/s, latency and peak memory")
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
    bench.add_argument(
        "--refine",
        choices=REFINE_MODES,
        default=REFINE_DEFAULT,
        help="where the decoder's last refinements run (model.refine; default %(default)s)",
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
    bench.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gcnseg.tools.bench.runner import bench_or_profile

    options = ("modes", "batch_size", "repeats", "warmup", "quick", "threads", "num_classes")
    options += ("refine", "json_out", "markdown", "profile", "row_limit")
    return bench_or_profile(args.models, args.sizes, **{k: getattr(args, k) for k in options})
