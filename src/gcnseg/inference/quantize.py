"""int8 static quantisation of an ONNX export with ONNX Runtime's quantiser.

Activation ranges come from real images letterboxed exactly as at inference, so the int8 model
sees the distribution it will serve; weights are quantised per channel (QDQ format), which keeps
the depthwise convolutions of EfficientNet-Lite accurate. What stays in float, chosen by the
share of pixels whose class agrees with fp32 on the pets test split (benchmarks/README.md): the
decoder, whose channels are class scores and a small share of the compute, and the backbone's
stem and first block, at half resolution, where rounding moves object borders.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from gcnseg.data.images import read_image
from gcnseg.data.transforms import letterbox, to_chw_tensor
from gcnseg.errors import GcnsegError
from gcnseg.inference.onnx_format import INPUT_NAME, META_QUANTIZED, exported_input
from gcnseg.io.atomic import atomic_path


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
            nodes_to_exclude=float_nodes(source.graph),
        )
        proto = onnx.load(str(quantized))
    metadata = {p.key: p.value for p in source.metadata_props}
    metadata[META_QUANTIZED] = json.dumps(
        {
            "method": "static int8 (QDQ, per-channel weights, MinMax); stem, first block and decoder in fp32",
            "images": len(batches),
        }
    )
    onnx.helper.set_model_props(proto, metadata)
    out = Path(out)
    with atomic_path(out) as tmp:
        onnx.save(proto, str(tmp))
    return out


def float_nodes(graph) -> list[str]:
    """Nodes kept in float: all but the backbone's, and the backbone's until its third module
    holding a convolution (EfficientNet-Lite: `_conv_stem`, `_blocks.0`; ResNet: `conv1`,
    `layer1`). The exporter names nodes after modules: `/backbone/_blocks.3/...`."""
    kept, stages = [], []
    for node in graph.node:
        parts = node.name.split("/")
        if len(parts) < 3 or parts[1] != "backbone":
            kept.append(node.name)
            continue
        if node.op_type == "Conv" and parts[2] not in stages:
            stages.append(parts[2])
        if len(stages) <= 2:
            kept.append(node.name)
    return kept


def _calibration_batch(path: Path, size: int) -> np.ndarray | None:
    try:
        image = read_image(path)
    except GcnsegError:
        return None
    boxed, _ = letterbox(image, size)
    return exported_input(to_chw_tensor(boxed)[None])


def calibration_images(data: Path, manifest: Path | None, count: int) -> list[Path]:
    """`count` images spread evenly over the training split (or all pairs without a manifest)."""
    from gcnseg.data.layouts import index_dataset
    from gcnseg.data.splits import split_samples

    samples = split_samples(index_dataset(data), manifest, "train")
    if not samples:
        raise GcnsegError(f"{data}: no images to calibrate int8 on")
    step = max(1, len(samples) // count)
    return [s.image for s in samples[::step][:count]]
