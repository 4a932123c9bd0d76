"""Which layout a dataset root uses: Oxford-IIIT Pet, Pascal VOC, CamVid, or images/ + masks/.
It picks, and warns of files it cannot pair unambiguously (the index lists them for `data check`).
"""

from __future__ import annotations

import logging
from pathlib import Path

from gcnseg.data.camvid import index_camvid, is_camvid_layout
from gcnseg.data.folders import index_folders, is_folders_layout
from gcnseg.data.oxford_pets import index_oxford, is_oxford_layout
from gcnseg.data.samples import DatasetIndex, clash_line
from gcnseg.data.voc import index_voc, is_voc_layout
from gcnseg.errors import GcnsegError

log = logging.getLogger(__name__)


def index_dataset(root: str | Path) -> DatasetIndex:
    """Recognise the layout under `root` and pair its images with their masks."""
    root = Path(root)
    if not root.is_dir():
        raise GcnsegError(f"{root}: dataset folder not found")
    index = _index(root)
    for paths in index.clashes:
        log.warning("%s", clash_line(paths))
    return index


def _index(root: Path) -> DatasetIndex:
    if is_oxford_layout(root):
        return index_oxford(root)
    if is_voc_layout(root):
        return index_voc(root)
    if is_camvid_layout(root):
        return index_camvid(root)
    if is_folders_layout(root):
        return index_folders(root)
    raise GcnsegError(
        f"{root}: not a dataset (expected images/ + annotations/trimaps/ as in Oxford-IIIT Pet, "
        "JPEGImages/ + SegmentationClass/ as in Pascal VOC, train/ + trainannot/ + val/ + "
        "valannot/ as CamVid is distributed, or images/ + masks/)"
    )
