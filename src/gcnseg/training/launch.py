"""`gcnseg train --nproc N`: hand the same command to torchrun, PyTorch's own launcher."""

from __future__ import annotations

import subprocess
import sys


def launch_torchrun(nproc: int, cli_args: list[str]) -> int:
    """Re-run `gcnseg <cli_args>` under torchrun with N local processes (minus --nproc)."""
    args = []
    skip = False
    for arg in cli_args:
        if skip:
            skip = False
            continue
        if arg == "--nproc":
            skip = True
            continue
        if arg.startswith("--nproc="):
            continue
        args.append(arg)
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc_per_node={nproc}", "-m", "gcnseg", *args,
    ]  # fmt: skip
    return subprocess.call(command)
