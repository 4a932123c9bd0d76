"""One benchmark configuration in a fresh process: `python -m gcnseg.tools.bench.worker SPEC`.

SPEC is one JSON object from the runner (model, size, mode, batch_size, repeats, warmup, threads,
num_classes, and onnx_path for the ONNX mode); the result is printed as one JSON line after
RESULT_PREFIX. A fresh process because peak RSS is a process-wide high-water mark.
"""

from __future__ import annotations

import json
import math
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gcnseg.errors import GcnsegError
from gcnseg.models.summary import count_gflops
from gcnseg.runtime import autocast
from gcnseg.tools.bench import MODES, PET_CLASSES, Mode, Settings

RESULT_PREFIX = "GCNSEG_BENCH_RESULT "
CPU = torch.device("cpu")


def build_model(name: str, num_classes: int, refine: str) -> nn.Module:
    """Random weights: speed does not depend on them, and most backbones have none offline."""
    from gcnseg.models import create_model

    return create_model(name, num_classes=num_classes, backbone_weights="random", refine=refine)


def run_worker(spec: dict[str, Any]) -> dict[str, Any]:
    if spec["threads"]:
        torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    mode, size, batch = MODES[spec["mode"]], spec["size"], spec["batch_size"]
    num_classes = spec["num_classes"]
    load = os.getloadavg()[0]
    if mode.onnx:
        throughput, latency = _time_onnx(spec, size, batch)
    else:
        model = build_model(spec["model"], num_classes, spec["refine"])
        throughput, latency = _time_torch(model, mode, spec, num_classes)
    peak_rss = _peak_rss_mib()  # before FLOP counting, which allocates its own tensors
    model = build_model(spec["model"], num_classes, spec["refine"])
    fwd_gflops = count_gflops(model, size, train=False)
    work = count_gflops(model, size, train=True) if mode.train else fwd_gflops
    img_per_s = batch / float(np.median(throughput))
    return {
        "model": spec["model"],
        "size": size,
        "mode": spec["mode"],
        "batch_size": batch,
        "threads": torch.get_num_threads(),
        "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
        "fwd_gflops": fwd_gflops,
        "work_gflops": work,
        "img_per_s": img_per_s,
        "batch_ms_p50": 1000 * float(np.median(throughput)),
        "latency_p50_ms": _percentile_ms(latency, 50),
        "latency_p95_ms": _percentile_ms(latency, 95),
        "achieved_gflops_per_s": work * img_per_s,
        "peak_rss_mib": peak_rss,
        "load_avg_1m": load,
    }


def _time_torch(
    model: nn.Module, mode: Mode, spec: dict[str, Any], num_classes: int
) -> tuple[list[float], list[float] | None]:
    size, batch = spec["size"], spec["batch_size"]
    step = torch_step(model, mode, size, batch, num_classes)
    throughput = timed(step, spec["warmup"], spec["repeats"])
    if mode.train:
        return throughput, None
    if batch == 1:
        return throughput, throughput
    single = torch_step(model, mode, size, 1, num_classes)
    return throughput, timed(single, spec["warmup"], spec["repeats"])


def _time_onnx(spec: dict[str, Any], size: int, batch: int) -> tuple[list[float], list[float]]:
    from gcnseg.inference.engines import OnnxEngine, OpenVinoEngine

    threads = spec["threads"] or torch.get_num_threads()
    if MODES[spec["mode"]].engine.startswith("openvino"):
        engine = OpenVinoEngine(Path(spec["onnx_path"]), threads=threads)
    else:
        engine = OnnxEngine(spec["onnx_path"], threads=threads)
    images = torch.rand(batch, 3, size, size)
    throughput = timed(lambda: engine(images), spec["warmup"], spec["repeats"])
    if batch == 1:
        return throughput, throughput
    single = images[:1].clone()
    return throughput, timed(lambda: engine(single), spec["warmup"], spec["repeats"])


def torch_step(
    model: nn.Module, mode: Mode, size: int, batch: int, num_classes: int = PET_CLASSES
) -> Callable[[], object]:
    """One training step (forward, CE loss, backward, AdamW) or one inference forward."""
    memory_format = torch.channels_last if mode.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format).train(mode.train)
    images = torch.rand(batch, 3, size, size).contiguous(memory_format=memory_format)
    amp = "bf16" if mode.bf16 else "none"
    if not mode.train:

        def infer() -> torch.Tensor:
            with torch.inference_mode(), autocast(CPU, amp):
                return model(images)

        return infer

    labels = torch.randint(0, num_classes, (batch, size, size))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def train_step() -> torch.Tensor:
        with autocast(CPU, amp):
            loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss

    return train_step


def timed(fn: Callable[[], object], warmup: int, repeats: int) -> list[float]:
    """Seconds per call, after `warmup` untimed calls (allocator, oneDNN primitive caches)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def _percentile_ms(samples: list[float] | None, q: float) -> float | None:
    return None if samples is None else 1000 * float(np.percentile(samples, q))


def _peak_rss_mib() -> float:
    """This process image's peak RSS.

    On Linux, getrusage's ru_maxrss survives fork + exec: a worker would report at least its
    parent's peak (and the parent builds and exports models). VmHWM starts afresh at exec.
    """
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**10  # kB
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, else KiB


def profile_model(
    model_name: str,
    size: int,
    mode: str = "infer-fp32",
    settings: Settings | None = None,
    *,
    steps: int = 3,
    row_limit: int = 20,
    group_by_shape: bool = False,
) -> str:
    """The top ops by self CPU time (torch.profiler) over `steps` steps: where the time goes."""
    from torch.profiler import ProfilerActivity, profile

    from gcnseg.tools.bench.tables import describe_cpu

    if mode not in MODES or MODES[mode].onnx:
        raise GcnsegError(f"cannot profile mode {mode!r}; choose one of the torch modes")
    settings = settings or Settings(batch_size=1)
    if settings.threads:
        torch.set_num_threads(settings.threads)
    torch.manual_seed(0)
    model = build_model(model_name, settings.num_classes, settings.refine)
    step = torch_step(model, MODES[mode], size, settings.batch_size, settings.num_classes)
    step()  # warm-up outside the trace
    with profile(activities=[ProfilerActivity.CPU], record_shapes=group_by_shape) as prof:
        for _ in range(steps):
            step()
    table = prof.key_averages(group_by_input_shape=group_by_shape).table(
        sort_by="self_cpu_time_total", row_limit=row_limit
    )
    title = f"{model_name} {size}² {mode}, batch {settings.batch_size}, {steps} steps, "
    return title + f"{torch.get_num_threads()} threads, {describe_cpu()}\n{table}"


def main(argv: list[str]) -> None:
    """The subprocess entry: one JSON spec in argv, one result line out."""
    (spec,) = argv
    result = run_worker(json.loads(spec))
    if not all(math.isfinite(v) for v in result.values() if isinstance(v, float)):
        raise SystemExit(f"non-finite measurement: {result}")
    print(RESULT_PREFIX + json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
