"""The plain layout: images/ + masks/ + classes.yaml.

Masks hold one class index per pixel (grey or palette PNGs; 255 = ignore) or, when classes.yaml
lists `colors`, may be RGB pictures painted in those colours. Subfolders are followed: a pair is
matched by its path under images/ and masks/ without the extension (images/cats/tom.jpg with
masks/cats/tom.png), and `cats/tom` is the sample's name.
"""

from __future__ import annotations

from pathlib import Path

from gcnseg.classes import IGNORE_INDEX, ClassSet
from gcnseg.data.samples import DatasetIndex, Sample, files_by_relpath, unpaired
from gcnseg.errors import GcnsegError
from gcnseg.io.formats import read_yaml

CLASS_FILES = ("classes.yaml", "classes.yml", "classes.json")


def is_folders_layout(root: Path) -> bool:
    return (root / "images").is_dir() and (root / "masks").is_dir()


def load_classes(root: Path) -> ClassSet:
    """The class set of an images/ + masks/ root; any problem is one line naming the file."""
    return _class_file(root)[0]


def _class_file(root: Path) -> tuple[ClassSet, bool]:
    """The class set, and whether the file lists colours (then RGB masks are read through them)."""
    for filename in CLASS_FILES:
        path = root / filename
        if path.is_file():
            try:
                data = read_yaml(path)  # its own errors name the file
            except OSError as exc:
                raise GcnsegError(f"{path}: cannot read ({exc.strerror or exc})") from None
            try:
                classes = ClassSet.from_dict(data)
            except GcnsegError as exc:
                raise GcnsegError(f"{path}: bad class file: {exc}") from None
            return classes, isinstance(data, dict) and data.get("colors") is not None
    raise GcnsegError(
        f"{root}: no classes.yaml; write one like `names: [background, cat]` "
        "(optional `colors: [[0,0,0],[255,0,0]]`)"
    )


def index_folders(root: Path) -> DatasetIndex:
    classes, listed_colors = _class_file(root)
    colors = classes.colors if listed_colors else None
    images, strays = files_by_relpath(root / "images")
    masks, mask_strays = files_by_relpath(root / "masks")
    allowed = frozenset(range(len(classes.names))) | {IGNORE_INDEX}
    samples = [
        Sample(key, image, masks[key], "all", allowed=allowed, colors=colors)
        for key, image in images.items()
        if key in masks
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
