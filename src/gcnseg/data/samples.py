"""What a dataset root holds, whatever its layout: image/mask pairs and what could not be paired."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gcnseg.classes import IGNORE_INDEX, ClassSet
from gcnseg.data.images import IMAGE_EXTENSIONS, MaskColors, read_mask
from gcnseg.errors import GcnsegError


@dataclass(frozen=True)
class Sample:
    """One image/mask pair. `group` stratifies splits (breed for pets, "all" otherwise).

    `decoder` turns the stored mask into class indices (Oxford trimaps and void labels other
    than 255 need one; plain index masks do not). `allowed` holds the raw values a mask may contain (class indices and 255, or
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
    colors: MaskColors | None = None  # how RGB masks map to classes, when the data has colours

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


@dataclass(frozen=True)
class IgnoreValue:
    """A decoder: the dataset's void label (CamVid's 11, `ignore: N` in classes.yaml) becomes
    the ignore index, so it is never trained on nor scored."""

    value: int

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        return np.where(raw == self.value, IGNORE_INDEX, raw).astype(np.uint8)


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
    # Files whose names differ only in the extension (x.jpg and x.png): which one a mask
    # belongs to is unknowable, so none of them is paired.
    clashes: list[list[Path]] = field(default_factory=list)
    # The dataset's own split, by sample name: trainval/test lists (Oxford, VOC), or all of
    # train/val/test (CamVid, split folders), then `split_notes` says why a split is empty.
    official_splits: dict[str, list[str]] = field(default_factory=dict)
    split_notes: dict[str, str] = field(default_factory=dict)


@dataclass
class Files:
    """Image-like files of a folder by name, plus strays and clashing names."""

    by_name: dict[str, Path]
    strays: list[Path]
    clashes: dict[str, list[Path]]


def files_by_stem(folder: Path) -> Files:
    """Image-like files by stem, and everything else (strays such as the release's .mat files)."""
    return _by_name(path for path in sorted(folder.iterdir()) if not path.name.startswith("."))


def files_by_relpath(folder: Path) -> Files:
    """Like `files_by_stem`, through subfolders too: keyed by the path relative to `folder`
    without its extension (`cats/tom`), so images/cats/tom.jpg pairs with masks/cats/tom.png."""
    return _by_name(
        (path for path in sorted(folder.rglob("*")) if not path.is_dir()),
        under=folder,
    )


def _by_name(paths: Iterable[Path], under: Path | None = None) -> Files:
    found: dict[str, list[Path]] = {}
    strays = []
    for path in paths:
        relative = path if under is None else path.relative_to(under)
        if under is not None and any(part.startswith(".") for part in relative.parts):
            continue
        if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS:
            name = relative.stem if under is None else relative.with_suffix("").as_posix()
            found.setdefault(name, []).append(path)
        else:
            strays.append(path)
    return Files(
        {name: paths[0] for name, paths in found.items() if len(paths) == 1},
        strays,
        {name: paths for name, paths in found.items() if len(paths) > 1},
    )


def clash_line(paths: list[Path]) -> str:
    """One line on files that share a sample name: which mask is whose cannot be known."""
    return (
        f"{', '.join(map(str, paths))}: same sample name {paths[0].stem!r}, "
        "so none of them is used; rename all but one"
    )


def unpaired(images: Files, masks: Files) -> dict[str, list]:
    """The fields of an index on what could not be paired: images without mask, masks without
    image, strays and clashes (a name that clashes on either side is reported once, there)."""
    clashing = images.clashes.keys() | masks.clashes.keys()
    return {
        "images_without_mask": [
            p for n, p in images.by_name.items() if n not in masks.by_name and n not in clashing
        ],
        "masks_without_image": [
            p for n, p in masks.by_name.items() if n not in images.by_name and n not in clashing
        ],
        "strays": images.strays + masks.strays,
        "clashes": [*images.clashes.values(), *masks.clashes.values()],
    }
