"""Engine accuracy guard: every engine's metrics beside torch fp32's on the same images, and the
share of pixels where its argmax agrees with torch fp32's."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from gcnseg.data.dataset import eval_loader
from gcnseg.data.layouts import index_dataset
from gcnseg.data.splits import split_samples
from gcnseg.evaluation.evaluate import evaluate
from gcnseg.inference import TORCH_FP32
from gcnseg.inference.segmenter import Segmenter

REFERENCE = TORCH_FP32


@dataclass(frozen=True)
class EngineRow:
    engine: str
    miou: float
    mean_image_accuracy: float
    pixel_accuracy: float
    agreement: float  # argmax agreement with the reference engine, over all pixels
    seconds: float


def compare_engines(
    segmenters: dict[str, Segmenter],
    data: Path,
    *,
    manifest: Path | None = None,
    split: str = "test",
    limit: int | None = None,
) -> list[EngineRow]:
    """Evaluate each segmenter (the first must be the torch fp32 reference) on the same images."""

    index = index_dataset(data)
    samples = split_samples(index, manifest, split)
    if limit and len(samples) > limit:  # spread over the split: it is sorted by breed
        samples = samples[:: len(samples) // limit][:limit]
    reference: dict[int, torch.Tensor] = {}
    rows = []
    for name, segmenter in segmenters.items():
        loader = eval_loader(samples, segmenter.eval_size, batch_size=4, workers=0)
        preds: dict[int, torch.Tensor] = {}
        tic = time.monotonic()
        result = evaluate(
            segmenter, loader, on_image=lambda i, p, *_, preds=preds: preds.update({i: p})
        )
        seconds = time.monotonic() - tic
        if not reference:
            reference = preds
        same = sum(int((preds[i] == reference[i]).sum()) for i in reference)
        total = sum(reference[i].numel() for i in reference)
        m = result.metrics
        rows.append(
            EngineRow(
                name,
                m["miou"],
                m["mean_image_accuracy"],
                m["pixel_accuracy"],
                same / total,
                seconds,
            )
        )
    return rows


def markdown(rows: list[EngineRow]) -> str:
    reference = rows[0]
    lines = [
        "| engine | mIoU | Δ mIoU | mean image acc. | pixel acc. | argmax agreement | seconds |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.engine} | {r.miou:.4f} | {r.miou - reference.miou:+.4f} | "
            f"{r.mean_image_accuracy:.4f} | {r.pixel_accuracy:.4f} | {100 * r.agreement:.2f}% | {r.seconds:.1f} |"
        )
    return "\n".join(lines)
