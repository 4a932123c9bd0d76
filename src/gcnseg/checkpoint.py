"""Checkpoint files: written atomically, read with weights_only=True and checked.

Which file a model name means is `gcnseg.source`'s job; this module reads and writes one file.
"""

from __future__ import annotations

import gzip
import io
import pickle
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from gcnseg.classes import ClassSet
from gcnseg.config import saved_config_from_dict
from gcnseg.errors import GcnsegError
from gcnseg.io.atomic import atomic_path

if TYPE_CHECKING:
    from gcnseg.source import TrainedModel

GZIP_MAGIC = b"\x1f\x8b"
# Weights are noise to gzip (fp16 releases shrink about 9%), so a `.pt.gz` that inflates far
# beyond its size is a gzip bomb: refused before it fills the memory.
GZIP_MAX_RATIO = 20
GZIP_MIN_BYTES = 1 << 20  # a tiny file may still hold a few mostly-zero tensors
GZIP_MAX_BYTES = 2 << 30


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Atomically; a path ending in `.gz` is gzip-compressed (fp16 releases shrink by about 9%)."""
    with atomic_path(path) as tmp:
        if str(path).endswith(".gz"):
            buffer = io.BytesIO()
            torch.save(payload, buffer)
            tmp.write_bytes(gzip.compress(buffer.getvalue(), compresslevel=9, mtime=0))
        else:
            with tmp.open("wb") as handle:  # Python's writes: a full disk is OSError ENOSPC
                torch.save(payload, handle)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint file (`.pt` or gzipped) and check its structure, so every broken,
    crafted or foreign file is one line naming it here, not a KeyError in whoever uses it."""
    path = Path(path)
    if not path.is_file():
        raise GcnsegError(f"{path}: checkpoint not found")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise GcnsegError(f"{path}: cannot read checkpoint ({exc.strerror or exc})") from None
    if not raw:
        raise GcnsegError(f"{path}: empty file, not a checkpoint")
    if raw[:2] == GZIP_MAGIC:  # torch.load cannot read a gzipped file itself
        raw = _gunzip(raw, path)
    try:
        payload = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise GcnsegError(
            f"{path}: not a readable checkpoint (not a PyTorch file, or it holds objects other "
            "than tensors and plain values, which are never unpickled)"
        ) from None
    except Exception as exc:  # on junk, the weights-only unpickler fails with any error type
        raise GcnsegError(f"{path}: not a readable checkpoint ({_first_line(exc)})") from None
    check_payload(payload, path)
    return payload


def check_payload(payload: Any, path: str | Path) -> None:
    """A gcnseg checkpoint: a dict with `model` (name -> tensor), a valid `config` and `classes`.

    Whether the weights fit the architecture the config names is checked when the model is built.
    """
    if not isinstance(payload, dict) or not {"model", "config", "classes"} <= payload.keys():
        raise GcnsegError(
            f"{path}: not a gcnseg checkpoint (needs model weights, config and classes)"
        )
    state = payload["model"]
    if (
        not isinstance(state, dict)
        or not state
        or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items())
    ):
        raise GcnsegError(f"{path}: not a gcnseg checkpoint (model is not a dict of tensors)")
    for key, value in state.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise GcnsegError(
                f"{path}: weights are not finite ({key} holds NaN or inf): the run that saved "
                "them diverged; use an earlier checkpoint"
            )
    try:
        saved_config_from_dict(payload["config"])
        ClassSet.from_dict(payload["classes"])
    except GcnsegError as exc:
        raise GcnsegError(f"{path}: bad checkpoint: {exc}") from None


def _gunzip(raw: bytes, path: Path) -> bytes:
    """Decompress every gzip member, stopping as soon as the output passes the limit."""
    limit = min(GZIP_MAX_BYTES, max(GZIP_MIN_BYTES, GZIP_MAX_RATIO * len(raw)))
    out = bytearray()
    data = raw
    try:
        while data[:2] == GZIP_MAGIC:
            member = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            out += member.decompress(data, limit + 1 - len(out))
            if len(out) > limit:
                raise GcnsegError(
                    f"{path}: gzip data inflates beyond {limit:,} bytes "
                    f"({len(raw):,} compressed); refused as a gzip bomb"
                )
            if not member.eof:
                raise GcnsegError(f"{path}: not a readable checkpoint (truncated gzip data)")
            data = member.unused_data
    except zlib.error as exc:
        raise GcnsegError(f"{path}: not a readable checkpoint (gzip: {exc})") from None
    return bytes(out)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:200] if lines else type(exc).__name__


def save_release(trained: TrainedModel, out: str | Path) -> Path:
    """A slim fp16 copy for shipping: weights, config, classes, metrics and training data; no
    optimizer state. An `out` ending in `.gz` is gzip-compressed (see `save_checkpoint`)."""
    state = trained.model.state_dict()
    release = {
        "model": {k: v.half() if v.is_floating_point() else v for k, v in state.items()},
        "config": trained.config.to_dict(),
        "classes": trained.classes.to_dict(),
        "metrics": trained.metrics,
        "training_data": trained.training_data,
    }
    save_checkpoint(out, release)
    return Path(out)
