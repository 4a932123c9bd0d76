"""`gcnseg predict`: masks, overlays and panels at each input's original resolution.

Images stream through a DataLoader (decoded and letterboxed in workers, batched) into the one
Segmenter's stream; an unreadable file is reported and skipped, the others go on. A photo is
turned as its EXIF orientation says (as viewers show it), and a ground-truth mask turned with it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from torch.utils.data import DataLoader
from tqdm import tqdm

from gcnseg.classes import ClassSet
from gcnseg.data.dataset import ImageFiles, collate, default_workers
from gcnseg.data.images import image_orientation, orient, read_mask
from gcnseg.data.oxford_pets import truth_sample
from gcnseg.errors import GcnsegError
from gcnseg.inference.inputs import expand_inputs, output_stems
from gcnseg.inference.segmenter import load
from gcnseg.io.atomic import write_json
from gcnseg.logs import progress_enabled
from gcnseg.viz.draw import check_alpha, overlay, panel, save_image, save_mask_png

log = logging.getLogger(__name__)


@dataclass
class PredictSummary:
    written: int
    engine: str
    skipped: list[str] = field(default_factory=list)  # one line per input left out


def predict_files(
    inputs: list[str],
    *,
    checkpoint: str = "pets-default",
    out_dir: Path = Path("predictions"),
    engine: str = "auto",
    size: int | None = None,
    flip: bool = False,
    scales: tuple[float, ...] = (1.0,),
    alpha: float = 0.5,
    masks_dir: Path | None = None,
    device: str = "auto",
    batch_size: int = 4,
    workers: int | None = None,
) -> PredictSummary:
    """Segment every input and write its mask, overlay and (with ground truth) panel."""
    check_alpha(alpha)
    paths = expand_inputs(inputs)
    stems = output_stems(paths)
    segmenter = load(checkpoint, engine=engine, device=device, flip=flip, scales=scales, size=size)
    loader = DataLoader(
        ImageFiles(paths, segmenter.eval_size),
        batch_size=batch_size,
        num_workers=default_workers() if workers is None else workers,
        collate_fn=collate,
    )
    summary = PredictSummary(0, segmenter.engine_name)
    bar_off = len(paths) < 2 or not progress_enabled()
    with tqdm(total=len(paths), desc="predict", disable=bar_off) as bar:
        for prediction in segmenter.stream(loader):
            if prediction.error is not None:
                log.warning("skipping %s", prediction.error)
                summary.skipped.append(prediction.error)
            else:
                i = prediction.index
                image = prediction.fields["original_image"]
                truth = find_truth(paths[i], masks_dir)
                _write_outputs(
                    out_dir / stems[i], image, prediction.mask, truth, segmenter.classes, alpha
                )
                summary.written += 1
            bar.update(1)
    if summary.written == 0:
        raise GcnsegError(f"none of the {len(paths)} inputs could be segmented")
    return summary


def write_summary(
    path: Path, summary: PredictSummary, *, checkpoint: str | Path, out_dir: Path
) -> None:
    """A JSON record of a `predict_files` run: model, engine, where the images went, how many
    were written and which were left out, so a script can check a batch without reading the log."""
    from gcnseg._version import __version__

    write_json(
        path,
        {
            "version": __version__,
            "checkpoint": str(checkpoint),
            "engine": summary.engine,
            "out": str(out_dir),
            "written": summary.written,
            "skipped": summary.skipped,
        },
    )


def find_truth(image_path: Path, masks_dir: Path | None) -> np.ndarray | None:
    """A ground-truth mask for the panel: from --masks, or the Oxford trimap beside the image;
    stored like the image's pixels, so turned by the image's EXIF orientation as they are."""
    try:
        if masks_dir is not None:
            mask = masks_dir / f"{image_path.stem}.png"
            truth = read_mask(mask) if mask.is_file() else None
        else:
            sample = truth_sample(image_path)
            truth = None if sample is None else sample.load_label()
        return None if truth is None else orient(truth, image_orientation(image_path))
    except GcnsegError as exc:
        log.warning("no panel for %s: %s", image_path, exc)
        return None


def _write_outputs(
    prefix: Path,
    image: np.ndarray,
    mask: np.ndarray,
    truth: np.ndarray | None,
    classes: ClassSet,
    alpha: float,
) -> None:
    save_mask_png(f"{prefix}_mask.png", mask, classes)
    save_image(f"{prefix}_overlay.jpg", overlay(image, mask, classes, alpha=alpha))
    if truth is not None and truth.shape == mask.shape:
        save_image(f"{prefix}_panel.png", panel(image, mask, classes, truth=truth, alpha=alpha))
