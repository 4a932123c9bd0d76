"""int8 static quantisation of an ONNX export with ONNX Runtime's quantiser.

Activation ranges come from real images letterboxed exactly as at inference, so the int8 model
sees the distribution it will serve; weights are quantised per channel (QDQ format), which keeps
the depthwise convolutions of EfficientNet-Lite accurate. Only the backbone is quantised: the
decoder carries class scores (3 channels for the pets) whose rounding flips boundary pixels,
and it is a few percent of the compute.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from gcnseg.data.images import read_image
from gcnseg.data.transforms import letterbox
from gcnseg.errors import GcnsegError
from gcnseg.io.atomic import atomic_path

INPUT_NAME = "image"


def quantize_int8(fp32: Path, out: Path, images: list[Path], *, size: int) -> Path:
    """Write an int8 copy of the fp32 ONNX model `fp32` at `out`, calibrated on `images`."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from gcnseg.inference.export import META_QUANTIZED

    batches = [_calibration_batch(path, size) for path in images]
    batches = [b for b in batches if b is not None]
    if not batches:
        raise GcnsegError("int8 calibration: none of the calibration images could be read")

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter({INPUT_NAME: b} for b in batches)

        def get_next(self) -> dict | None:
            return next(self.items, None)

    source = onnx.load(str(fp32))
    with tempfile.TemporaryDirectory() as workdir:
        prepared = Path(workdir) / "prepared.onnx"
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
        quantized = Path(workdir) / "int8.onnx"
        quantize_static(
            str(prepared),
            str(quantized),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=[n.name for n in source.graph.node if not _in_backbone(n.name)],
        )
        proto = onnx.load(str(quantized))
    metadata = {p.key: p.value for p in source.metadata_props}
    metadata[META_QUANTIZED] = json.dumps(
        {
            "method": "static int8 backbone (QDQ, per-channel weights, MinMax), fp32 decoder",
            "images": len(batches),
        }
    )
    onnx.helper.set_model_props(proto, metadata)
    out = Path(out)
    with atomic_path(out) as tmp:
        onnx.save(proto, str(tmp))
    return out


def _in_backbone(node: str) -> bool:
    """The exporter names nodes after modules: `/backbone/...`, `/decoder/...`, `/classifier/...`."""
    return node.startswith("/backbone/")


def _calibration_batch(path: Path, size: int) -> np.ndarray | None:
    try:
        image = read_image(path)
    except GcnsegError:
        return None
    boxed, _ = letterbox(image, size)
    return (boxed.transpose(2, 0, 1)[None].astype(np.float32) / 255.0).copy()


def calibration_images(data: Path, manifest: Path | None, count: int) -> list[Path]:
    """`count` images spread evenly over the training split (or all pairs without a manifest)."""
    from gcnseg.data.layouts import index_dataset
    from gcnseg.data.splits import load_manifest, select

    index = index_dataset(data)
    samples = (
        select(index, load_manifest(manifest)["splits"]["train"]) if manifest else index.samples
    )
    if not samples:
        raise GcnsegError(f"{data}: no images to calibrate int8 on")
    step = max(1, len(samples) // count)
    return [s.image for s in samples[::step][:count]]
