"""The plain layout: images/ + masks/ (one channel, pixel = class index) + classes.yaml."""

from __future__ import annotations

from pathlib import Path

import yaml

from gcnseg.classes import IGNORE_INDEX, ClassSet
from gcnseg.data.samples import DatasetIndex, Sample, files_by_stem, unpaired
from gcnseg.errors import GcnsegError

CLASS_FILES = ("classes.yaml", "classes.yml", "classes.json")


def is_folders_layout(root: Path) -> bool:
    return (root / "images").is_dir() and (root / "masks").is_dir()


def load_classes(root: Path) -> ClassSet:
    """The class set of an images/ + masks/ root; any problem is one line naming the file."""
    for filename in CLASS_FILES:
        path = root / filename
        if path.is_file():
            try:
                data = yaml.safe_load(path.read_text(encoding="utf-8"))  # a superset of JSON
                return ClassSet.from_dict(data)
            except UnicodeDecodeError:
                raise GcnsegError(f"{path}: not a UTF-8 text file") from None
            except yaml.YAMLError as exc:
                raise GcnsegError(f"{path}: invalid YAML ({str(exc).splitlines()[0]})") from None
            except GcnsegError as exc:
                raise GcnsegError(f"{path}: bad class file: {exc}") from None
            except OSError as exc:
                raise GcnsegError(f"{path}: cannot read ({exc.strerror or exc})") from None
    raise GcnsegError(
        f"{root}: no classes.yaml; write one like `names: [background, cat]` "
        "(optional `colors: [[0,0,0],[255,0,0]]`)"
    )


def index_folders(root: Path) -> DatasetIndex:
    classes = load_classes(root)
    images, strays = files_by_stem(root / "images")
    masks, mask_strays = files_by_stem(root / "masks")
    allowed = frozenset(range(len(classes.names))) | {IGNORE_INDEX}
    samples = [
        Sample(stem, image, masks[stem], "all", allowed=allowed)
        for stem, image in images.items()
        if stem in masks
    ]
    return DatasetIndex(
        root=root,
        layout="folders",
        classes=classes,
        samples=samples,
        allowed_mask_values=allowed,
        strays=strays + mask_strays,
        **unpaired(images, masks),
    )
