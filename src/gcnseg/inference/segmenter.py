"""The one inference pipeline: letterbox -> engine -> unletterbox, at each input's own size.

Loaders yield collated batches of letterboxed images that carry their geometry (or their error,
see `gcnseg.data.dataset.collate`); `Segmenter.stream` turns them into per-image results.
`predict`, `predict_files`, `evaluate` and the HTTP server all consume that one stream, so a mask
from any of them is the same mask.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn

from gcnseg._version import __version__
from gcnseg.classes import ClassSet
from gcnseg.data.dataset import collate
from gcnseg.data.images import exif_orientation, orient, read_image, to_rgb
from gcnseg.data.transforms import letterbox, to_chw_tensor, unletterbox
from gcnseg.errors import GcnsegError
from gcnseg.inference import ONNX_FILE_ENGINES, OPENVINO, engines
from gcnseg.io.cache import CacheDir
from gcnseg.limits import check_batch_size, check_eval_size, check_scales, round_to_stride
from gcnseg.runtime import resolve_device
from gcnseg.source import TrainedModel, read_model, resolve_source, write_pretrained

log = logging.getLogger(__name__)

ImageInput = Union[str, Path, Image.Image, np.ndarray, Tensor]  # noqa: UP007 (a runtime alias)
INPUT_DOC = (
    "RGB: a path, a PIL image, an HxWx3 uint8 array, or a CHW / NCHW tensor "
    "(uint8 0-255, or float in [0, 1])"
)


@dataclass(frozen=True)
class Prediction:
    """One image's result from `Segmenter.stream`: its logits, or why it could not be read."""

    index: int  # the item's index in its loader
    logits: Tensor | None = None  # (C, H, W) float32 at the image's original size
    boxed_logits: Tensor | None = None  # (C, S, S) as the model saw the letterboxed image
    fields: Mapping[str, Any] = field(default_factory=dict)  # the item's per-image batch fields
    error: str | None = None
    name: str = ""  # of an item that could not be read

    @property
    def mask(self) -> np.ndarray:
        """HxW uint8 class indices."""
        return class_indices(self.logits).cpu().numpy()


def class_indices(logits: Tensor, band_rows: int = 256) -> Tensor:
    """HxW uint8 argmax of (C, H, W) logits, a band of rows at a time: a whole-image argmax
    holds int64 indices, 8 bytes a pixel (1.1 GB for a 12000² photo) beside the logits."""
    indices = torch.empty(logits.shape[1:], dtype=torch.uint8, device=logits.device)
    for top in range(0, logits.shape[1], band_rows):
        indices[top : top + band_rows] = logits[:, top : top + band_rows].argmax(0)
    return indices


