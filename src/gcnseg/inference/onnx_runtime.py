"""Run an exported model with ONNX Runtime behind the torch model's interface (tensors in and out).

Prediction code can hold either a `GCN` or an `OnnxSegmenter`: both take float RGB in [0, 1], NCHW
and return logits (N, C, H, W) as a torch tensor.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import numpy as np
import torch

from gcnseg.classes import ClassSet
from gcnseg.errors import GcnsegError
from gcnseg.inference.export import META_CLASSES, META_MODEL


class OnnxSegmenter:
    """An ONNX Runtime session for a gcnseg export; `classes` come from the file's metadata."""

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        ort = _import_onnxruntime()
        path = Path(path)
        if not path.is_file():
            raise GcnsegError(f"{path}: ONNX model not found")
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
        providers = ["CPUExecutionProvider"]
        if "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as exc:  # ORT's errors share no base class beyond Exception
            raise GcnsegError(f"{path}: not a loadable ONNX model ({exc})") from None
        metadata = self.session.get_modelmeta().custom_metadata_map
        if META_CLASSES not in metadata:
            raise GcnsegError(f"{path}: no class metadata; export it with `gcnseg export`")
        self.classes = ClassSet.from_dict(json.loads(metadata[META_CLASSES]))
        self.model_name = metadata.get(META_MODEL, "")
        self.path = path
        self._input = self.session.get_inputs()[0].name

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Logits (N, C, H, W) for float [0, 1] images (N, 3, H, W), on the images' device."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise GcnsegError(f"expected images of shape (N, 3, H, W), got {tuple(images.shape)}")
        batch = np.ascontiguousarray(images.detach().to("cpu", torch.float32).numpy())
        (logits,) = self.session.run(None, {self._input: batch})
        return torch.from_numpy(logits).to(images.device)


def _import_onnxruntime() -> ModuleType:
    try:
        import onnxruntime
    except ImportError:
        raise GcnsegError("onnxruntime is not installed: pip install gcnseg[onnx]") from None
    return onnxruntime
