"""`gcnseg data check`: decode every pair once and report what a training run would trip over."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from gcnseg.classes import IGNORE_INDEX
from gcnseg.data.images import EXTENSION_FORMATS, BadMaskValues, image_format, read_image
from gcnseg.data.layouts import index_dataset
from gcnseg.data.samples import Sample, clash_line, unexpected_values
from gcnseg.data.splits import SPLITS
from gcnseg.errors import GcnsegError
from gcnseg.logs import progress_enabled


@dataclass
class CheckReport:
    root: str
    layout: str
    classes: list[str]
    pairs: int
    usable: list[str]
    images_per_class: dict[str, int]
    images_without_mask: list[str] = field(default_factory=list)
    masks_without_image: list[str] = field(default_factory=list)
    strays: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    wrong_format: list[str] = field(default_factory=list)
    size_mismatch: list[str] = field(default_factory=list)
    bad_mask_values: list[str] = field(default_factory=list)
    clashes: list[str] = field(default_factory=list)
    sizes: dict[str, list[int]] = field(default_factory=dict)
    # The dataset's own split (CamVid, split folders): usable pairs in each, and why one is empty.
    splits: dict[str, int] = field(default_factory=dict)
    split_notes: dict[str, str] = field(default_factory=dict)

    @property
    def problems(self) -> int:
        return (
            len(self.unreadable)
            + len(self.size_mismatch)
            + len(self.bad_mask_values)
            + len(self.clashes)
        )

    def failed(self, strict: bool = False) -> bool:
        """Whether `data check` exits non-zero: nothing usable, or (strict) any problem."""
        return not self.usable or (strict and self.problems > 0)

    def to_dict(self) -> dict:
        return asdict(self) | {"usable": len(self.usable), "problems": self.problems}

    def format(self) -> str:
        lines = [
            f"{self.root} ({self.layout}): {self.pairs} pairs, {len(self.usable)} usable",
            "images per class: " + ", ".join(f"{k} {v}" for k, v in self.images_per_class.items()),
        ]
        if self.sizes:
            w, h = self.sizes["width"], self.sizes["height"]
            lines.append(
                f"sizes (min/median/max): width {w[0]}/{w[1]}/{w[2]}, height {h[0]}/{h[1]}/{h[2]}"
            )
        if self.splits:
            counts = [
                f"{split} {n}"
                + (f" ({self.split_notes[split]})" if split in self.split_notes else "")
                for split, n in self.splits.items()
            ]
            lines.append("the dataset's own split (usable pairs): " + ", ".join(counts))
        for title, items in (
            ("unreadable (skipped)", self.unreadable),
            ("image/mask size mismatch (skipped)", self.size_mismatch),
            ("unexpected mask values (skipped)", self.bad_mask_values),
            ("clashing names (skipped)", self.clashes),
            ("content differs from extension (decoded to RGB)", self.wrong_format),
            ("images without mask", self.images_without_mask),
            ("masks without image", self.masks_without_image),
            ("stray files", self.strays),
        ):
            if items:
                lines.append(f"{title}: {len(items)}")
                lines += [f"  {item}" for item in items]
        if not self.usable:
            lines.append("no usable pair: nothing to train or test on (see above)")
        return "\n".join(lines)


def check_sample(sample: Sample, allowed: frozenset[int], report: CheckReport) -> np.ndarray | None:
    """Decode one pair; record its problems on `report`; return its label if usable."""
    expected = EXTENSION_FORMATS.get(sample.image.suffix.lower())
    actual = image_format(sample.image)
    if actual == "MPO":  # multi-picture JPEG (phone cameras): a JPEG stream, decoded as one
        actual = "JPEG"
    if actual is not None and expected is not None and actual != expected:
        report.wrong_format.append(f"{sample.image}: {actual} content named {sample.image.suffix}")
    try:
        image = read_image(sample.image)
        raw_mask = sample.read_raw()
    except BadMaskValues as exc:
        report.bad_mask_values.append(str(exc))
        return None
    except GcnsegError as exc:
        report.unreadable.append(str(exc))
        return None
    if image.shape[:2] != raw_mask.shape:
        report.size_mismatch.append(
            f"{sample.name}: image {image.shape[1]}x{image.shape[0]}, mask {raw_mask.shape[1]}x{raw_mask.shape[0]}"
        )
        return None
    unexpected = unexpected_values(raw_mask, allowed)
    if unexpected:
        report.bad_mask_values.append(
            f"{sample.mask}: mask values {unexpected[:10]} not in {sorted(allowed)}"
        )
        return None
    return sample.decode_label(raw_mask)


def check_dataset(root: str | Path, *, progress: bool = True) -> CheckReport:
    index = index_dataset(root)
    if not index.samples and not index.clashes:
        raise GcnsegError(f"{index.root}: no image/mask pairs found")
    report = CheckReport(
        root=str(index.root),
        layout=index.layout,
        classes=list(index.classes.names),
        pairs=len(index.samples),
        usable=[],
        images_per_class={},
        images_without_mask=[str(p) for p in index.images_without_mask],
        masks_without_image=[str(p) for p in index.masks_without_image],
        strays=[str(p) for p in index.strays],
        clashes=[clash_line(paths) for paths in index.clashes],
        split_notes=dict(index.split_notes),
    )
    per_class: Counter[str] = Counter()
    widths, heights = [], []
    for sample in tqdm(
        index.samples, desc="checking", disable=not (progress and progress_enabled()), leave=False
    ):
        label = check_sample(sample, index.allowed_mask_values, report)
        if label is None:
            continue
        report.usable.append(sample.name)
        heights.append(label.shape[0])
        widths.append(label.shape[1])
        for value in np.unique(label):
            if value != IGNORE_INDEX:
                per_class[index.classes.names[value]] += 1
    report.images_per_class = {
        name: per_class[name] for name in index.classes.names if per_class[name]
    }
    if set(SPLITS) <= index.official_splits.keys():
        usable = set(report.usable)
        report.splits = {
            split: sum(name in usable for name in index.official_splits[split]) for split in SPLITS
        }
    if widths:
        report.sizes = {
            "width": [min(widths), int(np.median(widths)), max(widths)],
            "height": [min(heights), int(np.median(heights)), max(heights)],
        }
    return report
