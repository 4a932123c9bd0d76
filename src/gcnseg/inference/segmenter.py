"""The one inference pipeline: letterbox -> engine -> unletterbox, at each input's own size.

`gcnseg test`, `gcnseg predict`, the ONNX parity test, the HTTP server and the Python API all go
through a `Segmenter`, so a mask from any of them is the same mask.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn

from gcnseg.classes import ClassSet
from gcnseg.data.images import read_image, to_rgb
from gcnseg.data.transforms import Letterbox, letterbox, to_chw_tensor, unletterbox
from gcnseg.errors import GcnsegError
from gcnseg.inference import engines
from gcnseg.io.cache import CacheDir
from gcnseg.runtime import resolve_device

log = logging.getLogger(__name__)

ImageInput = Union[str, Path, Image.Image, np.ndarray, Tensor]  # noqa: UP007 (a runtime alias)
PRETRAINED_CONFIG = "config.json"
PRETRAINED_WEIGHTS = "model.safetensors"
INPUT_DOC = (
    "RGB: a path, a PIL image, an HxWx3 uint8 array, or a CHW / NCHW tensor "
    "(uint8 0-255, or float in [0, 1])"
)


@dataclass
class Segmenter:
    """A model ready to segment images, whatever runs it (see `gcnseg.inference.engines`).

    `predict` returns HxW uint8 class indices at each input's original size; `predict_proba`
    returns (C, H, W) float32 probabilities. Inputs: see INPUT_DOC. A list is run in batches.
    """

    engine: engines.Engine
    classes: ClassSet
    eval_size: int
    model_name: str
    flip: bool = False
    batch_size: int = 4
    scales: tuple[float, ...] = (1.0,)  # multi-scale test-time augmentation: 0.75 1 1.25 ...
    model: nn.Module | None = None  # the torch model, when there is one (not for an .onnx file)
    info: dict[str, Any] = field(default_factory=dict)  # config, metrics, provenance
    engine_reason: str = ""

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

    @staticmethod
    def restore(logits: Tensor, boxes: Sequence[Letterbox]) -> Iterator[Tensor]:
        """Logits (C, H, W) at each image's original size from letterboxed logits (N, C, S, S),
        one image at a time: a 12000² photo's full-size logits alone take 1.7 GB."""
        for i, box in enumerate(boxes):
            yield unletterbox(logits[i], box)

    def predict(self, inputs: ImageInput | Sequence[ImageInput]) -> np.ndarray | list[np.ndarray]:
        """HxW uint8 class indices per input (a list in, a list out)."""
        masks = [logits.argmax(0).to(torch.uint8).cpu().numpy() for logits in self._run(inputs)]
        return masks if _is_many(inputs) else masks[0]

    def predict_proba(
        self, inputs: ImageInput | Sequence[ImageInput]
    ) -> np.ndarray | list[np.ndarray]:
        """(C, H, W) float32 class probabilities per input (a list in, a list out)."""
        probs = [logits.softmax(0).cpu().numpy() for logits in self._run(inputs)]
        return probs if _is_many(inputs) else probs[0]

    def _run(self, inputs: ImageInput | Sequence[ImageInput]) -> Iterator[Tensor]:
        images = [to_image(x) for x in (inputs if _is_many(inputs) else [inputs])]
        images = [image for item in images for image in item]  # NCHW tensors expand
        for start in range(0, len(images), self.batch_size):
            chunk = [
                letterbox(image, self.eval_size)
                for image in images[start : start + self.batch_size]
            ]
            batch = torch.stack([to_chw_tensor(boxed) for boxed, _ in chunk])
            yield from self.restore(self.logits(batch), [box for _, box in chunk])

    def describe(self) -> dict[str, Any]:
        """What `GET /v1/model` reports."""
        from gcnseg import __version__

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
        """safetensors weights + a JSON config (model, classes, colours, eval size, metrics, data)."""
        from safetensors.torch import save_file

        from gcnseg.io.atomic import atomic_path, write_json

        if self.model is None:
            raise GcnsegError(
                "this Segmenter runs an ONNX file: there are no torch weights to save"
            )
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {
            k: v.detach().float().cpu().contiguous() for k, v in self.model.state_dict().items()
        }
        with atomic_path(folder / PRETRAINED_WEIGHTS) as tmp:
            save_file(state, str(tmp), metadata={"format": "pt"})
        write_json(folder / PRETRAINED_CONFIG, self._pretrained_config())
        return folder

    def _pretrained_config(self) -> dict[str, Any]:
        from gcnseg import __version__

        config = self.info.get("config", {})
        return {
            "format": "gcnseg-pretrained",
            "gcnseg_version": __version__,
            "model": config.get("model", {"name": self.model_name}),
            "classes": self.classes.to_dict(),
            "eval_size": self.eval_size,
            "preprocessing": {
                "input": "RGB, letterboxed: longer side to eval_size, padded bottom/right with 0",
                "tensor": "float32 NCHW in [0, 1]; the ImageNet normalisation is inside the model",
                "output": "logits NCHW at the input's size; argmax over C gives class indices",
            },
            "metrics": self.info.get("metrics", {}),
            "training_data": self.info.get("training_data", {}),
            "config": config,
        }


