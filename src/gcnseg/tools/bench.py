"""Speed and memory benchmarks: FLOPs, training and inference throughput, latency, peak RSS.

Every model × size × mode runs in its own subprocess (`python -m gcnseg.tools.bench --worker
JSON`): peak RSS is a process-wide high-water mark, so sharing a process would report the largest
configuration's memory for all of them. Timings are medians over repeats after warm-up runs.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gcnseg.data.oxford_pets import PETS
from gcnseg.errors import GcnsegError
from gcnseg.io.atomic import write_json

NUM_CLASSES = len(PETS.names)
RESULT_PREFIX = "GCNSEG_BENCH_RESULT "
QUICK = {"warmup": 1, "repeats": 3}
DEFAULT_MODELS = (
    "gcn_efficientnet_lite0",
    "gcn_k1_efficientnet_lite0",
    "gcn_resnet50",
    "gcn_k1_resnet50",
)


@dataclass(frozen=True)
class Mode:
    """How one configuration runs: a training step or inference, memory format and precision."""

    train: bool = False
    channels_last: bool = False
    bf16: bool = False
    onnx: bool = False


MODES = {
    "train-fp32": Mode(train=True),
    "train-cl": Mode(train=True, channels_last=True),
    "train-bf16": Mode(train=True, channels_last=True, bf16=True),
    "infer-fp32": Mode(),
    "infer-cl": Mode(channels_last=True),
    "infer-bf16": Mode(channels_last=True, bf16=True),
    "onnx": Mode(onnx=True),
}


# --- the parent: one subprocess per configuration, then tables -------------------------------


def run_bench(
    models: Sequence[str],
    sizes: Sequence[int],
    *,
    modes: Sequence[str] = tuple(MODES),
    repeats: int = 10,
    warmup: int = 2,
    batch_size: int = 4,
    threads: int | None = None,
    json_out: Path | None = None,
    markdown: bool = False,
) -> list[dict[str, Any]]:
    """Benchmark every size × model × mode; print a table (markdown if asked) and return the rows.

    Progress goes to stderr and the table to stdout, so `> bench.md` captures just the table.
    `json_out` is rewritten after every configuration: a long run cut short keeps what it measured.
    """
    _check_names(models, modes)
    settings = {"repeats": repeats, "warmup": warmup, "batch_size": batch_size, "threads": threads}
    configs = [(m, s, mode) for s in sizes for m in models for mode in modes]
    meta = environment(settings)
    rows = []
    with tempfile.TemporaryDirectory(prefix="gcnseg-bench-") as tmp:
        exports: dict[str, str] = {}
        for i, (model, size, mode) in enumerate(configs, 1):
            spec = {"model": model, "size": size, "mode": mode, **settings}
            onnx = MODES[mode].onnx
            rows.append(_run_onnx(spec, exports, Path(tmp)) if onnx else _run_worker(spec))
            print(f"[{i}/{len(configs)}] {_summary(rows[-1])}", file=sys.stderr, flush=True)
            if json_out is not None:
                write_json(json_out, {"meta": meta, "results": rows})
    print(markdown_table(rows, meta) if markdown else text_table(rows))
    return rows


def _check_names(models: Sequence[str], modes: Sequence[str]) -> None:
    from gcnseg.models import list_models

    unknown_models = sorted(set(models) - set(list_models()))
    if unknown_models:
        raise GcnsegError(f"unknown model(s) {', '.join(unknown_models)}; see `gcnseg models`")
    unknown_modes = sorted(set(modes) - set(MODES))
    if unknown_modes:
        raise GcnsegError(f"unknown mode(s) {', '.join(unknown_modes)}; known: {', '.join(MODES)}")


def _run_onnx(spec: dict[str, Any], exports: dict[str, str], folder: Path) -> dict[str, Any]:
    """Export in the parent (once per model), so the worker's peak RSS is ONNX Runtime's alone."""
    from gcnseg.inference.export import export_onnx

    name = spec["model"]
    if name not in exports:
        path = folder / f"{name}.onnx"
        try:
            export_onnx(build_model(name), path, classes=PETS, model_name=name)
        except GcnsegError as exc:  # e.g. onnx not installed: the torch rows still count
            return _error_row(spec, str(exc))
        exports[name] = str(path)
    return _run_worker(spec | {"onnx_path": exports[name]})


def _run_worker(spec: dict[str, Any]) -> dict[str, Any]:
    command = [sys.executable, "-m", "gcnseg.tools.bench", "--worker", json.dumps(spec)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    return _error_row(spec, lines[-1] if lines else f"worker exited with {done.returncode}")


def _error_row(spec: dict[str, Any], error: str) -> dict[str, Any]:
    return {k: spec[k] for k in ("model", "size", "mode", "batch_size")} | {"error": error}


def environment(settings: dict[str, Any]) -> dict[str, Any]:
    """What the numbers depend on, stored beside them."""
    return {
        "cpu": _cpu_name(),
        "cores": _cores(),
        "torch": torch.__version__,
        "onnxruntime": _version("onnxruntime"),
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        **settings,
    }


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _cores() -> int | None:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def _cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


# --- tables ------------------------------------------------------------------------------------

COLUMNS = (
    ("model", "Model"),
    ("size", "Size"),
    ("mode", "Mode"),
    ("fwd_gflops", "GFLOPs/img (fwd)"),
    ("img_per_s", "img/s"),
    ("latency_p50_ms", "p50 ms (b=1)"),
    ("latency_p95_ms", "p95 ms (b=1)"),
    ("achieved_gflops_per_s", "GFLOP/s"),
    ("peak_rss_mib", "Peak RSS MiB"),
    ("load_avg_1m", "Load 1 min"),  # other jobs on the machine: how far to trust the row
)


def _cell(row: dict[str, Any], key: str) -> str:
    if "error" in row and key not in row:
        return "error" if key == "img_per_s" else "–"
    value = row.get(key)
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.0f}" if value >= 100 else f"{value:.1f}" if value >= 10 else f"{value:.2f}"
    return str(value)


def text_table(rows: list[dict[str, Any]]) -> str:
    cells = [[title for _, title in COLUMNS]]
    cells += [[_cell(row, key) for key, _ in COLUMNS] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines += [_summary(row) for row in rows if "error" in row]
    return "\n".join(lines)


def markdown_table(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    caption = (
        f"{meta['cpu']}, {meta['cores']} cores, {meta['threads'] or 'default'} thread(s), "
        f"torch {meta['torch']}, onnxruntime "
        f"{meta['onnxruntime']}; batch {meta['batch_size']} for img/s, medians of "
        f"{meta['repeats']} runs after {meta['warmup']} warm-up; GFLOPs = 2 × multiply-adds."
    )
    header = "| " + " | ".join(title for _, title in COLUMNS) + " |"
    rule = "|" + "|".join("---" if i < 3 else "---:" for i in range(len(COLUMNS))) + "|"
    body = ["| " + " | ".join(_cell(row, key) for key, _ in COLUMNS) + " |" for row in rows]
    return "\n".join([caption, "", header, rule, *body])


def _summary(row: dict[str, Any]) -> str:
    name = f"{row['model']} {row['size']} {row['mode']}"
    if "error" in row:
        return f"{name}: error: {row['error']}"
    return f"{name}: {row['img_per_s']:.2f} img/s, peak RSS {row['peak_rss_mib']:.0f} MiB"


# --- the worker: one configuration in a fresh process ------------------------------------------


def build_model(name: str) -> nn.Module:
    """Random weights: speed does not depend on them, and most backbones have none offline."""
    from gcnseg.models import create_model

    return create_model(name, num_classes=NUM_CLASSES, backbone_weights="random")


def run_worker(spec: dict[str, Any]) -> dict[str, Any]:
    if spec["threads"]:
        torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    mode, size, batch = MODES[spec["mode"]], spec["size"], spec["batch_size"]
    load = os.getloadavg()[0]
    if mode.onnx:
        throughput, latency = _time_onnx(spec, size, batch)
    else:
        throughput, latency = _time_torch(build_model(spec["model"]), mode, spec, size, batch)
    peak_rss = _peak_rss_mib()  # before FLOP counting, which allocates its own tensors
    model = build_model(spec["model"])
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
    model: nn.Module, mode: Mode, spec: dict[str, Any], size: int, batch: int
) -> tuple[list[float], list[float] | None]:
    step = torch_step(model, mode, size, batch)
    throughput = timed(step, spec["warmup"], spec["repeats"])
    if mode.train:
        return throughput, None
    if batch == 1:
        return throughput, throughput
    return throughput, timed(torch_step(model, mode, size, 1), spec["warmup"], spec["repeats"])


def _time_onnx(spec: dict[str, Any], size: int, batch: int) -> tuple[list[float], list[float]]:
    from gcnseg.inference.onnx_runtime import OnnxSegmenter

    segmenter = OnnxSegmenter(spec["onnx_path"], threads=spec["threads"] or torch.get_num_threads())
    images = torch.rand(batch, 3, size, size)
    throughput = timed(lambda: segmenter(images), spec["warmup"], spec["repeats"])
    if batch == 1:
        return throughput, throughput
    single = images[:1].clone()
    return throughput, timed(lambda: segmenter(single), spec["warmup"], spec["repeats"])


def torch_step(model: nn.Module, mode: Mode, size: int, batch: int) -> Callable[[], object]:
    """One training step (forward, CE loss, backward, AdamW) or one inference forward."""
    memory_format = torch.channels_last if mode.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format).train(mode.train)
    images = torch.rand(batch, 3, size, size).contiguous(memory_format=memory_format)
    if not mode.train:

        def infer() -> torch.Tensor:
            with torch.inference_mode(), _autocast(mode.bf16):
                return model(images)

        return infer

    labels = torch.randint(0, NUM_CLASSES, (batch, size, size))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def train_step() -> torch.Tensor:
        with _autocast(mode.bf16):
            loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss

    return train_step


def _autocast(bf16: bool) -> contextlib.AbstractContextManager:
    return torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


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


def count_gflops(model: nn.Module, size: int, *, train: bool) -> float:
    """GFLOPs per image (2 × multiply-adds) of a forward, or of forward + backward when training."""
    from torch.utils.flop_counter import FlopCounterMode

    model = model.to(memory_format=torch.contiguous_format).train(train)
    images = torch.rand(1, 3, size, size)
    counter = FlopCounterMode(
        display=False, custom_mapping={torch.ops.aten.convolution_backward: _conv_backward_flops}
    )
    with counter:
        if train:
            labels = torch.zeros(1, size, size, dtype=torch.long)
            F.cross_entropy(model(images), labels).backward()
        else:
            with torch.no_grad():
                model(images)
    return counter.get_total_flops() / 1e9


def _conv_backward_flops(
    grad_out_shape: list[int],
    x_shape: list[int],
    w_shape: list[int],
    _bias: Any,
    _stride: Any,
    _padding: Any,
    _dilation: Any,
    transposed: bool,
    _output_padding: Any,
    _groups: int,
    output_mask: list[bool],
    **_kwargs: Any,
) -> int:
    """Each requested gradient costs one forward's multiply-adds.

    torch's own formula prices grad_weight of a grouped conv as if dense (×C for a depthwise conv,
    pytorch/pytorch#183405), which made EfficientNet's training FLOPs ~40× too high.
    """
    from torch.utils.flop_counter import conv_flop_count

    forward = conv_flop_count(x_shape, w_shape, grad_out_shape, transposed)
    return forward * (int(output_mask[0]) + int(output_mask[1]))


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


# --- profiling ---------------------------------------------------------------------------------


def profile_model(
    model_name: str,
    size: int,
    *,
    mode: str = "infer-fp32",
    batch_size: int = 1,
    steps: int = 3,
    threads: int | None = None,
    row_limit: int = 20,
    group_by_shape: bool = False,
) -> str:
    """The top ops by self CPU time (torch.profiler) over `steps` steps: where the time goes."""
    from torch.profiler import ProfilerActivity, profile

    if mode not in MODES or MODES[mode].onnx:
        raise GcnsegError(f"cannot profile mode {mode!r}; choose one of the torch modes")
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    step = torch_step(build_model(model_name), MODES[mode], size, batch_size)
    step()  # warm-up outside the trace
    with profile(activities=[ProfilerActivity.CPU], record_shapes=group_by_shape) as prof:
        for _ in range(steps):
            step()
    table = prof.key_averages(group_by_input_shape=group_by_shape).table(
        sort_by="self_cpu_time_total", row_limit=row_limit
    )
    title = f"{model_name} {size}² {mode}, batch {batch_size}, {steps} steps, "
    return title + f"{torch.get_num_threads()} threads\n{table}"


# --- command line ------------------------------------------------------------------------------


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `gcnseg bench` and benchmarks/run_bench.py."""
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), metavar="MODEL")
    parser.add_argument("--sizes", nargs="+", type=int, default=[512], metavar="SIZE")
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument("--batch-size", type=int, default=4, help="for img/s (latency: batch 1)")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="1 warm-up run and 3 repeats")
    parser.add_argument("--threads", type=int, default=None, help="default: torch's default")
    parser.add_argument("--json", type=Path, default=None, help="write results and environment")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    parser.add_argument(
        "--profile",
        choices=[m for m in MODES if not MODES[m].onnx],
        default=None,
        help="instead of benchmarking, print the top ops of this mode (torch.profiler)",
    )
    parser.add_argument("--row-limit", type=int, default=20, help="ops shown by --profile")


def bench_from_args(args: argparse.Namespace) -> int:
    quick = QUICK if args.quick else {"repeats": args.repeats, "warmup": args.warmup}
    if args.profile:
        for model in args.models:
            for size in args.sizes:
                table = profile_model(
                    model,
                    size,
                    mode=args.profile,
                    batch_size=args.batch_size,
                    threads=args.threads,
                    row_limit=args.row_limit,
                )
                print(table)
        return 0
    rows = run_bench(
        args.models,
        args.sizes,
        modes=args.modes,
        **quick,
        batch_size=args.batch_size,
        threads=args.threads,
        json_out=args.json,
        markdown=args.markdown,
    )
    return 1 if any("error" in row for row in rows) else 0


def _worker_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description="one benchmark configuration (internal)")
    parser.add_argument("--worker", required=True, help="JSON spec from run_bench")
    result = run_worker(json.loads(parser.parse_args(argv).worker))
    if not all(math.isfinite(v) for v in result.values() if isinstance(v, float)):
        raise SystemExit(f"non-finite measurement: {result}")
    print(RESULT_PREFIX + json.dumps(result), flush=True)


if __name__ == "__main__":
    _worker_main(sys.argv[1:])
