"""`gcnseg predict`: masks, overlays and panels at each input's original resolution.

Images stream through a DataLoader (decoded and letterboxed in workers, batched) into the one
Segmenter's stream; an unreadable file is reported and skipped, the others go on, and so does a
ground-truth mask that cannot be drawn (its panel is left out). A photo is turned as its EXIF
orientation says (as viewers show it), and a ground-truth mask turned with it. Outputs never
overwrite an input, and Ctrl-C still leaves a summary of what was done.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import numpy as np
from torch.utils.data import DataLoader
from tqdm import tqdm

from gcnseg.classes import IGNORE_INDEX, ClassSet
from gcnseg.data.dataset import ImageFiles, collate, default_workers
from gcnseg.data.images import image_orientation, orient, read_mask
from gcnseg.data.oxford_pets import truth_sample
from gcnseg.errors import GcnsegError
from gcnseg.inference.inputs import check_no_overwrite, expand_inputs, output_stems
from gcnseg.inference.segmenter import Prediction, Segmenter, load
from gcnseg.io.atomic import write_json
from gcnseg.io.cache import CacheDir
from gcnseg.logs import progress_enabled
from gcnseg.viz.draw import check_alpha, overlay, panel, save_image, save_mask_png

log = logging.getLogger(__name__)


@dataclass
class PredictSummary:
    written: int
    engine: str
    skipped: list[str] = field(default_factory=list)  # one line per input left out
    no_panel: list[str] = field(default_factory=list)  # segmented, but its truth was unusable
    left: int = 0  # inputs not reached when interrupted
    interrupted: bool = False


class PredictInterrupted(KeyboardInterrupt):
    """Ctrl-C during `predict_files`; `summary` says what was written before it."""

    def __init__(self, summary: PredictSummary) -> None:
        super().__init__()
        self.summary = summary


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
    cache_dir: CacheDir = None,
) -> PredictSummary:
    """Segment every input and write its mask, overlay and (with ground truth) panel.

    An output that would replace an input is refused before the model loads. Ctrl-C raises
    PredictInterrupted, whose summary counts what was written and what was left.
    """
    check_alpha(alpha)
    paths = expand_inputs(inputs)
    stems = output_stems(paths)
    check_no_overwrite(paths, [out_dir / stem for stem in stems])
    segmenter = load(
        checkpoint,
        engine=engine,
        device=device,
        flip=flip,
        scales=scales,
        size=size,
        cache_dir=cache_dir,
    )
    loader = DataLoader(
        ImageFiles(paths, segmenter.eval_size),
        batch_size=batch_size,
        num_workers=default_workers() if workers is None else workers,
        collate_fn=collate,
    )
    summary = PredictSummary(0, segmenter.engine_name)
    bar_off = len(paths) < 2 or not progress_enabled()
    predictions = segmenter.stream(loader)
    try:
        with (
            _stop_requests() as stop_requested,
            tqdm(total=len(paths), desc="predict", disable=bar_off) as bar,
        ):
            for prediction in predictions:
                _record(prediction, paths, stems, out_dir, masks_dir, segmenter, alpha, summary)
                bar.update(1)
                if stop_requested():
                    summary.interrupted = True
                    break
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        predictions.close()  # stops the DataLoader's workers before anything else is said
    if summary.interrupted:
        summary.left = len(paths) - summary.written - len(summary.skipped)
        raise PredictInterrupted(summary)
    if summary.written == 0:
        raise GcnsegError(f"none of the {len(paths)} inputs could be segmented")
    return summary


def _record(
    prediction: Prediction,
    paths: list[Path],
    stems: list[str],
    out_dir: Path,
    masks_dir: Path | None,
    segmenter: Segmenter,
    alpha: float,
    summary: PredictSummary,
) -> None:
    """Write one prediction's files, or note why there are none (or no panel)."""
    if prediction.error is not None:
        log.warning("skipping %s", prediction.error)
        summary.skipped.append(prediction.error)
        return
    i = prediction.index
    try:
        truth = find_truth(paths[i], masks_dir, segmenter.classes)
    except GcnsegError as exc:  # the mask and overlay are still worth writing
        log.warning("no panel for %s: %s", paths[i], exc)
        summary.no_panel.append(str(exc))
        truth = None
    image = prediction.fields["original_image"]
    _write_outputs(out_dir / stems[i], image, prediction.mask, truth, segmenter.classes, alpha)
    summary.written += 1


@contextlib.contextmanager
def _stop_requests() -> Iterator[Callable[[], bool]]:
    """Ctrl-C asks to stop after the image at hand (a second one stops at once). Cut at any
    point, the main process can be caught taking a batch from a DataLoader worker, and the
    worker then prints a traceback of the broken transfer."""
    requested = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield requested.is_set  # signal handlers can only be set from the main thread
        return

    def handle(signum: int, frame: FrameType | None) -> None:
        if requested.is_set():
            raise KeyboardInterrupt
        requested.set()

    previous = signal.signal(signal.SIGINT, handle)
    try:
        yield requested.is_set
    finally:
        signal.signal(signal.SIGINT, previous)


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
            "no_panel": summary.no_panel,
            "left": summary.left,
            "interrupted": summary.interrupted,
        },
    )


def find_truth(
    image_path: Path, masks_dir: Path | None, classes: ClassSet | None = None
) -> np.ndarray | None:
    """A ground-truth mask for the panel: from --masks, or the Oxford trimap beside the image;
    stored like the image's pixels, so turned by the image's EXIF orientation as they are.

    None when there is none; a GcnsegError naming the mask when it cannot be read or holds
    values outside `classes`, so the caller can skip that panel and go on with the batch."""
    if masks_dir is not None:
        mask = masks_dir / f"{image_path.stem}.png"
        truth = read_mask(mask) if mask.is_file() else None
    else:
        sample = truth_sample(image_path)
        mask, truth = (None, None) if sample is None else (sample.mask, sample.load_label())
    if truth is None:
        return None
    if classes is not None:
        _check_classes(truth, classes, mask)
    return orient(truth, image_orientation(image_path))


def _check_classes(truth: np.ndarray, classes: ClassSet, path: Path) -> None:
    """Values that are no class (and not the ignore value) cannot be drawn or scored."""
    values = np.unique(truth)
    outside = values[(values >= len(classes.names)) & (values != IGNORE_INDEX)]
    if outside.size:
        raise GcnsegError(
            f"{path}: mask holds class {int(outside[0])}, outside the "
            f"{len(classes.names)} classes ({', '.join(classes.names)})"
        )


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
