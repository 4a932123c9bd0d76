"""Finding image/mask pairs: the official Oxford-IIIT Pet layout, or plain images/ + masks/ folders."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from gcnseg.data.images import IMAGE_EXTENSIONS, read_mask
from gcnseg.errors import GcnsegError

IGNORE_INDEX = 255
PETS_CLASSES = ("background", "cat", "dog")
PETS_COLORS = ((0, 0, 0), (255, 140, 0), (30, 144, 255))
# Oxford trimap values.
TRIMAP_PET, TRIMAP_BACKGROUND, TRIMAP_BORDER = 1, 2, 3
CLASS_FILES = ("classes.yaml", "classes.yml", "classes.json")


@dataclass(frozen=True)
class ClassSet:
    """Class names and their RGB drawing colours; index 0 is usually background."""

    names: tuple[str, ...]
    colors: tuple[tuple[int, int, int], ...]

    def __post_init__(self) -> None:
        if len(self.names) != len(self.colors):
            raise GcnsegError(f"{len(self.names)} class names but {len(self.colors)} colours")
        if not 1 <= len(self.names) <= IGNORE_INDEX:
            raise GcnsegError(f"need between 1 and {IGNORE_INDEX} classes, got {len(self.names)}")

    def to_dict(self) -> dict:
        return {"names": list(self.names), "colors": [list(c) for c in self.colors]}

    @classmethod
    def from_dict(cls, data: dict) -> ClassSet:
        names = tuple(str(n) for n in data["names"])
        colors = data.get("colors") or default_colors(len(names))
        return cls(names, tuple(tuple(int(v) for v in c) for c in colors))


def default_colors(n: int) -> list[tuple[int, int, int]]:
    """Distinct colours from matplotlib's tab20, black for class 0 (background)."""
    from matplotlib import colormaps

    cmap = colormaps["tab20"]
    colors = [(0, 0, 0)]
    colors += [tuple(int(255 * v) for v in cmap(i % 20)[:3]) for i in range(n - 1)]
    return colors


PETS = ClassSet(PETS_CLASSES, PETS_COLORS)


@dataclass(frozen=True)
class Sample:
    """One image/mask pair. `group` stratifies splits (breed for pets, first class otherwise)."""

    name: str
    image: Path
    mask: Path
    group: str
    pet_class: int | None = None  # Oxford only: the class a trimap's "pet" pixels get

    def load_label(self) -> np.ndarray:
        """HxW uint8 class indices, 255 where the pixel is ignored."""
        return self.decode_label(read_mask(self.mask))

    def decode_label(self, raw: np.ndarray) -> np.ndarray:
        if self.pet_class is None:
            return raw
        label = np.full(raw.shape, IGNORE_INDEX, np.uint8)
        label[raw == TRIMAP_BACKGROUND] = 0
        label[raw == TRIMAP_PET] = self.pet_class
        return label


@dataclass
class DatasetIndex:
    """What a dataset root holds: pairs, plus what could not be paired (reported by `data check`)."""

    root: Path
    layout: str
    classes: ClassSet
    samples: list[Sample]
    images_without_mask: list[Path] = field(default_factory=list)
    masks_without_image: list[Path] = field(default_factory=list)
    strays: list[Path] = field(default_factory=list)
    official_splits: dict[str, list[str]] = field(default_factory=dict)


def index_dataset(root: str | Path) -> DatasetIndex:
    """Recognise the layout under `root` and pair images with masks by basename."""
    root = Path(root)
    if not root.is_dir():
        raise GcnsegError(f"{root}: dataset folder not found")
    if (root / "annotations" / "trimaps").is_dir() and (root / "images").is_dir():
        return _index_oxford(root)
    if (root / "images").is_dir() and (root / "masks").is_dir():
        return _index_folders(root)
    raise GcnsegError(
        f"{root}: not a dataset (expected images/ + annotations/trimaps/ as in Oxford-IIIT Pet, "
        "or images/ + masks/)"
    )


def _split_files(folder: Path) -> tuple[dict[str, Path], list[Path]]:
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


def _read_pet_list(path: Path) -> dict[str, int]:
    """list.txt lines are "Image CLASS-ID SPECIES BREED-ID" with species 1 = cat, 2 = dog."""
    species = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and not line.startswith("#") and parts[2] in ("1", "2"):
                species[parts[0]] = int(parts[2])
    return species


def _index_oxford(root: Path) -> DatasetIndex:
    images, strays = _split_files(root / "images")
    masks, mask_strays = _split_files(root / "annotations" / "trimaps")
    species = _read_pet_list(root / "annotations" / "list.txt")
    samples = []
    for stem, image in images.items():
        if stem not in masks:
            continue
        # Species from list.txt; else the dataset's convention: capitalised names are cats.
        pet_class = species.get(stem, 1 if stem[:1].isupper() else 2)
        samples.append(Sample(stem, image, masks[stem], stem.rsplit("_", 1)[0], pet_class))
    official = {}
    for split, filename in (("trainval", "trainval.txt"), ("test", "test.txt")):
        listing = root / "annotations" / filename
        if listing.is_file():
            official[split] = [
                ln.split()[0] for ln in listing.read_text().splitlines() if ln.strip()
            ]
    return _make_index(
        root, "oxford-pets", PETS, samples, images, masks, strays + mask_strays, official
    )


def load_classes(root: Path) -> ClassSet:
    for filename in CLASS_FILES:
        path = root / filename
        if path.is_file():
            try:
                data = yaml.safe_load(path.read_text())  # YAML is a superset of JSON
                return ClassSet.from_dict(data)
            except (yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
                raise GcnsegError(
                    f"{path}: bad class file, expected names: [...] ({exc})"
                ) from None
    raise GcnsegError(
        f"{root}: no classes.yaml; write one like `names: [background, cat]` "
        "(optional `colors: [[0,0,0],[255,0,0]]`)"
    )


def _index_folders(root: Path) -> DatasetIndex:
    classes = load_classes(root)
    images, strays = _split_files(root / "images")
    masks, mask_strays = _split_files(root / "masks")
    samples = [
        Sample(stem, image, masks[stem], "all") for stem, image in images.items() if stem in masks
    ]
    return _make_index(root, "folders", classes, samples, images, masks, strays + mask_strays)


def _make_index(
    root: Path,
    layout: str,
    classes: ClassSet,
    samples: list[Sample],
    images: dict[str, Path],
    masks: dict[str, Path],
    strays: list[Path],
    official: dict[str, list[str]] | None = None,
) -> DatasetIndex:
    return DatasetIndex(
        root=root,
        layout=layout,
        classes=classes,
        samples=samples,
        images_without_mask=[p for s, p in images.items() if s not in masks],
        masks_without_image=[p for s, p in masks.items() if s not in images],
        strays=strays,
        official_splits=official or {},
    )
