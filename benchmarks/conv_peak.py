"""The dense-convolution peak of this CPU: one large 3×3 convolution, fp32 and bf16.

GCN-ResNet50's training is compared with this peak (`gcnseg bench` reports the model's achieved
GFLOP/s, counting a training step as 3× the forward FLOPs). Usage:

    .venv/bin/python benchmarks/conv_peak.py --threads 2 --json benchmarks/results/conv_peak.json
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F

from gcnseg.io.atomic import write_text
from gcnseg.runtime import cpu_features


def best_seconds(fn, repeats: int) -> float:
    fn()
    fn()  # warm-up: oneDNN builds its kernels on the first calls
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def peak(dtype: torch.dtype, batch: int, channels: int, size: int, repeats: int) -> dict:
    x = torch.randn(batch, channels, size, size).to(dtype, memory_format=torch.channels_last)
    w = torch.randn(channels, channels, 3, 3).to(dtype, memory_format=torch.channels_last)
    x.requires_grad_()
    w.requires_grad_()
    flops = 2 * batch * channels * channels * 9 * size * size
    forward = best_seconds(lambda: F.conv2d(x, w, padding=1), repeats)
    grad = torch.randn(batch, channels, size, size).to(dtype, memory_format=torch.channels_last)

    def step() -> None:
        F.conv2d(x, w, padding=1).backward(grad)

    train = best_seconds(step, repeats)
    return {
        "dtype": str(dtype).removeprefix("torch."),
        "shape": f"{batch}x{channels}x{size}x{size}, 3x3, {channels} out",
        "forward_gflops_per_s": flops / forward / 1e9,
        "train_gflops_per_s": 3 * flops / train / 1e9,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--channels", type=int, default=256)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    features = cpu_features()
    rows = [
        peak(dtype, args.batch, args.channels, args.size, args.repeats)
        for dtype in (torch.float32, torch.bfloat16)
    ]
    for row in rows:
        print(
            f"{row['dtype']:>8}  {row['shape']}: forward {row['forward_gflops_per_s']:.0f} GFLOP/s, "
            f"forward + backward {row['train_gflops_per_s']:.0f} GFLOP/s"
        )
    print(f"CPU: {features['model']}, {args.threads} threads")
    if args.json:
        payload = {"cpu_features": features, "threads": args.threads, "rows": rows}
        write_text(args.json, json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
