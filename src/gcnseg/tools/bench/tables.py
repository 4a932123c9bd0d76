"""Benchmark rows as text or markdown tables, and the machine they were measured on."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import time
from typing import Any

import torch

from gcnseg.runtime import cpu_features

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
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx", "vnni")


def environment(settings: dict[str, Any]) -> dict[str, Any]:
    """What the numbers depend on, stored beside them."""
    features = cpu_features()
    return {
        "cpu": describe_cpu(features),
        "cpu_features": features,
        "cores": _cores(),
        "torch": torch.__version__,
        "onnxruntime": _version("onnxruntime"),
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        **settings,
    }


def describe_cpu(features: dict[str, str | bool] | None = None) -> str:
    """The CPU model and the flags that decide its speed: `AMD EPYC (avx2; bf16 emulated)`.

    bf16 rows are only comparable between CPUs that agree on native bf16 (10× apart otherwise).
    """
    features = features or cpu_features()
    flags = [flag for flag in CPU_FLAGS if features[flag]] or ["no avx2"]
    bf16 = "native bf16" if features["native_bf16"] else "bf16 emulated"
    return f"{features['model']} ({', '.join(flags)}; {bf16})"


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _cores() -> int | None:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def _cell(row: dict[str, Any], key: str) -> str:
    if "error" in row and key not in row:
        return "error" if key == "img_per_s" else "–"
    value = row.get(key)
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.0f}" if value >= 100 else f"{value:.1f}" if value >= 10 else f"{value:.2f}"
    return str(value)


def caption(meta: dict[str, Any]) -> str:
    """One line naming the machine and the settings of a table."""
    return (
        f"{meta['cpu']}, {meta['cores']} cores, {meta['threads'] or 'default'} thread(s), "
        f"torch {meta['torch']}, onnxruntime "
        f"{meta['onnxruntime']}; {meta.get('num_classes', '?')} classes, decoder refine "
        f"{meta.get('refine', '?')}; batch {meta['batch_size']} for img/s, medians of "
        f"{meta['repeats']} runs after {meta['warmup']} warm-up; GFLOPs = 2 × multiply-adds."
    )


def text_table(rows: list[dict[str, Any]]) -> str:
    cells = [[title for _, title in COLUMNS]]
    cells += [[_cell(row, key) for key, _ in COLUMNS] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines += [row_summary(row) for row in rows if "error" in row]
    return "\n".join(lines)


def markdown_table(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    header = "| " + " | ".join(title for _, title in COLUMNS) + " |"
    rule = "|" + "|".join("---" if i < 3 else "---:" for i in range(len(COLUMNS))) + "|"
    body = ["| " + " | ".join(_cell(row, key) for key, _ in COLUMNS) + " |" for row in rows]
    return "\n".join([caption(meta), "", header, rule, *body])


def row_summary(row: dict[str, Any]) -> str:
    """One configuration in one line: the progress line, and how an error is shown."""
    name = f"{row['model']} {row['size']} {row['mode']}"
    if "error" in row:
        return f"{name}: error: {row['error']}"
    return f"{name}: {row['img_per_s']:.2f} img/s, peak RSS {row['peak_rss_mib']:.0f} MiB"
