"""Running a model on uint8 batches: device placement, channels-last, autocast and flip TTA."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

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


def prepare_images(images: Tensor, device: torch.device, channels_last: bool) -> Tensor:
    """uint8 NCHW from the loader -> float [0, 1] on the device, in the model's memory format."""
    images = images.to(device, non_blocking=True).float().div_(255)
    return images.contiguous(memory_format=torch.channels_last) if channels_last else images


def predict_logits(
    model: Callable[[Tensor], Tensor],
    images: Tensor,
    *,
    device: torch.device,
    amp: str = "none",
    flip: bool = False,
) -> Tensor:
    """Float32 logits; with `flip`, the average over the image and its mirror (TTA)."""
    with torch.inference_mode(), autocast(device, amp):
        logits = model(images).float()
        if flip:
            logits = (logits + model(images.flip(-1)).float().flip(-1)) / 2
    return logits
