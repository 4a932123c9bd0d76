"""CamVid as commonly distributed (the SegNet tutorial's 11-class, 480×360 version), read as it is:

    train/*.png, trainannot/*.png   frames and labels: pixel = class index 0-10, 11 = void
    val/, valannot/                 the validation split
    test/, testannot/               the test split, where the copy has it
    train.txt, val.txt, test.txt    "IMAGE LABEL" lines naming the same files

The folders are the official split (the lists hold paths of the machine that wrote them, so they
are not read). Void is ignored. No class is background: sky, class 0, is painted like the others.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from gcnseg.classes import IGNORE_INDEX, ClassSet
from gcnseg.data.images import MaskColors
from gcnseg.data.samples import DatasetIndex, IgnoreValue, Sample, files_by_stem, unpaired

CAMVID_CLASSES = ClassSet(
    (
        "Sky",
        "Building",
        "Pole",
        "Road",
        "Pavement",
        "Tree",
        "SignSymbol",
        "Fence",
        "Car",
        "Pedestrian",
        "Bicyclist",
    ),
    (
        (128, 128, 128),
        (128, 0, 0),
        (192, 192, 128),
        (128, 64, 128),
        (60, 40, 222),
        (128, 128, 0),
        (192, 128, 128),
        (64, 64, 128),
        (64, 0, 128),
        (64, 64, 0),
        (0, 128, 192),
    ),
)
CAMVID_VOID = 11  # the label value of unlabelled pixels
CAMVID_VOID_COLOR = (0, 0, 0)
# Labels painted in the class colours (void black) are read through them.
COLORS = MaskColors(
    CAMVID_CLASSES.colors,
    ignore=CAMVID_VOID_COLOR,
    source="CamVid's 11 class colours",
    hint="CamVid's labels are one channel, class index 0-10 per pixel and 11 for void",
)
SPLITS = ("train", "val", "test")


def is_camvid_layout(root: Path) -> bool:
    return all((root / name).is_dir() for name in ("train", "trainannot", "val", "valannot"))


def index_camvid(root: Path) -> DatasetIndex:
    """Pairs of every split folder; the folders are the official train/val/test split."""
    allowed = frozenset(range(len(CAMVID_CLASSES.names))) | {CAMVID_VOID, IGNORE_INDEX}
    decoder = IgnoreValue(CAMVID_VOID)
    found: list[tuple[str, Sample]] = []
    problems: dict[str, list] = {}
    notes: dict[str, str] = {}
    for split in SPLITS:
        folders = root / split, root / f"{split}annot"
        missing = [str(folder) for folder in folders if not folder.is_dir()]
        if missing:  # only test can be: train and val make the layout
            notes[split] = f"{' and '.join(missing)} not found"
            continue
        images, masks = files_by_stem(folders[0]), files_by_stem(folders[1])
        found += [
            (split, Sample(stem, image, mask, stem.split("_")[0], decoder, allowed, COLORS))
            for stem, image in images.by_name.items()
            if (mask := masks.by_name.get(stem)) is not None
        ]
        for key, paths in unpaired(images, masks).items():
            problems.setdefault(key, []).extend(paths)
    # A frame in two splits would be scored on what it was trained on: neither is used.
    count = Counter(sample.name for _, sample in found)
    problems["clashes"] += [
        [sample.image for _, sample in found if sample.name == name]
        for name, n in count.items()
        if n > 1
    ]
    kept = [(split, sample) for split, sample in found if count[sample.name] == 1]
    return DatasetIndex(
        root=root,
        layout="camvid",
        classes=CAMVID_CLASSES,
        samples=[sample for _, sample in kept],
        allowed_mask_values=allowed,
        official_splits={
            split: [sample.name for where, sample in kept if where == split] for split in SPLITS
        },
        split_notes=notes,
        **problems,
    )
