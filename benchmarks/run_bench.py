"""Benchmark GCN models here: `python benchmarks/run_bench.py --sizes 256 512 --markdown`.

A thin wrapper over `gcnseg.tools.bench` (the same options as `gcnseg bench`); see --help.
"""

from __future__ import annotations

import argparse
import sys

from gcnseg.errors import GcnsegError
from gcnseg.tools.bench import add_bench_arguments, bench_from_args


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_bench_arguments(parser)
    try:
        return bench_from_args(parser.parse_args())
    except GcnsegError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
