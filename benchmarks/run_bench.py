"""Benchmark GCN models here: `python benchmarks/run_bench.py --sizes 256 512 --markdown`.

The same as `gcnseg bench` (same options, defined in gcnseg.cli.bench); see --help.
"""

from __future__ import annotations

import sys

from gcnseg.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
