"""What a dataset root holds, whatever its layout: image/mask pairs and what could not be paired."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gcnseg.classes import ClassSet
from gcnseg.data.images import IMAGE_EXTENSIONS, Color, read_mask
from gcnseg.errors import GcnsegError


@dataclass(frozen=True)
class Sample:
    """One image/mask pair. `group` stratifies splits (breed for pets, "all" otherwise).

    `decoder` turns the stored mask into class indices (Oxford trimaps need one; plain index
    masks do not). `allowed` holds the raw values a mask may contain (class indices and 255, or
    trimap values): any other value is refused when the label is loaded, so check, train and test
    treat such a mask the same way instead of crashing on an out-of-range class index. Both are
    picklable value objects, so samples travel to DataLoader workers.
    """

    name: str
    image: Path
    mask: Path
    group: str
    decoder: Callable[[np.ndarray], np.ndarray] | None = None
    allowed: frozenset[int] | None = None
    colors: tuple[Color, ...] | None = None  # class colours of RGB masks, when the data lists them

    def read_raw(self) -> np.ndarray:
        """The stored mask as HxW uint8 (an RGB mask mapped through `colors`), not yet checked."""
        return read_mask(self.mask, self.colors)

    def load_label(self) -> np.ndarray:
        """HxW uint8 class indices, 255 where the pixel is ignored; GcnsegError for a bad mask."""
        raw = self.read_raw()
        if self.allowed is not None:
            unexpected = unexpected_values(raw, self.allowed)
            if unexpected:
                raise GcnsegError(
                    f"{self.mask}: mask values {unexpected[:10]} not in {sorted(self.allowed)}"
                )
        return self.decode_label(raw)

    def decode_label(self, raw: np.ndarray) -> np.ndarray:
        return raw if self.decoder is None else self.decoder(raw)


def unexpected_values(raw: np.ndarray, allowed: frozenset[int]) -> list[int]:
    """The values of a raw mask outside `allowed`, sorted."""
    return sorted(set(np.unique(raw).tolist()) - allowed)


@dataclass
class DatasetIndex:
    """What a dataset root holds: pairs, plus what could not be paired (reported by `data check`)."""

    root: Path
    layout: str
    classes: ClassSet
    samples: list[Sample]
    allowed_mask_values: frozenset[int]  # raw values a mask file may hold
    images_without_mask: list[Path] = field(default_factory=list)
    masks_without_image: list[Path] = field(default_factory=list)
    strays: list[Path] = field(default_factory=list)
    official_splits: dict[str, list[str]] = field(default_factory=dict)


def files_by_stem(folder: Path) -> tuple[dict[str, Path], list[Path]]:
    """Image-like files by stem, and everything else (strays such as the release's .mat files)."""
    by_stem: dict[str, Path] = {}
    strays = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS:
            by_stem[path.stem] = path
        else:
            strays.append(path)
    return by_stem, strays


def files_by_relpath(folder: Path) -> tuple[dict[str, Path], list[Path]]:
    """Like `files_by_stem`, through subfolders too: keyed by the path relative to `folder`
    without its extension (`cats/tom`), so images/cats/tom.jpg pairs with masks/cats/tom.png."""
    by_key: dict[str, Path] = {}
    strays = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts) or path.is_dir():
            continue
        if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS:
            by_key[relative.with_suffix("").as_posix()] = path
        else:
            strays.append(path)
    return by_key, strays


def unpaired(images: dict[str, Path], masks: dict[str, Path]) -> dict[str, list[Path]]:
    """The `images_without_mask` / `masks_without_image` fields of an index."""
    return {
        "images_without_mask": [p for s, p in images.items() if s not in masks],
        "masks_without_image": [p for s, p in masks.items() if s not in images],
    }
