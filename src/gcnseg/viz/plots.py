"""Training and evaluation charts rendered with matplotlib's Agg canvas.

matplotlib is imported inside the functions (it is slow to import and only needed here), and
figures are drawn on an Agg canvas directly, never through pyplot, so no display is needed and
no global backend or figure registry is touched.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gcnseg.errors import GcnsegError
from gcnseg.io.atomic import atomic_path

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

LEARNING_CURVE = "learning_curve.png"
MAX_SMOOTHING = 50  # steps in the loss moving average, at most
DPI = 120


def plot_learning_curve(run_dir: Path) -> Path:
    """Write run_dir/learning_curve.png: loss, accuracy/mIoU and learning rate over epochs.

    Step losses sit at fractional epochs (the k-th of n steps in epoch e at e - 1 + k/n), so the
    per-epoch values, plotted at e, mark where each epoch ended. Missing files or keys just
    leave lines out.
    """
    run_dir = Path(run_dir)
    epochs = _read_jsonl(run_dir / "metrics.jsonl")
    steps = _read_jsonl(run_dir / "steps.jsonl")
    fig = _figure(figsize=(8, 9))
    loss_ax, score_ax, lr_ax = fig.subplots(3, 1, sharex=True)
    _plot_losses(loss_ax, epochs, steps)
    _plot_scores(score_ax, epochs)
    _plot_lr(lr_ax, epochs)
    lr_ax.set_xlabel("epoch")
    return _save(fig, run_dir / LEARNING_CURVE)


def plot_confusion_matrix(
    confmat: list[list[int]], names: list[str], path: Path, *, normalize: bool = True
) -> Path:
    """Heatmap with ground truth as rows and predictions as columns.

    With `normalize`, colours and the first annotation line are row percentages (recall per
    class), with the raw pixel count below; otherwise both colour and text are counts.
    """
    counts = np.asarray(confmat, dtype=np.float64)
    n = len(names)
    if counts.shape != (n, n):
        raise ValueError(f"confusion matrix is {counts.shape} but there are {n} class names")
    rows = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        percent = np.where(rows > 0, 100.0 * counts / rows, np.nan)
    values = percent if normalize else counts
    vmax = 100.0 if normalize else max(1.0, counts.max())
    size = max(4.0, 0.7 * n + 2.5)
    fig = _figure(figsize=(size + 1.0, size))
    ax = fig.add_subplot()
    image = ax.imshow(values, cmap="Blues", vmin=0.0, vmax=vmax)
    fig.colorbar(image, ax=ax, label="% of ground-truth row" if normalize else "pixels")
    _annotate_cells(ax, counts, percent if normalize else None, dark_above=0.6 * vmax)
    ax.set_xticks(range(n), names, rotation=45, ha="right")
    ax.set_yticks(range(n), names)
    ax.set_xlabel("prediction")
    ax.set_ylabel("ground truth")
    ax.set_title("Confusion matrix" + (" (row %)" if normalize else ""))
    return _save(fig, Path(path))


def _read_jsonl(path: Path) -> list[dict]:
    """Records from a JSON-lines log; a missing file is empty, a cut-off last line is skipped."""
    if not path.exists():
        return []
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    records = []
    for number, line in enumerate(lines, 1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as err:
            if number < len(lines):  # only the last line can be half-written by a crash
                raise GcnsegError(f"{path}:{number}: not valid JSON ({err.msg})") from err
    return records


def _series(records: list[dict], key: str) -> tuple[list, list]:
    """(end of epoch, value) pairs: records count epochs from 0, so epoch e ends at x = e + 1."""
    pairs = [(r["epoch"] + 1, r[key]) for r in records if None not in (r.get("epoch"), r.get(key))]
    return [x for x, _ in pairs], [y for _, y in pairs]


def _step_positions(steps: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Step losses and their fractional-epoch x positions, in step order."""
    steps = sorted(
        (s for s in steps if s.get("epoch") is not None and s.get("loss") is not None),
        key=lambda s: (s["epoch"], s.get("step", 0)),
    )
    per_epoch = Counter(s["epoch"] for s in steps)
    seen: Counter = Counter()
    x = []
    for s in steps:
        seen[s["epoch"]] += 1
        x.append(s["epoch"] + seen[s["epoch"]] / per_epoch[s["epoch"]])
    return np.asarray(x, np.float64), np.asarray([s["loss"] for s in steps], np.float64)


def _moving_average(values: np.ndarray, window: int) -> np.ndarray:
    return np.convolve(values, np.ones(window) / window, mode="valid")


def _plot_losses(ax: Axes, epochs: list[dict], steps: list[dict]) -> None:
    x, loss = _step_positions(steps)
    if loss.size:
        ax.plot(x, loss, color="tab:blue", alpha=0.25, linewidth=0.8, label="train (step)")
        window = min(MAX_SMOOTHING, loss.size // 10)
        if window > 1:
            smooth = _moving_average(loss, window)
            ax.plot(x[window - 1 :], smooth, color="tab:blue", label=f"train ({window}-step mean)")
    _line(ax, *_series(epochs, "train_loss"), color="tab:blue", style="--", label="train (epoch)")
    _line(ax, *_series(epochs, "val_loss"), color="tab:red", style="-", label="validation")
    ax.set_ylabel("loss")
    _finish(ax)


def _plot_scores(ax: Axes, epochs: list[dict]) -> None:
    for key, color, name in (
        ("pixel_accuracy", "tab:green", "pixel accuracy"),
        ("miou", "tab:purple", "mIoU"),
    ):
        _line(ax, *_series(epochs, f"train_{key}"), color=color, style="--", label=f"train {name}")
        _line(ax, *_series(epochs, f"val_{key}"), color=color, style="-", label=f"val {name}")
    ax.set_ylabel("score")
    _finish(ax)


def _plot_lr(ax: Axes, epochs: list[dict]) -> None:
    x, lr = _series(epochs, "lr")
    _line(ax, x, lr, color="tab:gray", style="-", label=None)
    if any(v > 0 for v in lr):  # a log axis needs at least one positive value
        ax.set_yscale("log")
    ax.set_ylabel("learning rate")
    ax.grid(True, alpha=0.3)


def _line(ax: Axes, x: list, y: list, *, color: str, style: str, label: str | None) -> None:
    """Per-epoch line with markers, so a single epoch still shows up as a point."""
    if y:
        ax.plot(x, y, linestyle=style, marker="o", markersize=3, color=color, label=label)


def _finish(ax: Axes) -> None:
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small")


def _annotate_cells(
    ax: Axes, counts: np.ndarray, percent: np.ndarray | None, *, dark_above: float
) -> None:
    """Write each cell's percentage and count; white where the cell colour is dark."""
    fontsize = max(4.0, min(9.0, 90.0 / len(counts)))
    for (row, col), count in np.ndenumerate(counts):
        text, value = _compact(count), count
        if percent is not None:
            value = percent[row, col]
            text = f"{value:.1f}%\n{text}" if math.isfinite(value) else "–"
        color = "white" if value > dark_above else "black"
        ax.text(col, row, text, ha="center", va="center", fontsize=fontsize, color=color)


def _compact(count: float) -> str:
    """Pixel counts get large: 1234567 -> '1.2M'."""
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(count) >= limit:
            return f"{count / limit:.1f}{suffix}"
    return f"{int(count)}"


def _figure(figsize: tuple[float, float]) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path
