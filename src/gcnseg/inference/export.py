"""ONNX export: dynamic batch/height/width, classes and model name in the file's metadata.

The graph takes what the torch model takes (float32 RGB in [0, 1], NCHW; normalisation is inside)
and returns logits at the input's size, so a deployment needs nothing from gcnseg but the file.
"""

from __future__ import annotations

import copy
import json
import tempfile
import warnings
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import torch
from torch import nn

from gcnseg.classes import ClassSet
from gcnseg.errors import GcnsegError
from gcnseg.extras import install_hint
from gcnseg.inference.onnx_format import (
    INPUT_FORMAT,
    INPUT_NAME,
    META_CLASSES,
    META_EVAL_SIZE,
    META_INPUT,
    META_MODEL,
    ONNX_OPSETS,
    OUTPUT_NAME,
)
from gcnseg.io.atomic import atomic_path, ensure_writable
from gcnseg.source import read_model

if TYPE_CHECKING:
    import onnx

_DYNAMIC_AXES = {0: "batch", 2: "height", 3: "width"}


def export_onnx(
    model: nn.Module,
    out: Path,
    *,
    classes: ClassSet,
    opset: int = 17,
    sample_size: int = 256,
    model_name: str | None = None,
    eval_size: int | None = None,
) -> Path:
    """Write `model` as a checked ONNX file at `out` (atomically) and return the path.

    A fp32 CPU copy in eval mode is exported, so the caller's model (maybe bf16, channels-last, on
    a GPU, in train mode) is left untouched.
    """
    if opset not in ONNX_OPSETS:
        raise GcnsegError(
            f"opset {opset} is not supported; use {ONNX_OPSETS.start} to {ONNX_OPSETS.stop - 1}"
        )
    onnx_module = _import_onnx()
    model = copy.deepcopy(model).float().cpu().eval()
    sample = torch.zeros(1, 3, sample_size, sample_size)  # only its shape is traced
    _check_class_count(model, classes)
    out = Path(out)
    with atomic_path(out) as tmp:
        _trace_export(model, sample, tmp, opset)
        proto = onnx_module.load(str(tmp))
        _name_class_axis(proto, len(classes.names))
        metadata = {
            META_CLASSES: json.dumps(classes.to_dict()),
            META_MODEL: model_name or type(model).__name__,
            META_INPUT: INPUT_FORMAT,
        }
        if eval_size:
            metadata[META_EVAL_SIZE] = str(eval_size)
        onnx_module.helper.set_model_props(proto, metadata)
        onnx_module.checker.check_model(proto, full_check=True)
        onnx_module.save(proto, str(tmp))
    return out


def export_model(
    source: str | Path,
    out: str | Path,
    *,
    opset: int = 17,
    int8_data: str | Path | None = None,
    int8_manifest: str | Path | None = None,
    calibration_images: int = 32,
) -> Path:
    """Export the model `source` names (packaged name, run, checkpoint or saved folder) in the
    format `out`'s name asks for: `.onnx`, `.pt` / `.pt.gz` (a slim fp16 checkpoint), or a folder
    (no suffix) of safetensors weights + config.json for `gcnseg.load`.

    With `int8_data` (a dataset root; `int8_manifest` picks its training split), the ONNX model
    is quantised to int8, calibrated on `calibration_images` images of it.
    """
    out = Path(out)
    suffix = out.suffix.lower()
    if int8_data is not None and suffix != ".onnx":
        raise GcnsegError(f"{out}: an int8 export is an ONNX model; name it *.onnx")
    ensure_writable(out, "the exported model", folder=not suffix)
    if out.name.lower().endswith((".pt", ".pt.gz")):
        from gcnseg.checkpoint import save_release

        return save_release(read_model(source), out)
    if suffix == ".onnx":
        images = None
        if int8_data is not None:
            from gcnseg.inference.quantize import calibration_images as pick

            images = pick(
                Path(int8_data), int8_manifest and Path(int8_manifest), calibration_images
            )
        return export_checkpoint(source, out, opset, int8_calibration=images)
    if suffix:
        raise GcnsegError(
            f"{out}: unknown export format {out.suffix!r}; name it *.onnx, *.pt, *.pt.gz, "
            "or a folder (no suffix) for safetensors + config.json"
        )
    from gcnseg.source import write_pretrained

    trained = read_model(source)
    return write_pretrained(out, trained, eval_size=trained.eval_size)


def export_checkpoint(
    source: str | Path,
    out: Path,
    opset: int = 17,
    *,
    int8_calibration: list[Path] | None = None,
) -> Path:
    """Export the model `source` names to ONNX with its classes and eval size.

    With `int8_calibration` (image files, e.g. training images), the ONNX model is quantised to
    int8 (static, QDQ, per-channel weights), its activation ranges taken from those images.
    """
    trained = read_model(source)
    kwargs = {"classes": trained.classes, "opset": opset, "model_name": trained.name}
    if not int8_calibration:
        return export_onnx(trained.model, out, eval_size=trained.eval_size, **kwargs)
    from gcnseg.inference.quantize import quantize_int8

    with tempfile.TemporaryDirectory() as workdir:
        fp32 = export_onnx(
            trained.model, Path(workdir) / "fp32.onnx", eval_size=trained.eval_size, **kwargs
        )
        return quantize_int8(fp32, out, int8_calibration, size=trained.eval_size)


def _import_onnx() -> ModuleType:
    try:
        import onnx
    except ImportError:
        raise GcnsegError(f"onnx is not installed: {install_hint('onnx')}") from None
    return onnx


def _check_class_count(model: nn.Module, classes: ClassSet) -> None:
    """The metadata must describe the logits' channels, or every prediction is mislabelled."""
    with torch.no_grad():
        channels = model(torch.zeros(1, 3, 64, 64)).shape[1]
    if channels != len(classes.names):
        named = len(classes.names)
        raise GcnsegError(f"the model outputs {channels} classes but {named} are named")


def _trace_export(model: nn.Module, sample: torch.Tensor, path: Path, opset: int) -> None:
    """The TorchScript exporter: it keeps `F.interpolate(size=input size)` dynamic via Shape ops."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "legacy exporter": chosen on purpose
        torch.onnx.export(
            model,
            (sample,),
            str(path),
            dynamo=False,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: _DYNAMIC_AXES, OUTPUT_NAME: _DYNAMIC_AXES},
            do_constant_folding=True,
        )


def _name_class_axis(proto: onnx.ModelProto, num_classes: int) -> None:
    """The exporter leaves the class axis symbolic; make it the fixed count consumers expect."""
    (output,) = proto.graph.output
    output.type.tensor_type.shape.dim[1].dim_value = num_classes
