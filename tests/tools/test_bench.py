"""Benchmarks: a quick real run in subprocesses, the command line, and the tables."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from gcnseg.cli import main
from gcnseg.errors import GcnsegError
from gcnseg.tools.bench import QUICK, Settings, runner
from gcnseg.tools.bench.runner import run_bench
from gcnseg.tools.bench.tables import markdown_table, text_table

BALLAST_MIB = 768
POSITIVE = ("fwd_gflops", "work_gflops", "img_per_s", "achieved_gflops_per_s", "peak_rss_mib")


def test_quick_run_measures_each_mode_in_its_own_process(tmp_path, capsys) -> None:
    # A big parent: getrusage's peak RSS would hand it down to the workers through fork + exec.
    ballast = np.ones(BALLAST_MIB * 2**20, dtype=np.uint8)
    # One thread: with other jobs on a 2-core machine, 2 OpenMP threads can be 100× slower.
    # 5 classes: labels are drawn in 0..4, so a worker building the pets' 3-class head fails
    settings = Settings(batch_size=2, threads=1, num_classes=5, refine="quarter", **QUICK)
    rows = run_bench(
        ["gcn_k1_efficientnet_lite0"],
        [64],
        ["infer-fp32", "train-fp32"],
        settings,
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
    assert saved["meta"]["num_classes"] == 5
    assert saved["meta"]["refine"] == "quarter"
    assert saved["meta"]["cpu"].startswith(saved["meta"]["cpu_features"]["model"])
    table = capsys.readouterr().out.splitlines()
    assert any("5 classes, decoder refine quarter" in line for line in table)
    header = next(i for i, line in enumerate(table) if line.startswith("| Model | Size | Mode |"))
    assert table[header + 1].startswith("|---|")
    assert [line.split(" | ")[2] for line in table[header + 2 :]] == ["infer-fp32", "train-fp32"]


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
        run_bench(["gcn_nope"], [64])
    with pytest.raises(GcnsegError, match="unknown mode"):
        run_bench(["gcn_k1_resnet18"], [64], modes=["fp64"])


def test_cli_profile_prints_top_ops_and_the_cpu(capsys) -> None:
    argv = ["bench", "--models", "gcn_k1_resnet18", "--sizes", "32", "--profile", "infer-fp32"]
    assert main([*argv, "--batch-size", "1", "--threads", "1", "--row-limit", "3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("gcn_k1_resnet18 32² infer-fp32, batch 1, 3 steps, 1 threads, ")
    assert "bf16" in out.splitlines()[0]  # the CPU description: native or emulated
    assert "Self CPU" in out


def test_cli_bench_errors_are_one_line(capsys) -> None:
    assert main(["bench", "--models", "gcn_nope", "--sizes", "64"]) == 2
    assert capsys.readouterr().err.strip() == (
        "gcnseg: error: unknown model(s) gcn_nope; see `gcnseg models`"
    )
    assert main(["bench", "--models", "gcn_k1_resnet18", "--num-classes", "0"]) == 2
    assert "num_classes" in capsys.readouterr().err
    with pytest.raises(GcnsegError, match="refine must be one of full, quarter"):
        Settings(refine="half")


@pytest.fixture
def no_workers(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """Records every configuration a worker would have been started for."""
    started: list[dict] = []
    monkeypatch.setattr(runner, "_run_worker", lambda spec: started.append(spec) or spec)
    return started


@pytest.mark.parametrize(
    ("flag", "value", "name"),
    [
        ("--batch-size", "0", "batch_size"),
        ("--sizes", "0", "sizes"),
        ("--repeats", "-1", "repeats"),
        ("--repeats", "0", "repeats"),
        ("--warmup", "-1", "warmup"),
        ("--threads", "0", "threads"),
    ],
)
def test_cli_bad_settings_are_one_line_before_any_benchmark(
    flag: str, value: str, name: str, no_workers: list[dict], capsys
) -> None:
    argv = ["bench", "--models", "gcn_k1_resnet18", "--modes", "infer-fp32", flag, value]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"gcnseg: error: {name} must be")
    assert no_workers == []


def test_cli_unwritable_json_is_refused_before_any_benchmark(
    tmp_path: Path, no_workers: list[dict], capsys
) -> None:
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    argv = ["bench", "--models", "gcn_k1_resnet18", "--modes", "infer-fp32", "--sizes", "32"]
    assert main([*argv, "--json", str(a_file / "bench.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot write the benchmark results" in err[0]
    assert no_workers == []


@pytest.mark.slow
def test_exported_engine_modes_time_each_engine(tmp_path) -> None:
    """onnx-int8 quantises its own export; openvino runs the ONNX file (when installed)."""
    pytest.importorskip("onnxruntime", reason="the [onnx] extra is not installed")
    modes = ["onnx", "onnx-int8"]
    try:
        import openvino  # noqa: F401

        modes.append("openvino")
    except ImportError:
        pass
    settings = Settings(batch_size=2, repeats=1, warmup=0, threads=1)
    rows = run_bench(["gcn_efficientnet_lite0"], [64], modes, settings)
    assert [r["mode"] for r in rows] == modes
    for row in rows:
        assert "error" not in row, row
        assert row["img_per_s"] > 0 and row["peak_rss_mib"] > 0
