"""Benchmarks: a quick real run in subprocesses, FLOP counting, and the tables."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from torch import nn

from gcnseg.errors import GcnsegError
from gcnseg.tools.bench import QUICK, count_gflops, markdown_table, run_bench, text_table

BALLAST_MIB = 768
POSITIVE = ("fwd_gflops", "work_gflops", "img_per_s", "achieved_gflops_per_s", "peak_rss_mib")


def test_quick_run_measures_each_mode_in_its_own_process(tmp_path, capsys) -> None:
    # A big parent: getrusage's peak RSS would hand it down to the workers through fork + exec.
    ballast = np.ones(BALLAST_MIB * 2**20, dtype=np.uint8)
    # One thread: with other jobs on a 2-core machine, 2 OpenMP threads can be 100× slower.
    rows = run_bench(
        ["gcn_k1_efficientnet_lite0"],
        [64],
        modes=["infer-fp32", "train-fp32"],
        **QUICK,
        batch_size=2,
        threads=1,
        json_out=tmp_path / "bench.json",
        markdown=True,
    )
    infer, train = rows
    assert (infer["mode"], train["mode"]) == ("infer-fp32", "train-fp32")
    for row in rows:
        assert "error" not in row, row.get("error")
        for key in POSITIVE:
            assert math.isfinite(row[key]) and row[key] > 0, (row["mode"], key, row[key])
        assert row["threads"] == 1
        assert row["peak_rss_mib"] < BALLAST_MIB, "the worker reported its parent's memory"
    assert ballast[-1] == 1
    assert 0 < infer["latency_p50_ms"] <= infer["latency_p95_ms"]
    assert train["latency_p50_ms"] is None
    # Backward costs about twice the forward; torch's own counter says ~40× for depthwise convs.
    assert 2.5 < train["work_gflops"] / train["fwd_gflops"] < 3.5

    saved = json.loads((tmp_path / "bench.json").read_text())
    assert saved["results"] == rows
    assert saved["meta"]["repeats"] == QUICK["repeats"]
    table = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(table) if line.startswith("| Model | Size | Mode |"))
    assert table[header + 1].startswith("|---|")
    assert [line.split(" | ")[2] for line in table[header + 2 :]] == ["infer-fp32", "train-fp32"]


def test_grouped_conv_backward_costs_two_forwards() -> None:
    depthwise = nn.Conv2d(32, 32, 3, padding=1, groups=32)
    model = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), depthwise)
    # multiply-adds per pixel: 3·32·9 dense + 32·9 depthwise; ×2 for FLOPs, 8×8 pixels
    forward = 2 * 64 * (3 * 32 * 9 + 32 * 9) / 1e9
    assert count_gflops(model, 8, train=False) == pytest.approx(forward)
    # the input needs no gradient: the first conv pays grad_weight only, the depthwise both
    backward = 2 * 64 * (3 * 32 * 9 + 2 * 32 * 9) / 1e9
    assert count_gflops(model, 8, train=True) == pytest.approx(forward + backward)


def test_tables_show_failed_configurations() -> None:
    ok = {
        "model": "m",
        "size": 64,
        "mode": "onnx",
        "fwd_gflops": 0.0646,
        "img_per_s": 635.2,
        "latency_p50_ms": 2.58,
        "latency_p95_ms": 2.67,
        "achieved_gflops_per_s": 41.04,
        "peak_rss_mib": 481.3,
        "load_avg_1m": 0.5,
    }
    failed = {"model": "m", "size": 64, "mode": "infer-bf16", "error": "RuntimeError: no bf16"}
    meta = {k: "x" for k in ("cpu", "cores", "threads", "torch", "onnxruntime", "batch_size")}
    markdown = markdown_table([ok, failed], meta | {"repeats": 3, "warmup": 1}).splitlines()
    assert markdown[-2] == "| m | 64 | onnx | 0.06 | 635 | 2.58 | 2.67 | 41.0 | 481 | 0.50 |"
    assert markdown[-1] == "| m | 64 | infer-bf16 | – | error | – | – | – | – | – |"
    assert text_table([ok, failed]).endswith("m 64 infer-bf16: error: RuntimeError: no bf16")


def test_unknown_names_fail_before_any_work() -> None:
    with pytest.raises(GcnsegError, match="unknown model"):
        run_bench(["gcn_nope"], [64], repeats=1, warmup=0, batch_size=1, json_out=None)
    with pytest.raises(GcnsegError, match="unknown mode"):
        run_bench(["gcn_k1_resnet18"], [64], modes=["fp64"], json_out=None)
