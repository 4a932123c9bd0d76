"""`gcnseg test`: evaluate a checkpoint on a dataset and report every metric at original resolution."""

from __future__ import annotations

import heapq
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from gcnseg.checkpoint import load_checkpoint, model_from_checkpoint
from gcnseg.classes import ClassSet
from gcnseg.data.dataset import SegmentationDataset, default_workers, make_loader
from gcnseg.data.images import read_image
from gcnseg.data.layouts import index_dataset
from gcnseg.data.splits import load_manifest, select
from gcnseg.data.transforms import eval_transform
from gcnseg.errors import GcnsegError
from gcnseg.evaluation.evaluate import evaluate, image_miou
from gcnseg.io.atomic import write_json
from gcnseg.runtime import resolve_device


@dataclass
class TestReport:
    checkpoint: str
    data: str
    split: str
    images: int
    classes: ClassSet
    metrics: dict
    seconds: float

    def to_dict(self) -> dict:
        return {
            "checkpoint": self.checkpoint,
            "data": self.data,
            "split": self.split,
            "images": self.images,
            "classes": list(self.classes.names),
            "seconds": self.seconds,
            **self.metrics,
        }

    def format(self) -> str:
        m = self.metrics
        names = self.classes.names
        width = max(len(n) for n in names) + 2
        lines = [
            f"{self.images} images of {self.data} ({self.split}), {self.checkpoint}",
            f"pixel accuracy        {m['pixel_accuracy']:.4f}",
            f"mean image accuracy   {m['mean_image_accuracy']:.4f}   (the seed project's metric)",
            f"mIoU                  {m['miou']:.4f}",
            f"mean Dice             {m['mean_dice']:.4f}",
            f"mean class accuracy   {m['mean_class_accuracy']:.4f}",
            "",
            f"{'class':<{width}}{'IoU':>8}{'Dice':>8}{'acc':>8}",
        ]
        for i, name in enumerate(names):
            lines.append(
                f"{name:<{width}}{m['iou'][i]:>8.4f}{m['dice'][i]:>8.4f}{m['class_accuracy'][i]:>8.4f}"
            )
        lines += ["", "confusion matrix (rows: truth, columns: prediction)"]
        lines.append(" " * width + "".join(f"{n[:10]:>12}" for n in names))
        for name, row in zip(names, m["confusion_matrix"], strict=True):
            lines.append(f"{name:<{width}}" + "".join(f"{v:>12d}" for v in row))
        return "\n".join(lines)


def run_test(
    checkpoint: str,
    data_root: Path,
    *,
    manifest: Path | None = None,
    split: str = "test",
    size: int | None = None,
    flip: bool = False,
    device: str = "auto",
    amp: str = "none",
    draw_dir: Path | None = None,
    out_dir: Path | None = None,
    worst: int = 8,
    json_out: Path | None = None,
) -> TestReport:
    """Evaluate; write the confusion heatmap, worst-k gallery, overlays and JSON report as asked."""
    from gcnseg.viz.draw import gallery, panel, save_image
    from gcnseg.viz.plots import plot_confusion_matrix

    payload = load_checkpoint(checkpoint)
    model, cfg, classes = model_from_checkpoint(payload)
    index = index_dataset(data_root)
    if len(index.classes.names) != len(classes.names):
        raise GcnsegError(
            f"{data_root}: dataset has {len(index.classes.names)} classes, checkpoint {len(classes.names)}"
        )
    samples = select(index, load_manifest(manifest)["splits"][split]) if manifest else index.samples
    split_name = split if manifest else "all pairs"
    dev = resolve_device(device)
    model.to(dev, memory_format=torch.channels_last)  # about 2x faster on CPU (gcnseg bench)
    dataset = SegmentationDataset(
        samples, eval_transform(size or cfg.data.eval_size), keep_original=True
    )
    loader = make_loader(
        dataset, batch_size=cfg.data.eval_batch_size, shuffle=False, workers=default_workers()
    )
    worst_heap: list[tuple[float, int, torch.Tensor, torch.Tensor]] = []

    def on_prediction(i: int, pred: torch.Tensor, label: torch.Tensor) -> None:
        if draw_dir is not None:
            image = read_image(samples[i].image)
            save_image(
                draw_dir / f"{samples[i].name}.png",
                panel(image, pred.numpy(), classes, truth=label.numpy()),
            )
        score = image_miou(pred, label, len(classes.names))
        if worst and not math.isnan(score):
            heapq.heappush(worst_heap, (-score, i, pred, label))  # max-heap on score: pop the best
            if len(worst_heap) > worst:
                heapq.heappop(worst_heap)

    tic = time.monotonic()
    result = evaluate(
        model,
        loader,
        num_classes=len(classes.names),
        device=dev,
        amp=amp,
        flip=flip,
        progress=True,
        channels_last=True,
        on_prediction=on_prediction,
    )
    report = TestReport(
        str(checkpoint),
        str(data_root),
        split_name,
        len(samples),
        classes,
        result.metrics,
        time.monotonic() - tic,
    )
    out_dir = out_dir or (json_out.parent if json_out else None)
    if out_dir is not None:
        plot_confusion_matrix(
            result.metrics["confusion_matrix"],
            list(classes.names),
            out_dir / "confusion_matrix.png",
        )
        tiles = []
        for neg_score, i, pred, label in sorted(worst_heap, key=lambda t: -t[0]):
            image = read_image(samples[i].image)
            caption = f"{samples[i].name}  IoU {-neg_score:.3f}"
            tiles.append((caption, panel(image, pred.numpy(), classes, truth=label.numpy())))
        if tiles:
            gallery(tiles, out_dir / "worst.png")
    if json_out is not None:
        per_image = {
            samples[r.index].name: {"pixel_accuracy": r.pixel_accuracy, "miou": r.miou}
            for r in result.images
        }
        write_json(json_out, report.to_dict() | {"per_image": per_image})
    return report
