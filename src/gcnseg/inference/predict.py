"""`gcnseg predict`: masks, overlays and panels at each input's original resolution."""

from __future__ import annotations

import glob
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from gcnseg.checkpoint import load_checkpoint, model_from_checkpoint
from gcnseg.classes import ClassSet
from gcnseg.data.images import IMAGE_EXTENSIONS, read_image, read_mask
from gcnseg.data.oxford_pets import truth_sample
from gcnseg.data.transforms import letterbox, to_chw_tensor, unletterbox
from gcnseg.errors import GcnsegError
from gcnseg.runtime import predict_logits, prepare_images, resolve_device
from gcnseg.viz.draw import overlay, panel, save_image, save_mask_png

log = logging.getLogger(__name__)


def expand_inputs(inputs: list[str]) -> list[Path]:
    """Files, folders (their images, sorted) and glob patterns, in order, without duplicates."""
    found: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        elif path.is_file():
            found.append(path)
        else:
            matches = sorted(Path(p) for p in glob.glob(item, recursive=True))
            if not matches:
                raise GcnsegError(f"{item}: no such file, folder or matching pattern")
            found += [p for p in matches if p.is_file()]
    unique = list(dict.fromkeys(found))
    if not unique:
        raise GcnsegError("no input images found")
    return unique


def find_truth(image_path: Path, masks_dir: Path | None) -> np.ndarray | None:
    """A ground-truth mask for the panel: from --masks, or the Oxford trimap beside the image."""
    if masks_dir is not None:
        mask = masks_dir / f"{image_path.stem}.png"
        return read_mask(mask) if mask.is_file() else None
    sample = truth_sample(image_path)
    return None if sample is None else sample.load_label()


def segment(
    model: Callable[[Tensor], Tensor],
    image: np.ndarray,
    size: int,
    *,
    device: torch.device,
    amp: str,
    flip: bool,
) -> np.ndarray:
    """HxW uint8 class indices for one HxWx3 image, predicted at `size` and mapped back."""
    letterboxed, box = letterbox(image, size)
    batch = prepare_images(to_chw_tensor(letterboxed)[None], device, channels_last=True)
    logits = predict_logits(model, batch, device=device, amp=amp, flip=flip)[0]
    return unletterbox(logits, box).argmax(0).to(torch.uint8).cpu().numpy()


def _onnx_model(
    checkpoint: str, onnx_path: Path | None, workdir: Path
) -> Callable[[Tensor], Tensor]:
    from gcnseg.inference.export import export_checkpoint
    from gcnseg.inference.onnx_runtime import OnnxSegmenter

    if onnx_path is None:
        onnx_path = export_checkpoint(checkpoint, workdir / "model.onnx")
    return OnnxSegmenter(onnx_path)


def predict_files(
    inputs: list[str],
    *,
    checkpoint: str = "pets-default",
    out_dir: Path = Path("predictions"),
    engine: str = "torch",
    onnx_path: Path | None = None,
    size: int | None = None,
    flip: bool = False,
    alpha: float = 0.5,
    masks_dir: Path | None = None,
    device: str = "auto",
    amp: str = "none",
) -> int:
    """Segment every input; an unreadable file is reported and skipped. Returns images written."""
    paths = expand_inputs(inputs)
    model, cfg, classes = model_from_checkpoint(load_checkpoint(checkpoint))
    size = size or cfg.data.eval_size
    dev = resolve_device(device) if engine == "torch" else torch.device("cpu")
    written = 0
    with tempfile.TemporaryDirectory() as workdir:
        run: Callable[[Tensor], Tensor] = (
            model.to(dev, memory_format=torch.channels_last)
            if engine == "torch"
            else _onnx_model(checkpoint, onnx_path, Path(workdir))
        )
        for path in tqdm(paths, desc="predict", disable=len(paths) < 2):
            try:
                image = read_image(path)
                truth = find_truth(path, masks_dir)
            except GcnsegError as exc:
                log.warning("skipping %s", exc)
                continue
            mask = segment(run, image, size, device=dev, amp=amp, flip=flip)
            _write_outputs(out_dir / path.stem, image, mask, truth, classes, alpha)
            written += 1
    return written


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
