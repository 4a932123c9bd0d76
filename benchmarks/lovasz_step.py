"""What a Lovász-softmax term (Berman et al., 2018, arXiv 1705.08790) would add to a CamVid
training step: forward and backward of the loss on camvid_default's batch (8 crops of 352², 11
classes). Its cost is one sort of every pixel's error per class. gcnseg does not ship the loss;
this measured why (benchmarks/README.md, "CamVid"). Usage, on an idle machine:

    .venv/bin/python benchmarks/lovasz_step.py --threads 2
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F


def lovasz_softmax(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over the classes present of the Lovász extension of 1 - IoU (all labels valid)."""
    probs = logits.softmax(dim=1).permute(0, 2, 3, 1).reshape(-1, logits.shape[1])
    fg = F.one_hot(target.reshape(-1), logits.shape[1]).to(probs.dtype)
    errors, order = (fg - probs).abs().sort(dim=0, descending=True)
    fg_sorted = fg.gather(0, order)
    total = fg_sorted.sum(0)
    jaccard = 1 - (total - fg_sorted.cumsum(0)) / (total + (1 - fg_sorted).cumsum(0))
    grad = torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]])
    return (errors * grad).sum(0)[total > 0].mean()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    logits = torch.randn(8, 11, 352, 352, requires_grad=True)
    target = torch.randint(0, 11, (8, 352, 352))
    seconds = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        lovasz_softmax(logits, target).backward()
        seconds.append(time.perf_counter() - start)
    shown = ", ".join(f"{s:.2f}" for s in seconds)
    print(
        f"{args.threads} threads: {shown} s per step (median {sorted(seconds)[len(seconds) // 2]:.2f})"
    )


if __name__ == "__main__":
    main()
