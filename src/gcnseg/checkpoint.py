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
# Weights are noise to gzip (fp16 releases shrink about 9%), so a `.pt.gz` that inflates far
# beyond its size is a gzip bomb: refused before it fills the memory.
GZIP_MAX_RATIO = 20
GZIP_MIN_BYTES = 64 << 20  # a tiny file may still hold a few mostly-zero tensors
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
    """Read a checkpoint (`.pt` or gzipped) and check its structure, so every broken, crafted or
    foreign file is one line naming it here, not a KeyError in whoever uses it."""
    path = resolve_checkpoint(source)
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
        config_from_dict(payload["config"])
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


def model_from_checkpoint(
    payload: dict[str, Any], source: str | Path = "checkpoint"
) -> tuple[nn.Module, Config, ClassSet]:
    """Rebuild the model of a checkpoint (fp32 weights, eval mode) with its config and classes.

    Weights that do not fit the architecture its config names (a crafted or foreign file) are
    one line naming `source`, not a state-dict traceback.
    """
    from gcnseg.models.registry import build_model

    config = config_from_dict(payload["config"])
    classes = ClassSet.from_dict(payload["classes"])
    model = build_model(config, len(classes.names), backbone_weights="random")
    state = {k: v.float() if v.is_floating_point() else v for k, v in payload["model"].items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        problem = " ".join(str(exc).split())[:300]
        raise GcnsegError(
            f"{source}: weights do not fit {config.model.name} with {len(classes.names)} classes ({problem})"
        ) from None
    return model.eval(), config, classes


def save_release(source: str | Path, out: str | Path) -> Path:
    """A slim fp16 copy for shipping: weights, config, classes and metrics; no optimizer state.

    An `out` ending in `.gz` is gzip-compressed (see `save_checkpoint`); `load_checkpoint` reads either.
    """
    payload = load_checkpoint(source)
    model_from_checkpoint(payload, source)  # refuse weights that would not load later
    release = {
        "model": {k: v.half() if v.is_floating_point() else v for k, v in payload["model"].items()},
        "config": payload["config"],
        "classes": payload["classes"],
        "metrics": payload.get("metrics", {}),
    }
    save_checkpoint(out, release)
    return Path(out)
