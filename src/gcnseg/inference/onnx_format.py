"""What a gcnseg ONNX file is: its input/output names and the metadata keys it carries.

A leaf: the exporter writes these names, the quantiser copies them, `gcnseg.load(file.onnx)`
reads them back, and none of them imports another.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from gcnseg.classes import ClassSet
from gcnseg.data.transforms import to_unit_range
from gcnseg.errors import GcnsegError
from gcnseg.limits import check_eval_size

INPUT_NAME = "image"
OUTPUT_NAME = "logits"
INPUT_FORMAT = "float32 RGB in [0, 1], NCHW, any batch/height/width; output logits NCHW"
# metadata_props keys
META_CLASSES = "gcnseg.classes"
META_MODEL = "gcnseg.model"
META_INPUT = "gcnseg.input"
META_EVAL_SIZE = "gcnseg.eval_size"
META_QUANTIZED = "gcnseg.quantized"  # how an int8 model was calibrated; absent for fp32
ONNX_OPSETS = range(13, 21)  # what the exporter and ONNX Runtime both handle for these models


def exported_input(images: Tensor) -> np.ndarray:
    """What an exported graph takes: float32 RGB in [0, 1], NCHW, contiguous, on the CPU."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise GcnsegError(f"expected images of shape (N, 3, H, W), got {tuple(images.shape)}")
    batch = images.detach().cpu()
    if batch.dtype == torch.uint8:
        batch = to_unit_range(batch)
    return np.ascontiguousarray(batch.numpy())


@dataclass(frozen=True)
class OnnxInfo:
    """The checked metadata of a gcnseg ONNX file."""

    classes: ClassSet
    model_name: str
    eval_size: int | None
    quantized: bool


def read_metadata(path: Path) -> dict[str, str]:
    """The metadata_props of an ONNX file (its weights are not loaded)."""
    import onnx

    if not path.is_file():
        raise GcnsegError(f"{path}: ONNX model not found")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError and onnx's own errors
        raise GcnsegError(f"{path}: not a loadable ONNX model ({exc})") from None
    return {prop.key: prop.value for prop in proto.metadata_props}


def read_info(path: Path) -> OnnxInfo:
    """The file's classes, model name and eval size, each checked: a file with broken metadata is
    one line naming it, not a traceback in whoever reads it."""
    meta = read_metadata(path)
    if META_CLASSES not in meta:
        raise GcnsegError(f"{path}: no class metadata; export it with `gcnseg export`")
    try:
        classes = ClassSet.from_dict(json.loads(meta[META_CLASSES]))
    except (json.JSONDecodeError, GcnsegError) as exc:
        raise GcnsegError(f"{path}: bad {META_CLASSES} metadata ({exc})") from None
    eval_size = None
    if META_EVAL_SIZE in meta:
        text = meta[META_EVAL_SIZE]
        try:
            eval_size = check_eval_size(int(text) if text.isdigit() else text, META_EVAL_SIZE)
        except GcnsegError as exc:
            raise GcnsegError(f"{path}: bad {META_EVAL_SIZE} metadata ({exc})") from None
    return OnnxInfo(
        classes=classes,
        model_name=meta.get(META_MODEL) or path.stem,
        eval_size=eval_size,
        quantized=bool(meta.get(META_QUANTIZED)),
    )
