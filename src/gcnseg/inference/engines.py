"""Engines: what runs the network. Each takes letterboxed uint8 images (N, 3, S, S) and returns
float32 logits (N, C, S, S) on the CPU, so the Segmenter above them is the same for all.

- `torch`: the model itself, channels-last, bf16 autocast where the CPU computes bf16 natively
  (AVX-512 BF16 or AMX: detected, never assumed; emulated bf16 is about 10x slower).
- `onnx`: ONNX Runtime on an export of the same weights (exported once, cached by content hash:
  see `gcnseg.io.cache` for where, how to turn it off and its size cap).
- `onnx-int8`: ONNX Runtime on a statically quantised export (`gcnseg export --int8`).
- `openvino`: OpenVINO on the same ONNX export (optional extra), bf16 where the CPU has it.

`auto` picks the fastest engine that is installed and accurate on this machine (see `choose`).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import json
import logging
import queue
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Protocol

import numpy as np
import torch
from torch import Tensor, nn

from gcnseg._version import __version__
from gcnseg.classes import ClassSet
from gcnseg.errors import GcnsegError
from gcnseg.extras import install_hint
from gcnseg.inference import (
    AUTO,
    ENGINES,
    ONNX,
    ONNX_INT8,
    OPENVINO,
    TORCH,
    TORCH_BF16,
    TORCH_FP32,
)
from gcnseg.inference.onnx_format import exported_input
from gcnseg.io.cache import CacheDir, cache_folder, cache_root, evict, limit_bytes, touch
from gcnseg.runtime import autocast, cpu_features, prepare_images

log = logging.getLogger(__name__)


class Engine(Protocol):
    name: str

    def __call__(self, images: Tensor) -> Tensor: ...


@dataclass
class TorchEngine:
    """The torch model on `device`; `amp` is "none", "bf16" or "fp16"."""

    model: nn.Module
    device: torch.device
    amp: str = "none"
    channels_last: bool = True

    def __post_init__(self) -> None:
        self.model.eval()
        self.model.to(self.device)
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)

    @property
    def name(self) -> str:
        precision = "fp32" if self.amp == "none" else self.amp
        suffix = "" if self.device.type == "cpu" else f"-{self.device.type}"
        return f"torch-{precision}{suffix}"

    def __call__(self, images: Tensor) -> Tensor:
        batch = prepare_images(images, self.device, self.channels_last)
        with torch.inference_mode(), autocast(self.device, self.amp):
            return self.model(batch).float()


class OnnxEngine:
    """An ONNX Runtime session over a gcnseg export (float RGB in [0, 1], NCHW in; logits out)."""

    def __init__(self, path: str | Path, *, threads: int | None = None, name: str = "onnx"):
        ort = import_onnxruntime()
        path = Path(path)
        if not path.is_file():
            raise GcnsegError(f"{path}: ONNX model not found")
        options = ort.SessionOptions()
        if not cpu_features()["vnni"]:
            # Without VNNI, ONNX Runtime's default u8s8 int8 kernels add pairs of products in
            # saturating 16-bit registers, so an int8 model loses accuracy (pets-default int8 on
            # an AVX2 EPYC: torch fp32's class on 99.35% of pixels, 99.59% with this option, which
            # picks exact u8u8 kernels). With VNNI the sums are 32-bit and the option would only
            # cost: 57 -> 27 img/s on a Xeon with AMX. Float models are unaffected.
            options.add_session_config_entry("session.x64quantprecision", "1")
        if threads is not None:
            options.intra_op_num_threads = threads
        providers = ["CPUExecutionProvider"]
        if "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as exc:  # ORT's errors share no base class beyond Exception
            raise GcnsegError(f"{path}: not a loadable ONNX model ({exc})") from None
        self.path = path
        self.name = name
        self._input = self.session.get_inputs()[0].name

    def __call__(self, images: Tensor) -> Tensor:
        (logits,) = self.session.run(None, {self._input: exported_input(images)})
        return torch.from_numpy(logits)


class OpenVinoEngine:
    """OpenVINO's CPU plugin on an ONNX export; bf16 inference where the CPU computes it natively.

    An infer request runs one inference at a time ("Infer Request is busy" otherwise), so each
    call borrows an idle one from a pool, made when none is idle: as many as calls that ever
    overlapped, and threads may share the engine as they do the other engines.
    """

    def __init__(self, path: Path, *, threads: int | None = None) -> None:
        try:
            import openvino
        except ImportError:
            raise GcnsegError(f"openvino is not installed: {install_hint('openvino')}") from None
        precision = "bf16" if native_bf16() else "f32"
        config = {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY"}
        if threads is not None:
            config["INFERENCE_NUM_THREADS"] = threads
        try:
            self.model = openvino.Core().compile_model(str(path), "CPU", config)
        except Exception as exc:  # OpenVINO raises RuntimeError and its own types
            raise GcnsegError(f"{path}: not a loadable ONNX model ({exc})") from None
        self._idle: queue.SimpleQueue = queue.SimpleQueue()
        self._idle.put(self.model.create_infer_request())
        self.name = f"openvino-{precision}"

    def __call__(self, images: Tensor) -> Tensor:
        try:
            request = self._idle.get_nowait()
        except queue.Empty:
            request = self.model.create_infer_request()
        try:
            result = request.infer({0: exported_input(images)})
            # A copy: the request's output tensor is overwritten by its next inference.
            return torch.from_numpy(np.array(result[self.model.output(0)]))
        finally:
            self._idle.put(request)


def import_onnxruntime() -> ModuleType:
    try:
        import onnxruntime
    except ImportError:
        raise GcnsegError(f"onnxruntime is not installed: {install_hint('onnx')}") from None
    return onnxruntime


def onnx_available() -> bool:
    try:
        import_onnxruntime()
        import onnx  # noqa: F401  (the exporter needs it)
    except (GcnsegError, ImportError):
        return False
    return True


def native_bf16() -> bool:
    """True where bf16 matmuls and convolutions run in hardware (AVX-512 BF16 or AMX)."""
    return bool(cpu_features().get("native_bf16"))


def choose(requested: str, device: torch.device) -> tuple[str, str]:
    """The engine to use for `requested` ("auto" or a name in ENGINES), and why.

    The order `auto` follows was measured with `gcnseg bench` (benchmarks/README.md), each engine
    within the accuracy guard of torch fp32: with native bf16, OpenVINO in bf16 is fastest, then
    ONNX Runtime fp32, then torch with bf16 autocast; without it, bf16 is emulated and slow, and
    ONNX Runtime fp32 beats torch. On a GPU, torch. int8 is never chosen by itself: it needs
    calibration images (`gcnseg export --int8`); load its file to use it.
    """
    if requested not in ENGINES:
        raise GcnsegError(f"unknown engine {requested!r}; choose from {', '.join(ENGINES)}")
    if requested == TORCH:
        requested = TORCH_BF16 if device.type == "cpu" and native_bf16() else TORCH_FP32
        return requested, "torch asked for; bf16 autocast " + (
            "on (the CPU has native bf16)" if requested == TORCH_BF16 else "off"
        )
    if requested != AUTO:
        return requested, "asked for"
    if device.type != "cpu":
        return TORCH_FP32, f"a {device.type} device is in use"
    if native_bf16() and openvino_available():
        return OPENVINO, "the CPU has native bf16 and OpenVINO is installed: fastest measured"
    missing = _faster_engine_missing()
    if onnx_available():
        return ONNX, "ONNX Runtime fp32 is the fastest installed engine" + missing
    if native_bf16():
        return TORCH_BF16, "onnxruntime is not installed; the CPU has native bf16" + missing
    return TORCH_FP32, "onnxruntime is not installed and the CPU has no native bf16" + missing


def _faster_engine_missing() -> str:
    """What `auto` would have taken on this CPU had it been installed, and how to install it."""
    if native_bf16():
        extras = ("openvino",) if onnx_available() else ("onnx", "openvino")
        return f"; OpenVINO in bf16 is faster on this CPU, install it: {install_hint(*extras)}"
    if not onnx_available():
        return f"; ONNX Runtime is faster on this CPU, install it: {install_hint('onnx')}"
    return ""


def openvino_available() -> bool:
    return onnx_available() and importlib.util.find_spec(OPENVINO) is not None


def build(
    name: str,
    model: nn.Module,
    *,
    device: torch.device,
    classes: ClassSet,
    model_name: str,
    onnx_path: Path | None = None,
    cache_dir: CacheDir = None,
) -> Engine:
    """Make engine `name` (already chosen) for `model`; ONNX files are exported and cached
    (`cache_dir`: see `gcnseg.io.cache`, False for no cache)."""
    if name in (TORCH_FP32, TORCH_BF16):
        return TorchEngine(model, device, amp="none" if name == TORCH_FP32 else "bf16")
    if name == ONNX_INT8:
        if onnx_path is None:
            raise GcnsegError(
                "engine onnx-int8 needs a quantised model: `gcnseg export --int8 ... --out "
                "model.int8.onnx`, then pass it as the checkpoint"
            )
        return OnnxEngine(onnx_path, name=name)
    if name not in (ONNX, OPENVINO):
        raise GcnsegError(f"unknown engine {name!r}")
    make = OpenVinoEngine if name == OPENVINO else OnnxEngine
    if onnx_path is not None:
        return make(onnx_path)
    # Both read the whole file when they start: a temporary export may go right after.
    with cached_export(model, classes, model_name, cache_dir) as path:
        return make(path)


@contextlib.contextmanager
def cached_export(
    model: nn.Module, classes: ClassSet, model_name: str, cache_dir: CacheDir = None
) -> Iterator[Path]:
    """`model` exported to ONNX once per distinct model (`weights_digest`), under
    `<cache>/weights/onnx` (least recently used exports deleted past the cache's size cap); with
    the cache off, an export into a temporary folder that lasts the block."""
    from gcnseg.inference.export import export_onnx

    root = cache_root(cache_dir)
    limit = limit_bytes() if root else 0  # a bad setting fails before the export, not after
    with cache_folder(None if root is None else root / "weights" / "onnx") as folder:
        path = folder / (f"{weights_digest(model, classes)}.onnx" if root else "model.onnx")
        if path.is_file():
            touch(path)
        else:
            log.info("exporting the model to ONNX%s: %s", " once" if root else "", path)
            export_onnx(model, path, classes=classes, model_name=model_name)
            if root is not None:
                for old in evict(folder, "*.onnx", limit, keep=path):
                    log.info("ONNX cache over %g MB: deleted %s", limit / 2**20, old.name)
        yield path


def weights_digest(model: nn.Module, classes: ClassSet) -> str:
    """A content hash of the architecture, weights, classes and gcnseg version: the ONNX cache
    key. The architecture (the module tree as printed) counts because the same weights run
    another graph with another `model.refine`; the version, because an export may change."""
    digest = hashlib.sha256(json.dumps(classes.to_dict()).encode())
    digest.update(f"{__version__}\n{model!r}".encode())
    for key, value in model.state_dict().items():
        digest.update(key.encode())
        buffer = io.BytesIO()
        np.save(buffer, value.detach().float().cpu().numpy())
        digest.update(buffer.getvalue())
    return digest.hexdigest()[:32]
