"""What the hardware offers and how to use it: the device, autocast, input layout, CPU features."""

from __future__ import annotations

import contextlib
import platform
from pathlib import Path

import torch
from torch import Tensor


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        from gcnseg.errors import GcnsegError

        raise GcnsegError("--device cuda asked for, but no CUDA GPU is available")
    return torch.device(name)


def autocast(device: torch.device, amp: str) -> contextlib.AbstractContextManager:
    if amp == "none":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def resolve_amp(amp: str, device: torch.device) -> tuple[str, str]:
    """The autocast precision training uses for `amp` ("auto" or a precision), and why.

    `auto` is bf16 where it runs in hardware: a CPU with native bf16 (AVX-512 BF16 or AMX, where
    it trains faster than fp32 and in less memory) or a GPU that supports it; fp16 on older GPUs;
    fp32 on other CPUs, where bf16 is emulated and several times slower (benchmarks/README.md).
    """
    if amp == "bf16" and device.type == "cpu" and not cpu_features()["native_bf16"]:
        return amp, "asked for, though this CPU has no native bf16: emulated, several times slower"
    if amp != "auto":
        return amp, "asked for"
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return "bf16", "the GPU supports bf16"
        return "fp16", "the GPU has no bf16"
    if device.type == "cpu" and cpu_features()["native_bf16"]:
        return "bf16", "the CPU has native bf16"
    return "none", "the CPU has no native bf16 (it would be emulated and slower than fp32)"


def prepare_images(images: Tensor, device: torch.device, channels_last: bool) -> Tensor:
    """uint8 NCHW from the loader -> float [0, 1] on the device, in the model's memory format."""
    from gcnseg.data.transforms import to_unit_range

    images = to_unit_range(images.to(device, non_blocking=True))
    return images.contiguous(memory_format=torch.channels_last) if channels_last else images


def cpu_features(cpuinfo: str | None = None) -> dict[str, str | bool]:
    """The CPU's model and the instruction sets that decide which precision and kernels are fast.

    `native_bf16` is true where bf16 has hardware units (AVX-512 BF16 or AMX-BF16); elsewhere bf16
    autocast is emulated and several times slower than fp32. `vnni` is true where int8 products
    are summed in 32 bits by the hardware (AVX-512 VNNI, AVX-VNNI or AMX-INT8); elsewhere ONNX
    Runtime's fast int8 kernels saturate (see `OnnxEngine`). Read from `cpuinfo` (default: the
    first processor of /proc/cpuinfo); without x86 flags there, avx2/avx512f come from torch's
    kernel capability and bf16 counts as emulated. `capability` is the kernel set torch dispatches.
    """
    if cpuinfo is None:
        path = Path("/proc/cpuinfo")
        cpuinfo = path.read_text() if path.is_file() else ""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, colon, value = line.partition(":")
        if colon:
            fields.setdefault(key.strip(), value.strip())
    flags = set(fields.get("flags", "").split())
    capability = torch.backends.cpu.get_cpu_capability()
    if flags:
        avx2, avx512f = "avx2" in flags, "avx512f" in flags
    else:
        avx2, avx512f = capability in ("AVX2", "AVX512"), capability == "AVX512"
    avx512_bf16 = "avx512_bf16" in flags
    amx = {"amx_tile", "amx_bf16"} <= flags
    vnni = bool({"avx512_vnni", "avx_vnni", "amx_int8"} & flags)
    return {
        "model": fields.get("model name") or platform.processor() or platform.machine(),
        "avx2": avx2,
        "avx512f": avx512f,
        "avx512_bf16": avx512_bf16,
        "amx": amx,
        "native_bf16": avx512_bf16 or amx,
        "vnni": vnni,
        "capability": capability,
    }
