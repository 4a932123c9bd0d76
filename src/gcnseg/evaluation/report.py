"""`gcnseg test`: evaluate a model on a dataset and report every metric at original resolution."""

from __future__ import annotations

import heapq
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gcnseg.classes import ClassSet
from gcnseg.data.dataset import eval_loader
from gcnseg.data.images import read_image
from gcnseg.data.oxford_pets import breed
from gcnseg.data.splits import has_own_split, split_samples
from gcnseg.errors import GcnsegError
from gcnseg.evaluation.evaluate import SkippedItem, evaluate
from gcnseg.evaluation.metrics import ImageScore
from gcnseg.evaluation.run_split import scored_data
from gcnseg.inference.segmenter import load
from gcnseg.io.atomic import write_json
from gcnseg.io.cache import CacheDir
from gcnseg.io.formats import finite

log = logging.getLogger(__name__)

# What `run_test` writes into its `out_dir`.
CONFUSION_MATRIX_FILE = "confusion_matrix.png"
WORST_FILE = "worst.png"


@dataclass
class TestReport:
    checkpoint: str
    data: str
    split: str
    listed: int  # images in the split
    classes: ClassSet
    metrics: dict
    seconds: float
    engine: str
    skipped: list[SkippedItem] = field(default_factory=list)
    per_image: dict[str, ImageScore] = field(default_factory=dict)
    breeds: bool = False  # Oxford-IIIT Pet: also score each breed (the prefix of the names)
    tta: dict = field(default_factory=dict)  # flip and scales, when test-time augmentation is on

    @property
    def scored(self) -> int:
        return self.listed - len(self.skipped)

    def by_breed(self) -> dict[str, dict[str, float]]:
        """Per breed: images, mean image accuracy and mean image mIoU; worst accuracy first."""
        groups: dict[str, list[ImageScore]] = {}
        for name, score in self.per_image.items():
            if not math.isnan(score.pixel_accuracy):
                groups.setdefault(breed(name), []).append(score)
        rows = {
            name: {
                "images": len(scores),
                "mean_image_accuracy": float(np.mean([s.pixel_accuracy for s in scores])),
                "mean_image_miou": float(np.mean([s.miou for s in scores])),
            }
            for name, scores in groups.items()
        }
        return dict(sorted(rows.items(), key=lambda kv: kv[1]["mean_image_accuracy"]))

    def to_dict(self) -> dict[str, Any]:
        """Strict JSON: a metric that is undefined (a class absent everywhere) is null, not NaN."""
        return finite(
            {
                "checkpoint": self.checkpoint,
                "data": self.data,
                "split": self.split,
                "images": self.scored,
                "images_listed": self.listed,
                "skipped": [{"name": s.name, "reason": s.reason} for s in self.skipped],
                "classes": list(self.classes.names),
                "engine": self.engine,
                "seconds": self.seconds,
                **({"test_time_augmentation": self.tta} if self.tta else {}),
                **self.metrics,
                **({"breeds": self.by_breed()} if self.breeds else {}),
                "per_image": {
                    name: {"pixel_accuracy": s.pixel_accuracy, "miou": s.miou}
                    for name, s in self.per_image.items()
                },
            }
        )

    def format(self) -> str:
        m = self.metrics
        names = self.classes.names
        width = max(len(n) for n in names) + 2
        counted = (
            f"{self.scored} images"
            if not self.skipped
            else f"{self.scored} of {self.listed} images"
        )
        tta = ", ".join(f"{k} {v}" for k, v in self.tta.items())
        lines = [
            f"{counted} of {self.data} ({self.split}), {self.checkpoint}, engine {self.engine}"
            + (f", test-time augmentation: {tta}" if tta else ""),
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
        if self.breeds:
            lines += ["", f"{'5 worst breeds':<28}{'images':>8}{'image acc':>11}{'mIoU':>8}"]
            for name, row in list(self.by_breed().items())[:5]:
                lines.append(
                    f"{name:<28}{row['images']:>8d}{row['mean_image_accuracy']:>11.4f}"
                    f"{row['mean_image_miou']:>8.4f}"
                )
        if self.skipped:
            lines += ["", f"left out ({len(self.skipped)} unreadable, not scored):"]
            lines += [f"  {s.reason}" for s in self.skipped]
        return "\n".join(lines)


def run_test(
    checkpoint: str,
    data_root: Path | None = None,
    *,
    manifest: Path | None = None,
    split: str | None = None,
    size: int | None = None,
    flip: bool = False,
    scales: tuple[float, ...] = (1.0,),
    device: str = "auto",
    engine: str = "auto",
    strict: bool = False,
    any_class_names: bool = False,
    draw_dir: Path | None = None,
    out_dir: Path | None = None,
    worst: int = 8,
    json_out: Path | None = None,
    cache_dir: CacheDir = None,
) -> TestReport:
    """Evaluate; write the confusion heatmap, worst-k gallery, overlays and JSON report as asked.

    What is scored: `split` (default test) of `manifest`; for a run folder as `checkpoint`, its
    own dataset folder and manifest by default; with no manifest, every pair (see run_split).
    """
    from gcnseg.viz.draw import gallery, panel, save_image
    from gcnseg.viz.plots import plot_confusion_matrix

    scored = scored_data(checkpoint, data_root, manifest, split)
    data_root, manifest, index = scored.root, scored.manifest, scored.index
    samples = split_samples(index, manifest, scored.split or "test")
    segmenter = load(
        checkpoint,
        engine=engine,
        device=device,
        flip=flip,
        scales=scales,
        size=size,
        cache_dir=cache_dir,
    )
    classes = segmenter.classes
    _check_classes(index.classes, classes, data_root, checkpoint, any_class_names)
    trained = segmenter.trained
    loader = eval_loader(
        samples,
        segmenter.eval_size,
        batch_size=trained.config.data.eval_batch_size if trained else segmenter.batch_size,
        keep_image=draw_dir is not None,
    )
    worst_heap: list[tuple[float, int, torch.Tensor, torch.Tensor]] = []

    def on_image(
        i: int, pred: torch.Tensor, label: torch.Tensor, score: ImageScore, image: np.ndarray | None
    ) -> None:
        if image is not None:  # --draw: the loader kept the decoded image
            save_image(
                draw_dir / f"{samples[i].name}.png",
                panel(image, pred.numpy(), classes, truth=label.numpy()),
            )
        if worst and not math.isnan(score.miou):
            heapq.heappush(worst_heap, (-score.miou, i, pred, label))  # max-heap: pop the best
            if len(worst_heap) > worst:
                heapq.heappop(worst_heap)

    tic = time.monotonic()
    result = evaluate(segmenter, loader, progress=True, strict=strict, on_image=on_image)
    if len(result.images) == 0:
        raise GcnsegError(f"{data_root}: none of the {len(samples)} images could be read")
    report = TestReport(
        str(checkpoint),
        str(data_root),
        (scored.split or "test") if manifest or has_own_split(index) else "all pairs",
        len(samples),
        classes,
        result.metrics,
        time.monotonic() - tic,
        segmenter.engine_name,
        result.skipped,
        {samples[r.index].name: r.score for r in result.images},
        breeds=index.layout == "oxford-pets",
        tta=_tta(segmenter.flip, segmenter.scales),
    )
    for item in result.skipped:
        log.warning("left out of the metrics: %s", item.reason)
    if out_dir is not None:
        plot_confusion_matrix(
            result.metrics["confusion_matrix"],
            list(classes.names),
            out_dir / CONFUSION_MATRIX_FILE,
        )
        tiles = []
        for neg_score, i, pred, label in sorted(worst_heap, key=lambda t: -t[0]):
            image = read_image(samples[i].image)
            caption = f"{samples[i].name}  IoU {-neg_score:.3f}"
            tiles.append((caption, panel(image, pred.numpy(), classes, truth=label.numpy())))
        if tiles:
            gallery(tiles, out_dir / WORST_FILE)
    if json_out is not None:
        write_json(json_out, report.to_dict())
    return report


def written_files(
    *, json_out: Path | None = None, draw_dir: Path | None = None, out_dir: Path | None = None
) -> list[Path]:
    """What `run_test` wrote for these arguments, in that order; the worst-k gallery exists only
    when an image was scored, so only what is on disk is listed."""
    paths = [json_out, draw_dir]
    if out_dir is not None:
        paths += [out_dir / CONFUSION_MATRIX_FILE, out_dir / WORST_FILE]
    return [path for path in paths if path is not None and path.exists()]


def _tta(flip: bool, scales: tuple[float, ...]) -> dict:
    if not flip and scales == (1.0,):
        return {}
    return {"flip": flip, "scales": list(scales)}


def _check_classes(
    data: ClassSet, model: ClassSet, root: Path, checkpoint: str, any_names: bool
) -> None:
    """A model scored against other classes gives meaningless numbers: refuse unless told."""
    if len(data.names) != len(model.names):
        raise GcnsegError(
            f"{root}: dataset has {len(data.names)} classes, {checkpoint} {len(model.names)}"
        )
    if data.names != model.names and not any_names:
        raise GcnsegError(
            f"{root}: classes {list(data.names)} differ from {checkpoint}'s {list(model.names)} "
            "(pass --any-class-names if they mean the same)"
        )
