"""Load pretrained backbone weights from a local file or a URL (downloaded once into the cache:
see `gcnseg.io.cache`).

Every failure a user can cause (missing file, corrupt file, weights for another architecture) is a
one-line `GcnsegError` naming the file, never a traceback from deep inside `load_state_dict`.
"""

from __future__ import annotations

import importlib.metadata
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import torch
from torch import nn

from gcnseg.errors import GcnsegError
from gcnseg.io.cache import cache_folder, cache_root
from gcnseg.io.download import download_file

# torchvision/torch.hub naming: `resnet50-0676ba61.pth` carries a sha256 prefix of the file.
_NAME_HASH = re.compile(r"-([0-9a-f]{8,64})\.[^.]+$")
_SHOWN_KEYS = 3


def default_cache_dir() -> Path | None:
    """`<cache>/weights` (see `gcnseg.io.cache`), or None when the cache is off."""
    root = cache_root()
    return None if root is None else root / "weights"


def packaged_weights(distribution: str) -> Path | None:
    """The one .pth file an installed distribution ships, found through its metadata (RECORD)
    without importing it, so no code of the package runs; None when it is not installed."""
    try:
        files = importlib.metadata.distribution(distribution).files or []
    except importlib.metadata.PackageNotFoundError:
        return None
    found = [f for f in files if f.suffix == ".pth"]
    if len(found) != 1:
        return None
    path = Path(found[0].locate())
    return path if path.is_file() else None


def load_backbone_weights(
    backbone: nn.Module,
    source: str,
    *,
    sha256: str | None = None,
    cache_dir: Path | None = None,
) -> None:
    """Load `source` (a path or an http(s) URL) into `backbone` strictly. A URL is downloaded into
    `cache_dir` (default: the cache's weights folder; a temporary one with the cache off)."""
    if urlparse(source).scheme in ("http", "https"):
        folder = cache_dir if cache_dir is not None else default_cache_dir()
        with cache_folder(folder) as dest:
            state_dict = _read_state_dict(_download(source, sha256, dest))
        where: str | Path = source
    else:
        where = Path(source).expanduser()
        if not where.is_file():
            raise GcnsegError(f"weights file not found: {where}")
        state_dict = _read_state_dict(where)
    _check_compatible(backbone, state_dict, where)
    backbone.load_state_dict(state_dict, strict=True)


def _download(source: str, sha256: str | None, folder: Path) -> Path:
    """Fetch a URL into `folder` (download_file reuses a verified copy).

    A URL is only ever used verified: its sha256 comes from `sha256`, a `#sha256=<hex>` fragment
    (as pip writes it), or the torchvision-style `name-<hex>.pth` file name. Without one the URL
    is refused: an unverified file would be cached and trusted by every later run.
    """
    parts = urlparse(source)
    name = Path(unquote(parts.path)).name
    if not name:
        raise GcnsegError(f"cannot tell a file name from weights URL {source}")
    if sha256 is None and "sha256=" in parts.fragment:
        sha256 = parts.fragment.partition("sha256=")[2]
    if sha256 is None and (match := _NAME_HASH.search(name)):
        sha256 = match.group(1)
    if sha256 is None:
        raise GcnsegError(
            f"weights URL {source} carries no checksum: append #sha256=<hex digest>, or "
            "download it yourself and pass the file"
        )
    url = parts._replace(fragment="").geturl()
    return download_file(url, folder / name, sha256=sha256, progress=True)


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Unwrap common checkpoint layouts and the `module.` prefix DataParallel/DDP adds."""
    try:
        obj: Any = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as e:
        raise GcnsegError(f"cannot read weights file {path}: {_one_line(e)}") from e
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise GcnsegError(f"{path} does not hold a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def _check_compatible(
    backbone: nn.Module, state_dict: dict[str, torch.Tensor], path: str | Path
) -> None:
    """Report key and shape mismatches in one line before touching the backbone's weights."""
    expected = backbone.state_dict()
    # BatchNorm fills in a missing `num_batches_tracked` (old checkpoints predate it).
    missing = [
        k for k in expected if k not in state_dict and not k.endswith(".num_batches_tracked")
    ]
    unexpected = [k for k in state_dict if k not in expected]
    mismatched = [
        f"{k} {tuple(v.shape)} vs {tuple(expected[k].shape)}"
        for k, v in state_dict.items()
        if k in expected and v.shape != expected[k].shape
    ]
    problems = [
        f"{label}: {_first(items)}"
        for label, items in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shape mismatch (file vs model)", mismatched),
        )
        if items
    ]
    if problems:
        raise GcnsegError(f"{path} does not fit {type(backbone).__name__}: " + "; ".join(problems))


def _first(items: list[str]) -> str:
    shown = ", ".join(items[:_SHOWN_KEYS])
    return shown if len(items) <= _SHOWN_KEYS else f"{shown} (+{len(items) - _SHOWN_KEYS} more)"


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