@dataclass(repr=False)
class Segmenter:
    """A model ready to segment images, whatever runs it (see `gcnseg.inference.engines`).

    `predict` returns HxW uint8 class indices at each input's original size; `predict_proba`
    returns (C, H, W) float32 probabilities. Inputs: see INPUT_DOC. A list is run in batches.
    Make one with `gcnseg.load`.
    """

    engine: engines.Engine
    classes: ClassSet
    eval_size: int
    model_name: str
    flip: bool = False
    batch_size: int = 4
    scales: tuple[float, ...] = (1.0,)  # multi-scale test-time augmentation: 0.75 1 1.25 ...
    # the torch model with its config, metrics and data, when there is one (not for an .onnx)
    trained: TrainedModel | None = None
    engine_reason: str = ""

    def __repr__(self) -> str:
        tta = f"flip={self.flip}, scales={list(self.scales)}"
        return (
            f"Segmenter(model={self.model_name!r}, classes={list(self.classes.names)}, "
            f"engine={self.engine_name!r}, eval_size={self.eval_size}, {tta})"
        )

    @property
    def model(self) -> nn.Module | None:
        """The torch model, when there is one (not for an .onnx file)."""
        return None if self.trained is None else self.trained.model

    @property
    def colors(self) -> tuple[tuple[int, int, int], ...]:
        return self.classes.colors

    @property
    def engine_name(self) -> str:
        return self.engine.name

    def logits(self, images: Tensor) -> Tensor:
        """Float32 logits (N, C, S, S) for letterboxed uint8 images (N, 3, S, S).

        With test-time augmentation, the mean of the logits over `scales` (each side rounded to a
        multiple of 32) and, with `flip`, their mirror images.
        """
        size = images.shape[-2:]
        total = None
        for scale in self.scales:
            scaled = _resize_uint8(images, scale)
            for flipped in (False, True) if self.flip else (False,):
                logits = self.engine(scaled.flip(-1) if flipped else scaled)
                logits = logits.flip(-1) if flipped else logits
                if logits.shape[-2:] != size:
                    logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
                total = logits if total is None else total + logits
        return total / (len(self.scales) * (2 if self.flip else 1))

    def stream(self, batches: Iterable[Mapping[str, Any]]) -> Iterator[Prediction]:
        """Per-image predictions, in order, for collated batches: an item that could not be read
        comes out as an error `Prediction`; logits are restored to each image's own size one
        image at a time (a 12000² photo's full-size logits alone take 1.7 GB)."""
        for batch in batches:
            for index, name, message in batch["errors"]:
                yield Prediction(int(index), error=message, name=name)
            if len(batch["index"]) == 0:
                continue
            boxed = self.logits(batch["image"])
            per_image = [
                key for key in ("letterbox", "original_label", "original_image") if key in batch
            ]
            for row, index in enumerate(batch["index"].tolist()):
                fields = {key: batch[key][row] for key in per_image}
                if "label" in batch:
                    fields["label"] = batch["label"][row]
                yield Prediction(
                    index,
                    logits=unletterbox(boxed[row], fields["letterbox"]),
                    boxed_logits=boxed[row],
                    fields=fields,
                )

    def predict(self, inputs: ImageInput | Sequence[ImageInput]) -> np.ndarray | list[np.ndarray]:
        """HxW uint8 class indices per input (a list in, a list out)."""
        masks = [p.mask for p in self._run(inputs)]
        return masks if _is_many(inputs) else masks[0]

    def predict_proba(
        self, inputs: ImageInput | Sequence[ImageInput]
    ) -> np.ndarray | list[np.ndarray]:
        """(C, H, W) float32 class probabilities per input (a list in, a list out)."""
        probs = [p.logits.softmax(0).cpu().numpy() for p in self._run(inputs)]
        return probs if _is_many(inputs) else probs[0]

    def _run(self, inputs: ImageInput | Sequence[ImageInput]) -> Iterator[Prediction]:
        images = [to_image(x) for x in (inputs if _is_many(inputs) else [inputs])]
        images = [image for item in images for image in item]  # NCHW tensors expand
        yield from self.stream(self._batches(images))

    def _batches(self, images: list[np.ndarray]) -> Iterator[dict[str, Any]]:
        for start in range(0, len(images), self.batch_size):
            items = []
            for index, image in enumerate(images[start : start + self.batch_size], start):
                boxed, box = letterbox(image, self.eval_size)
                items.append({"index": index, "image": to_chw_tensor(boxed), "letterbox": box})
            yield collate(items)

    def describe(self) -> dict[str, Any]:
        """What `GET /v1/model` reports."""
        return {
            "name": self.model_name,
            "classes": list(self.classes.names),
            "colors": [list(c) for c in self.classes.colors],
            "eval_size": self.eval_size,
            "engine": self.engine.name,
            "engine_reason": self.engine_reason,
            "flip": self.flip,
            "scales": list(self.scales),
            "version": __version__,
        }

    def save_pretrained(self, folder: str | Path) -> Path:
        """safetensors weights + a JSON config (model, classes, eval size, metrics, data) that
        `gcnseg.load(folder)` reads back."""
        if self.trained is None:
            raise GcnsegError(
                "this Segmenter runs an ONNX file: there are no torch weights to save"
            )
        return write_pretrained(folder, self.trained, eval_size=self.eval_size)


def _is_many(inputs: object) -> bool:
    if isinstance(inputs, (list, tuple)):
        return True
    return isinstance(inputs, Tensor) and inputs.ndim == 4


def to_image(x: ImageInput) -> list[np.ndarray]:
    """HxWx3 uint8 RGB arrays from any accepted input (a NCHW tensor gives several)."""
    if isinstance(x, (str, Path)):
        return [read_image(x, upright=True)]  # a phone photo as every viewer shows it
    if isinstance(x, Image.Image):
        return [orient(to_rgb(x), exif_orientation(x))]
    if isinstance(x, np.ndarray):
        return [_from_array(x)]
    if isinstance(x, Tensor):
        return [_from_tensor(t) for t in (x if x.ndim == 4 else [x])]
    raise GcnsegError(f"cannot segment a {type(x).__name__}: expected {INPUT_DOC}")


