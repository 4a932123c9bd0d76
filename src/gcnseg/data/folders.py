"""The plain layout: images/ + masks/ + classes.yaml.

Masks hold one class index per pixel (grey or palette PNGs; 255 = ignore) or, when classes.yaml
lists `colors`, may be RGB pictures painted in those colours. Subfolders are followed: a pair is
matched by its path under images/ and masks/ without the extension (images/cats/tom.jpg with
masks/cats/tom.png), and `cats/tom` is the sample's name.

classes.yaml (any other key is an error naming it):

    names: [sky, road, car]       # class index order (required)
    colors: [[128, 128, 128], ...] # drawing colours; RGB masks are read through them
    background: null              # the class drawings leave transparent, by name; none if absent
    ignore: 11                    # a mask value to skip besides 255, or [R, G, B] for RGB masks

Split folders keep their split: with images/train and images/val (and images/test), masks/ alike,
the samples under each become that split of the manifest instead of being pooled and re-split.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gcnseg.classes import CLASS_KEYS, IGNORE_INDEX, ClassSet, is_rgb
from gcnseg.data.images import Color, MaskColors
from gcnseg.data.samples import DatasetIndex, IgnoreValue, Sample, files_by_relpath, unpaired
from gcnseg.errors import GcnsegError
from gcnseg.io.formats import read_yaml

CLASS_FILES = ("classes.yaml", "classes.yml", "classes.json")
CLASS_FILE_KEYS = (*CLASS_KEYS, "ignore")
SPLIT_FOLDERS = ("train", "val", "test")


@dataclass(frozen=True)
class ClassFile:
    """What classes.yaml says: the classes, how RGB masks map to them (when it lists colours),
    and the mask value to ignore besides 255 (None when there is none)."""

    classes: ClassSet
    colors: MaskColors | None
    ignore: int | None


def is_folders_layout(root: Path) -> bool:
    return (root / "images").is_dir() and (root / "masks").is_dir()


def load_classes(root: Path) -> ClassSet:
    """The class set of an images/ + masks/ root; any problem is one line naming the file."""
    return read_class_file(root).classes


def read_class_file(root: Path) -> ClassFile:
    """classes.yaml (or .yml, .json) of `root`; any problem is one line naming the file."""
    for filename in CLASS_FILES:
        path = root / filename
        if path.is_file():
            try:
                data = read_yaml(path)  # its own errors name the file
            except OSError as exc:
                raise GcnsegError(f"{path}: cannot read ({exc.strerror or exc})") from None
            try:
                return _parse(data)
            except GcnsegError as exc:
                raise GcnsegError(f"{path}: bad class file: {exc}") from None
    raise GcnsegError(
        f"{root}: no classes.yaml; write one like `names: [background, cat]` "
        "(optional `colors: [[0,0,0],[255,0,0]]`)"
    )


def _parse(data: object) -> ClassFile:
    if not isinstance(data, dict):
        raise GcnsegError("expected a mapping with `names: [...]` (and optional `colors`)")
    unknown = [str(key) for key in data if key not in CLASS_FILE_KEYS]
    if unknown:
        raise GcnsegError(f"unknown key {unknown[0]!r} (known: {', '.join(CLASS_FILE_KEYS)})")
    fields = {key: value for key, value in data.items() if key != "ignore"}
    classes = ClassSet.from_dict({"background": None} | fields)  # none unless the file names one
    listed = data.get("colors") is not None
    ignore = data.get("ignore")
    if ignore is None:
        return ClassFile(classes, MaskColors(classes.colors) if listed else None, None)
    if isinstance(ignore, int) and not isinstance(ignore, bool):
        if not len(classes.names) <= ignore <= IGNORE_INDEX:
            raise GcnsegError(
                f"ignore: {ignore} must be a mask value no class has "
                f"({len(classes.names)}-{IGNORE_INDEX}; 255 is always ignored)"
            )
        colors = MaskColors(classes.colors) if listed else None
        return ClassFile(classes, colors, None if ignore == IGNORE_INDEX else ignore)
    color = _ignore_color(ignore, classes, listed)
    return ClassFile(classes, MaskColors(classes.colors, ignore=color), None)


def _ignore_color(ignore: object, classes: ClassSet, listed: bool) -> Color:
    """`ignore: [R, G, B]`: the colour RGB masks mark pixels to skip with."""
    if not is_rgb(ignore):
        raise GcnsegError(
            f"ignore must be a mask value (an int) or a colour [R, G, B], got {ignore!r}"
        )
    color = tuple(ignore)
    if not listed:
        raise GcnsegError(
            f"ignore: {list(color)} is a colour, for RGB masks: list the classes' `colors` too"
        )
    if color in classes.colors:
        owner = classes.names[classes.colors.index(color)]
        raise GcnsegError(f"ignore: {list(color)} is the colour of class {owner!r}")
    return color


def index_folders(root: Path) -> DatasetIndex:
    spec = read_class_file(root)
    image_files = files_by_relpath(root / "images")
    mask_files = files_by_relpath(root / "masks")
    images, masks = image_files.by_name, mask_files.by_name
    allowed = frozenset(range(len(spec.classes.names))) | {IGNORE_INDEX}
    decoder = None
    if spec.ignore is not None:
        allowed |= {spec.ignore}
        decoder = IgnoreValue(spec.ignore)
    samples = [
        Sample(key, image, masks[key], "all", decoder, allowed, spec.colors)
        for key, image in images.items()
        if key in masks
    ]
    return DatasetIndex(
        root=root,
        layout="folders",
        classes=spec.classes,
        samples=samples,
        allowed_mask_values=allowed,
        **_split_folders(root, samples),
        **unpaired(image_files, mask_files),
    )


def _split_folders(root: Path, samples: list[Sample]) -> dict:
    """`official_splits` from images/train + images/val (+ images/test), when they exist."""
    present = [split for split in SPLIT_FOLDERS if (root / "images" / split).is_dir()]
    if not {"train", "val"} <= set(present):
        return {}
    splits = {
        split: [s.name for s in samples if s.name.split("/", 1)[0] == split]
        for split in SPLIT_FOLDERS
    }
    notes = {}
    if "test" not in present:
        notes["test"] = f"there is no {root / 'images' / 'test'} folder"
    return {"official_splits": splits, "split_notes": notes}