def _is_many(inputs: object) -> bool:
    if isinstance(inputs, (list, tuple)):
        return True
    return isinstance(inputs, Tensor) and inputs.ndim == 4


def to_image(x: ImageInput) -> list[np.ndarray]:
    """HxWx3 uint8 RGB arrays from any accepted input (a NCHW tensor gives several)."""
    if isinstance(x, (str, Path)):
        return [read_image(x)]
    if isinstance(x, Image.Image):
        return [to_rgb(x)]
    if isinstance(x, np.ndarray):
        if x.dtype != np.uint8 or x.ndim != 3 or x.shape[2] != 3:
            raise GcnsegError(
                f"an array input must be HxWx3 uint8 RGB, got {x.dtype} of shape {x.shape}"
            )
        return [x]
    if isinstance(x, Tensor):
        return [_from_tensor(t) for t in (x if x.ndim == 4 else [x])]
    raise GcnsegError(f"cannot segment a {type(x).__name__}: expected {INPUT_DOC}")


def _from_tensor(t: Tensor) -> np.ndarray:
    if t.ndim != 3 or t.shape[0] != 3:
        raise GcnsegError(f"a tensor input must be CHW or NCHW RGB, got shape {tuple(t.shape)}")
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
    `flip` and `scales` (e.g. 0.75, 1, 1.25) turn on test-time augmentation. `cache_dir`: where
    the onnx/openvino engines cache their export (False: nowhere; see `gcnseg.io.cache`)."""
    scales = check_scales(scales)
    path = Path(source)
    if path.suffix == ".onnx":
        return _load_onnx(
            path, engine=engine, flip=flip, scales=scales, size=size, batch_size=batch_size
        )
    if path.is_dir() and (path / PRETRAINED_CONFIG).is_file():
        model, config, classes, info = _read_pretrained(path)
    else:
        from gcnseg.checkpoint import load_checkpoint, model_from_checkpoint

        payload = load_checkpoint(source)
        model, cfg, classes = model_from_checkpoint(payload, source)
        config = cfg.to_dict()
        info = {"config": config, "metrics": payload.get("metrics", {})}
    info["training_data"] = info.get("training_data") or training_data(classes)
    return from_module(
        model,
        classes=classes,
        eval_size=size or config["data"]["eval_size"],
        model_name=config["model"]["name"],
        engine=engine,
        device=device,
        flip=flip,
        scales=scales,
        batch_size=batch_size,
        info=info,
        cache_dir=cache_dir,
    )


def check_scales(scales: Sequence[float]) -> tuple[float, ...]:
    scales = tuple(float(s) for s in scales)
    if not scales or not all(0.25 <= s <= 4 for s in scales):
        raise GcnsegError(f"test-time scales must be between 0.25 and 4, got {list(scales)}")
    return scales


def _resize_uint8(images: Tensor, scale: float) -> Tensor:
    """uint8 NCHW images with each side scaled and rounded to a multiple of 32 (the model's stride)."""
    if scale == 1.0:
        return images
    h, w = (max(32, int(side * scale / 32 + 0.5) * 32) for side in images.shape[-2:])
    resized = F.interpolate(images.float(), size=(h, w), mode="bilinear", align_corners=False)
    return resized.round_().clamp_(0, 255).to(torch.uint8)


def from_module(
    model: nn.Module,
    *,
    classes: ClassSet,
    eval_size: int,
    model_name: str,
    engine: str = "auto",
    device: str | torch.device = "auto",
    flip: bool = False,
    scales: tuple[float, ...] = (1.0,),
    batch_size: int = 4,
    info: dict[str, Any] | None = None,
    cache_dir: CacheDir = None,
) -> Segmenter:
    """A Segmenter around a torch model in memory (a loaded checkpoint, or one being trained)."""
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    name, reason = engines.choose(engine, dev)
    runner = engines.build(
        name, model, device=dev, classes=classes, model_name=model_name, cache_dir=cache_dir
    )
    log.info("engine: %s (%s)", runner.name, reason)
    return Segmenter(
        runner,
        classes=classes,
        eval_size=eval_size,
        model_name=model_name,
        flip=flip,
        scales=scales,
        batch_size=batch_size,
        model=model,
        info=info or {},
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
    from gcnseg.inference.export import META_CLASSES, META_EVAL_SIZE, META_MODEL, META_QUANTIZED

    if engine not in ("auto", "onnx", "onnx-int8", "openvino"):
        raise GcnsegError(f"{path}: an ONNX file runs on ONNX Runtime or OpenVINO, not {engine!r}")
    meta = engines.onnx_metadata(path)
    if META_CLASSES not in meta:
        raise GcnsegError(f"{path}: no class metadata; export it with `gcnseg export`")
    int8 = "-int8" if meta.get(META_QUANTIZED) else ""
    if engine == "openvino":
        runner = engines.OpenVinoEngine(path)
        runner.name += int8
    else:
        runner = engines.OnnxEngine(path, name=f"onnx{int8}")
    classes = ClassSet.from_dict(json.loads(meta[META_CLASSES]))
    eval_size = size or int(meta.get(META_EVAL_SIZE, 0)) or 512
    log.info("engine: %s (an ONNX file was given)", runner.name)
    return Segmenter(
        runner,
        classes=classes,
        eval_size=eval_size,
        model_name=meta.get(META_MODEL, path.stem),
        flip=flip,
        scales=scales,
        batch_size=batch_size,
        info={"training_data": training_data(classes)},
        engine_reason="an ONNX file was given",
    )


def _read_pretrained(folder: Path) -> tuple[nn.Module, dict, ClassSet, dict]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from gcnseg.config import config_from_dict
    from gcnseg.models.registry import build_model

    try:
        meta = json.loads((folder / PRETRAINED_CONFIG).read_text())
        cfg = config_from_dict(meta["config"])
        classes = ClassSet.from_dict(meta["classes"])
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise GcnsegError(f"{folder / PRETRAINED_CONFIG}: not a gcnseg config ({exc})") from None
    try:
        state = load_file(str(folder / PRETRAINED_WEIGHTS))
    except (OSError, SafetensorError) as exc:
        raise GcnsegError(f"{folder / PRETRAINED_WEIGHTS}: unreadable weights ({exc})") from None
    model = build_model(cfg, len(classes.names), backbone_weights="random")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise GcnsegError(f"{folder}: weights do not fit {cfg.model.name} ({first})") from None
    info = {"config": meta["config"], "metrics": meta.get("metrics", {})}
    info["training_data"] = meta.get("training_data", {})
    return model.eval(), meta["config"], classes, info


def training_data(classes: ClassSet) -> dict[str, str]:
    """Provenance for the pretrained config; the pet classes mean Oxford-IIIT Pet."""
    from gcnseg.data.oxford_pets import LICENSE, PETS

    if classes.names == PETS.names:
        return {"name": "Oxford-IIIT Pet", "license": LICENSE}
    return {"name": "user data", "license": "as the data's owner set it"}