def _from_array(x: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 RGB from an HxWx3 or HxW (grey) uint8 array with pixels in it."""
    if x.dtype != np.uint8 or x.ndim not in (2, 3) or (x.ndim == 3 and x.shape[2] != 3):
        raise GcnsegError(
            f"an array input must be HxWx3 (RGB) or HxW (grey) uint8, got {x.dtype} of shape {x.shape}"
        )
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise GcnsegError(f"an array input must hold pixels, got shape {x.shape}")
    return np.repeat(x[..., None], 3, axis=2) if x.ndim == 2 else x


def _from_tensor(t: Tensor) -> np.ndarray:
    if t.ndim != 3 or t.shape[0] != 3:
        raise GcnsegError(f"a tensor input must be CHW or NCHW RGB, got shape {tuple(t.shape)}")
    if t.shape[1] == 0 or t.shape[2] == 0:
        raise GcnsegError(f"a tensor input must hold pixels, got shape {tuple(t.shape)}")
    t = t.detach().cpu()
    if t.is_floating_point():
        low, high = float(t.min()), float(t.max())
        if low < 0 or high > 1 or not np.isfinite([low, high]).all():
            raise GcnsegError(
                f"a float tensor must hold values in [0, 1], got [{low:g}, {high:g}] "
                "(divide 0-255 images by 255, or pass uint8)"
            )
        t = (t * 255).round().to(torch.uint8)
    elif t.dtype != torch.uint8:
        raise GcnsegError(f"a tensor input must be uint8 or float, got {t.dtype}")
    return np.ascontiguousarray(t.permute(1, 2, 0).numpy())


def load(
    source: str | Path = "pets-default",
    *,
    engine: str = "auto",
    device: str = "auto",
    flip: bool = False,
    scales: Sequence[float] = (1.0,),
    size: int | None = None,
    batch_size: int = 4,
    cache_dir: CacheDir = None,
) -> Segmenter:
    """A Segmenter for a packaged model's name, a run folder, a checkpoint, a folder written by
    `save_pretrained`, or an exported `.onnx` file. `engine`: see `gcnseg.inference.engines`.
    `flip` and `scales` (e.g. 0.75, 1, 1.25) turn on test-time augmentation; `size` overrides
    the eval size (the side images are letterboxed to). `cache_dir`: where the onnx/openvino
    engines cache their export (False: nowhere; see `gcnseg.io.cache`)."""
    scales = check_scales(scales)
    batch_size = check_batch_size(batch_size)
    if size is not None:
        size = check_eval_size(size)
    where = resolve_source(source)
    if where.kind == "onnx":
        return _load_onnx(
            where.path, engine=engine, flip=flip, scales=scales, size=size, batch_size=batch_size
        )
    trained = read_model(where)
    return from_module(
        trained,
        eval_size=size or trained.eval_size,
        engine=engine,
        device=device,
        flip=flip,
        scales=scales,
        batch_size=batch_size,
        cache_dir=cache_dir,
    )


def _resize_uint8(images: Tensor, scale: float) -> Tensor:
    """uint8 NCHW images with each side scaled and rounded to the model's stride."""
    if scale == 1.0:
        return images
    h, w = (round_to_stride(side * scale) for side in images.shape[-2:])
    resized = F.interpolate(images.float(), size=(h, w), mode="bilinear", align_corners=False)
    return resized.round_().clamp_(0, 255).to(torch.uint8)


def from_module(
    trained: TrainedModel,
    *,
    eval_size: int | None = None,
    engine: str = "auto",
    device: str | torch.device = "auto",
    flip: bool = False,
    scales: Sequence[float] = (1.0,),
    batch_size: int = 4,
    cache_dir: CacheDir = None,
) -> Segmenter:
    """A Segmenter around a torch model in memory (a loaded checkpoint, or one being trained)."""
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    name, reason = engines.choose(engine, dev)
    runner = engines.build(
        name,
        trained.model,
        device=dev,
        classes=trained.classes,
        model_name=trained.name,
        cache_dir=cache_dir,
    )
    log.info("engine: %s (%s)", runner.name, reason)
    return Segmenter(
        runner,
        classes=trained.classes,
        eval_size=check_eval_size(eval_size or trained.eval_size),
        model_name=trained.name,
        flip=flip,
        scales=check_scales(scales),
        batch_size=check_batch_size(batch_size),
        trained=trained,
        engine_reason=reason,
    )


def _load_onnx(
    path: Path,
    *,
    engine: str,
    flip: bool,
    scales: tuple[float, ...],
    size: int | None,
    batch_size: int,
) -> Segmenter:
    from gcnseg.inference.onnx_format import read_info

    if engine not in ONNX_FILE_ENGINES:
        raise GcnsegError(f"{path}: an ONNX file runs on ONNX Runtime or OpenVINO, not {engine!r}")
    info = read_info(path)
    int8 = "-int8" if info.quantized else ""
    if engine == OPENVINO:
        runner = engines.OpenVinoEngine(path)
        runner.name += int8
    else:
        runner = engines.OnnxEngine(path, name=f"onnx{int8}")
    log.info("engine: %s (an ONNX file was given)", runner.name)
    return Segmenter(
        runner,
        classes=info.classes,
        eval_size=size or info.eval_size or 512,
        model_name=info.model_name,
        flip=flip,
        scales=scales,
        batch_size=batch_size,
        engine_reason="an ONNX file was given",
    )
