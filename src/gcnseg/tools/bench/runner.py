"""What `gcnseg bench` does: plan the configurations, run each in a worker process, print a table.

Every model × size × mode runs in its own subprocess (gcnseg.tools.bench.worker): peak RSS is a
process-wide high-water mark, so sharing a process would report the largest configuration's
memory for all of them. Timings are medians over repeats after warm-up runs.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from gcnseg.classes import ClassSet
from gcnseg.errors import GcnsegError
from gcnseg.io.atomic import ensure_writable, write_json
from gcnseg.limits import REFINE_DEFAULT
from gcnseg.tools.bench import MODES, PET_CLASSES, QUICK, Settings, check_sizes
from gcnseg.tools.bench.tables import caption, environment, markdown_table, row_summary, text_table
from gcnseg.tools.bench.worker import RESULT_PREFIX, build_model, profile_model


def bench_or_profile(
    models: Sequence[str],
    sizes: Sequence[int],
    *,
    modes: Sequence[str] = tuple(MODES),
    batch_size: int = 4,
    repeats: int = 10,
    warmup: int = 2,
    quick: bool = False,
    threads: int | None = None,
    num_classes: int = PET_CLASSES,
    refine: str = REFINE_DEFAULT,
    json_out: Path | None = None,
    markdown: bool = False,
    profile: str | None = None,
    row_limit: int = 20,
) -> int:
    """`gcnseg bench`: benchmark (or profile the mode `profile` names); return an exit status.

    `quick` overrides repeats and warmup with QUICK; the status is 1 if any configuration failed.
    """
    timing = QUICK if quick else {"repeats": repeats, "warmup": warmup}
    settings = Settings(
        batch_size=batch_size, threads=threads, num_classes=num_classes, refine=refine, **timing
    )
    if profile:
        _check_plan(models, sizes, [profile])
        for model, size in itertools.product(models, sizes):
            print(profile_model(model, size, profile, settings, row_limit=row_limit))
        return 0
    rows = run_bench(models, sizes, modes, settings, json_out=json_out, markdown=markdown)
    return 1 if any("error" in row for row in rows) else 0


def run_bench(
    models: Sequence[str],
    sizes: Sequence[int],
    modes: Sequence[str] = tuple(MODES),
    settings: Settings | None = None,
    *,
    json_out: Path | None = None,
    markdown: bool = False,
) -> list[dict[str, Any]]:
    """Benchmark every size × model × mode; print a table (markdown if asked) and return the rows.

    Progress goes to stderr and the table to stdout, so `> bench.md` captures just the table.
    `json_out` is rewritten after every configuration: a long run cut short keeps what it measured.
    """
    settings = settings or Settings()
    _check_plan(models, sizes, modes)
    if json_out is not None:
        ensure_writable(json_out, "the benchmark results")
    configs = [(m, s, mode) for s in sizes for m in models for mode in modes]
    meta = environment(asdict(settings))
    rows = []
    with tempfile.TemporaryDirectory(prefix="gcnseg-bench-") as tmp:
        exports: dict[str, str] = {}
        for i, (model, size, mode) in enumerate(configs, 1):
            spec = {"model": model, "size": size, "mode": mode, **asdict(settings)}
            onnx = MODES[mode].onnx
            rows.append(_run_onnx(spec, exports, Path(tmp)) if onnx else _run_worker(spec))
            print(f"[{i}/{len(configs)}] {row_summary(rows[-1])}", file=sys.stderr, flush=True)
            if json_out is not None:
                write_json(json_out, {"meta": meta, "results": rows})
    print(markdown_table(rows, meta) if markdown else f"{caption(meta)}\n\n{text_table(rows)}")
    return rows


def _check_plan(models: Sequence[str], sizes: Sequence[int], modes: Sequence[str]) -> None:
    """Refuse misspelt names and bad sizes before the first worker starts, not after an hour
    of others."""
    from gcnseg.models import list_models

    check_sizes(sizes)
    unknown_models = sorted(set(models) - set(list_models()))
    if unknown_models:
        raise GcnsegError(f"unknown model(s) {', '.join(unknown_models)}; see `gcnseg models`")
    unknown_modes = sorted(set(modes) - set(MODES))
    if unknown_modes:
        raise GcnsegError(f"unknown mode(s) {', '.join(unknown_modes)}; known: {', '.join(MODES)}")


def _run_onnx(spec: dict[str, Any], exports: dict[str, str], folder: Path) -> dict[str, Any]:
    """Export in the parent (once per model and engine), so the worker's peak RSS is the
    engine's alone; int8 is calibrated on random images, which is enough to time it."""
    from gcnseg.inference.export import export_onnx
    from gcnseg.inference.quantize import quantize_int8

    name, num_classes = spec["model"], spec["num_classes"]
    int8 = MODES[spec["mode"]].engine.endswith("int8")
    key = f"{name}-int8" if int8 else name
    if key not in exports:
        path = folder / f"{key}.onnx"
        classes = ClassSet(
            tuple(f"class_{i}" for i in range(num_classes)), ((0, 0, 0),) * num_classes
        )
        try:
            fp32 = folder / f"{name}.onnx"
            if not fp32.is_file():
                model = build_model(name, num_classes, spec["refine"])
                export_onnx(model, fp32, classes=classes, model_name=name)
            if int8:
                quantize_int8(fp32, path, _random_images(folder, 4), size=spec["size"])
        except GcnsegError as exc:  # e.g. onnx not installed: the torch rows still count
            return _error_row(spec, str(exc))
        exports[key] = str(path)
    return _run_worker(spec | {"onnx_path": exports[key]})


def _random_images(folder: Path, count: int) -> list[Path]:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        path = folder / f"calibration-{i}.png"
        Image.fromarray(rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def _run_worker(spec: dict[str, Any]) -> dict[str, Any]:
    command = [sys.executable, "-m", "gcnseg.tools.bench.worker", json.dumps(spec)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    return _error_row(spec, lines[-1] if lines else f"worker exited with {done.returncode}")


def _error_row(spec: dict[str, Any], error: str) -> dict[str, Any]:
    return {k: spec[k] for k in ("model", "size", "mode", "batch_size")} | {"error": error}
