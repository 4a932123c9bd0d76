"""Which layout a dataset root uses: Oxford-IIIT Pet, Pascal VOC, or images/ + masks/. It only picks."""

from __future__ import annotations

from pathlib import Path

from gcnseg.data.folders import index_folders, is_folders_layout
from gcnseg.data.oxford_pets import index_oxford, is_oxford_layout
from gcnseg.data.samples import DatasetIndex
from gcnseg.data.voc import index_voc, is_voc_layout
from gcnseg.errors import GcnsegError


def index_dataset(root: str | Path) -> DatasetIndex:
    """Recognise the layout under `root` and pair its images with their masks."""
    root = Path(root)
    if not root.is_dir():
        raise GcnsegError(f"{root}: dataset folder not found")
    if is_oxford_layout(root):
        return index_oxford(root)
    if is_voc_layout(root):
        return index_voc(root)
    if is_folders_layout(root):
        return index_folders(root)
    raise GcnsegError(
        f"{root}: not a dataset (expected images/ + annotations/trimaps/ as in Oxford-IIIT Pet, "
        "JPEGImages/ + SegmentationClass/ as in Pascal VOC, or images/ + masks/)"
    )
