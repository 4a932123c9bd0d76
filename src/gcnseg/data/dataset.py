"""A streaming Dataset over image/mask pairs (never the whole set in RAM) and its DataLoader."""

from __future__ import annotations

import logging
import os

import albumentations as A
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from gcnseg.data.images import read_image
from gcnseg.data.samples import Sample
from gcnseg.data.transforms import Letterbox, to_chw_tensor
from gcnseg.errors import GcnsegError

log = logging.getLogger(__name__)


class SegmentationDataset(Dataset):
    """Decodes one pair per item. Train items are crops; eval items also carry the original label.

    Augmentation is seeded per (seed, epoch, index), so a sample's crop is the same whatever the
    worker count, rank or resume point: that is what makes interrupted runs resume exactly.
    """

    def __init__(
        self,
        samples: list[Sample],
        transform: A.Compose,
        *,
        keep_original: bool = False,
        seed: int = 0,
    ):
        if not samples:
            raise GcnsegError("dataset split is empty")
        self.samples = samples
        self.transform = transform
        self.keep_original = keep_original
        self.seed = seed
        self.epoch = 0
        self.skipped: set[str] = set()

    def __len__(self) -> int:
        return len(self.samples)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _load(self, index: int) -> tuple[Sample, np.ndarray, np.ndarray]:
        # A file that fails to decode is reported once and replaced by the next sample.
        for offset in range(len(self.samples)):
            sample = self.samples[(index + offset) % len(self.samples)]
            try:
                image, label = read_image(sample.image), sample.load_label()
            except GcnsegError as exc:
                if sample.name not in self.skipped:
                    self.skipped.add(sample.name)
                    log.warning("skipping %s", exc)
                continue
            if image.shape[:2] != label.shape:
                if sample.name not in self.skipped:
                    self.skipped.add(sample.name)
                    log.warning("skipping %s: image and mask sizes differ", sample.name)
                continue
            return sample, image, label
        raise GcnsegError("no readable image/mask pair in the dataset")

    def __getitem__(self, index: int) -> dict:
        _, image, label = self._load(index)
        self.transform.set_random_seed(
            (self.seed * 1_000_003 + self.epoch * 10_007 + index) % 2**32
        )
        out = self.transform(image=image, mask=label)
        item = {
            "image": to_chw_tensor(out["image"]),
            "label": torch.from_numpy(np.ascontiguousarray(out["mask"])),
            "index": index,
        }
        if self.keep_original:
            item["original_label"] = torch.from_numpy(label)
            item["letterbox"] = Letterbox.fit(*label.shape, out["image"].shape[0])
        return item


def collate(items: list[dict]) -> dict:
    """Stack what has one shape; keep original-resolution labels as a list (their sizes differ)."""
    batch = {
        "image": torch.stack([it["image"] for it in items]),
        "label": torch.stack([it["label"] for it in items]),
        "index": torch.tensor([it["index"] for it in items]),
    }
    if "original_label" in items[0]:
        batch["original_label"] = [it["original_label"] for it in items]
        batch["letterbox"] = [it["letterbox"] for it in items]
    return batch


def default_workers() -> int:
    """One loader worker per spare core, at most 4: decoding must not starve the compute threads."""
    cores = (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    )
    return min(4, max(1, cores // 2))


def make_loader(
    dataset: SegmentationDataset,
    *,
    batch_size: int,
    shuffle: bool,
    workers: int,
    seed: int = 0,
    sampler: Sampler | None = None,
    drop_last: bool = False,
    pin_memory: bool = False,
) -> DataLoader:
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle and sampler is None,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate,
        drop_last=drop_last,
        pin_memory=pin_memory,
        generator=generator,
        persistent_workers=False,
    )
