"""The Pascal VOC layout, read as it is unpacked (VOCdevkit/VOC2012 or VOC2007):

    JPEGImages/*.jpg                   photos (most have no segmentation mask: detection only)
    SegmentationClass/*.png            palette PNGs: pixel = class index 0-20, 255 = ignore (borders)
                                       (or RGB PNGs in VOC's palette, borders in VOC_BORDER)
    ImageSets/Segmentation/train.txt   the official split lists (val.txt too)

VOC's test masks are not public, so its val.txt is the test split here and validation is a seeded
part of train.txt, as papers report VOC val.
"""

from __future__ import annotations

from pathlib import Path

from gcnseg.classes import IGNORE_INDEX, ClassSet
from gcnseg.data.images import MaskColors
from gcnseg.data.samples import DatasetIndex, Sample, files_by_stem, unpaired
from gcnseg.errors import GcnsegError

VOC_NAMES = (
    "background",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)
SPLITS_DIR = Path("ImageSets") / "Segmentation"


def voc_colors(n: int = len(VOC_NAMES)) -> tuple[tuple[int, int, int], ...]:
    """VOC's palette: the bits of the class index spread over R, G and B (class 1 = (128, 0, 0))."""
    colors = []
    for index in range(n):
        r = g = b = 0
        value = index
        for shift in range(7, -1, -1):
            r |= (value & 1) << shift
            g |= ((value >> 1) & 1) << shift
            b |= ((value >> 2) & 1) << shift
            value >>= 3
        colors.append((r, g, b))
    return tuple(colors)


VOC_CLASSES = ClassSet(VOC_NAMES, voc_colors(), background=0)
VOC_BORDER = (224, 224, 192)  # the palette's colour of 255, the void border around objects
# Masks converted to RGB are read through the palette they were painted in.
VOC_MASK_COLORS = MaskColors(
    VOC_CLASSES.colors,
    ignore=VOC_BORDER,
    source="VOC's palette",
    hint=f"VOC's masks are SegmentationClass/*.png in VOC's palette, borders {VOC_BORDER}",
)


def is_voc_layout(root: Path) -> bool:
    return (root / "JPEGImages").is_dir() and (root / "SegmentationClass").is_dir()


def read_split_list(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise GcnsegError(f"{path}: not a UTF-8 text file") from None
    except OSError as exc:
        raise GcnsegError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return [line.split()[0] for line in text.splitlines() if line.strip()]


def index_voc(root: Path) -> DatasetIndex:
    """Pairs for every SegmentationClass mask; photos without one are not listed as problems."""
    image_files = files_by_stem(root / "JPEGImages")
    mask_files = files_by_stem(root / "SegmentationClass")
    images, masks = image_files.by_name, mask_files.by_name
    allowed = frozenset(range(len(VOC_NAMES))) | {IGNORE_INDEX}
    samples = [
        Sample(stem, images[stem], mask, "all", allowed=allowed, colors=VOC_MASK_COLORS)
        for stem, mask in masks.items()
        if stem in images
    ]
    official = {}
    lists = root / SPLITS_DIR
    if (lists / "train.txt").is_file() and (lists / "val.txt").is_file():
        official = {
            "trainval": read_split_list(lists / "train.txt"),
            "test": read_split_list(lists / "val.txt"),
        }
    return DatasetIndex(
        root=root,
        layout="voc",
        classes=VOC_CLASSES,
        samples=samples,
        allowed_mask_values=allowed,
        official_splits=official,
        **unpaired(image_files, mask_files) | {"images_without_mask": []},
    )
