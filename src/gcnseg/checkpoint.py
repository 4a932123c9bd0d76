"""Checkpoints: written atomically, read with weights_only=True, found by path, run folder or name."""

from __future__ import annotations

import gzip
import io
import pickle
import zlib
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gcnseg.classes import ClassSet
from gcnseg.config import Config, config_from_dict
from gcnseg.errors import GcnsegError
from gcnseg.io.atomic import atomic_path

# Models shipped inside the package, loadable by name with no download.
PACKAGED = {"pets-default": "pets-default.pt.gz"}
GZIP_MAGIC = b"\x1f\x8b"


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Atomically; a path ending in `.gz` is gzip-compressed (fp16 releases shrink by about 9%)."""
    with atomic_path(path) as tmp:
        if str(path).endswith(".gz"):
            buffer = io.BytesIO()
            torch.save(payload, buffer)
            tmp.write_bytes(gzip.compress(buffer.getvalue(), compresslevel=9, mtime=0))
        else:
            torch.save(payload, tmp)


def resolve_checkpoint(source: str | Path) -> Path:
    """A file, a run folder (its best.pt, else last.pt), or a packaged model's name."""
    if str(source) in PACKAGED:
        return Path(str(resources.files("gcnseg.pretrained") / PACKAGED[str(source)]))
    path = Path(source)
    if path.is_dir():
        for name in ("best.pt", "last.pt"):
            if (path / name).is_file():
                return path / name
        raise GcnsegError(f"{path}: no best.pt or last.pt in this run folder")
    if not path.is_file():
        known = ", ".join(PACKAGED)
        raise GcnsegError(f"{path}: checkpoint not found (packaged models: {known})")
    return path


def load_checkpoint(source: str | Path) -> dict[str, Any]:
    path = resolve_checkpoint(source)
    try:
        raw = path.read_bytes()
        if raw[:2] == GZIP_MAGIC:  # torch.load cannot read a gzipped file itself
            raw = gzip.decompress(raw)
        payload = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except (
        RuntimeError,
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        OSError,
        zlib.error,
    ) as exc:
        raise GcnsegError(
            f"{path}: not a readable checkpoint ({str(exc).splitlines()[0]})"
        ) from None
    if not isinstance(payload, dict) or "model" not in payload or "config" not in payload:
        raise GcnsegError(f"{path}: not a gcnseg checkpoint (no model weights and config)")
    return payload


def model_from_checkpoint(payload: dict[str, Any]) -> tuple[nn.Module, Config, ClassSet]:
    """Rebuild the model of a checkpoint (fp32 weights, eval mode) with its config and classes."""
    from gcnseg.models import create_model

    config = config_from_dict(payload["config"])
    classes = ClassSet.from_dict(payload["classes"])
    model = create_model(
        config.model.name,
        num_classes=len(classes.names),
        backbone_weights="random",
        kernel_size=config.model.kernel_size,
        decoder_width=config.model.decoder_width,
    )
    state = {k: v.float() if v.is_floating_point() else v for k, v in payload["model"].items()}
    model.load_state_dict(state)
    return model.eval(), config, classes


def save_release(source: str | Path, out: str | Path) -> Path:
    """A slim fp16 copy for shipping: weights, config, classes and metrics; no optimizer state.

    An `out` ending in `.gz` is gzip-compressed (see `save_checkpoint`); `load_checkpoint` reads either.
    """
    payload = load_checkpoint(source)
    release = {
        "model": {k: v.half() if v.is_floating_point() else v for k, v in payload["model"].items()},
        "config": payload["config"],
        "classes": payload["classes"],
        "metrics": payload.get("metrics", {}),
    }
    save_checkpoint(out, release)
    return Path(out)
