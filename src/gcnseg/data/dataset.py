"""A streaming Dataset over image/mask pairs (never the whole set in RAM) and its DataLoader."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from gcnseg.data.images import read_image
from gcnseg.data.samples import Sample
from gcnseg.data.transforms import Letterbox, Transform, eval_transform, letterbox, to_chw_tensor
from gcnseg.errors import GcnsegError

log = logging.getLogger(__name__)


class SegmentationDataset(Dataset):
    """Decodes one pair per item. Train items are crops; eval items also carry the original label.

    Augmentation is seeded per (seed, epoch, index), so a sample's crop is the same whatever the
    worker count, rank or resume point: that is what makes interrupted runs resume exactly.

    A pair that cannot be used (unreadable or truncated image, a mask that is not one channel,
    mask values outside the class set, image and mask sizes differ) is handled by purpose:

    - training (`keep_original=False`): replaced by the next usable pair and reported once, so an
      epoch keeps its length; the crop is random anyway, no number is attributed to the file;
    - evaluation (`keep_original=True`): never replaced, since its neighbour would be scored
      twice under the wrong name. The item is `{"index": i, "name": ..., "error": "<one line>"}`
      (see `error_item`).
    """

    def __init__(
        self,
        samples: list[Sample],
        transform: Transform,
        *,
        keep_original: bool = False,
        keep_image: bool = False,
        seed: int = 0,
    ):
        if not samples:
            raise GcnsegError("dataset split is empty")
        self.samples = samples
        self.transform = transform
        self.keep_original = keep_original
        self.keep_image = keep_image  # eval items also carry the decoded image (for drawing)
        self.seed = seed
        self.epoch = 0
        self.skipped: set[str] = set()
        self._output_size: tuple[int, int] | None = None

    def __len__(self) -> int:
        return len(self.samples)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @staticmethod
    def _read(sample: Sample) -> tuple[np.ndarray, np.ndarray]:
        """Image and label of a usable pair, else a one-line GcnsegError naming the file."""
        image, label = read_image(sample.image), sample.load_label()
        if image.shape[:2] != label.shape:
            raise GcnsegError(
                f"{sample.mask}: mask is {label.shape[1]}x{label.shape[0]} "
                f"but its image {sample.image.name} is {image.shape[1]}x{image.shape[0]}"
            )
        return image, label

    def _substitute(self, index: int) -> tuple[Sample, np.ndarray, np.ndarray]:
        """Training only: the first usable pair from `index` on; each bad one is logged once."""
        for offset in range(len(self.samples)):
            sample = self.samples[(index + offset) % len(self.samples)]
            try:
                return sample, *self._read(sample)
            except GcnsegError as exc:
                if sample.name not in self.skipped:
                    self.skipped.add(sample.name)
                    log.warning("skipping %s", exc)
        raise GcnsegError("no readable image/mask pair in the dataset")

    def _size(self) -> tuple[int, int]:
        """The transform's output size, found once by running it on one pixel."""
        if self._output_size is None:
            _, mask = self.transform(np.zeros((1, 1, 3), np.uint8), np.zeros((1, 1), np.uint8), 0)
            self._output_size = mask.shape[:2]
        return self._output_size

    def __getitem__(self, index: int) -> dict:
        if self.keep_original:
            sample = self.samples[index]
            try:
                image, label = self._read(sample)
            except GcnsegError as exc:
                self.skipped.add(sample.name)
                return {**error_item(index, sample.name, exc, 0), "size": self._size()}
        else:
            _, image, label = self._substitute(index)
        seed = (self.seed * 1_000_003 + self.epoch * 10_007 + index) % 2**32
        out_image, out_label = self.transform(image, label, seed)
        item = {"image": to_chw_tensor(out_image), "label": _tensor(out_label), "index": index}
        if self.keep_original:
            item["original_label"] = _tensor(label)
            item["letterbox"] = Letterbox.fit(*label.shape, out_image.shape[0])
            if self.keep_image:
                item["original_image"] = image
        return item


def _tensor(array: np.ndarray) -> torch.Tensor:
    """`array` as a tensor, copied only where torch cannot share it: decoders may return read-only
    arrays (PIL's np.asarray does) and a no-op transform passes them through; torch warns on them."""
    return torch.from_numpy(np.require(array, requirements=("C", "W")))


def collate(items: list[dict]) -> dict:
    """Stack the good items' images (and labels); keep per-image fields as lists (their sizes
    differ): `letterbox`, `original_label`, `original_image`.

    `batch["index"]` lists only the good items; `batch["errors"]` (always present) holds
    `(index, name, message)` of the items that could not be read. When none is good,
    `image`/`label` are empty (0, 3, S, S)/(0, S, S) tensors and the lists are empty.
    """
    good = [it for it in items if "error" not in it]
    errors = [(it["index"], it["name"], it["error"]) for it in items if "error" in it]
    if good:
        batch = {key: torch.stack([it[key] for it in good]) for key in STACKED if key in good[0]}
        batch["index"] = torch.tensor([it["index"] for it in good])
        for key in PER_IMAGE:
            if key in good[0]:
                batch[key] = [it[key] for it in good]
    else:
        size = items[0]["size"]
        batch = {
            "image": torch.empty((0, 3, *size), dtype=torch.uint8),
            "label": torch.empty((0, *size), dtype=torch.uint8),
            "index": torch.empty(0, dtype=torch.long),
            "letterbox": [],
            "original_label": [],
        }
    batch["errors"] = errors
    return batch


STACKED = ("image", "label")
PER_IMAGE = ("letterbox", "original_label", "original_image")


def error_item(index: int, name: str, error: GcnsegError, size: int) -> dict:
    """What an item that could not be read becomes: never replaced by another, so nothing is
    scored or written under its name; `collate` moves it to `batch["errors"]`."""
    return {"index": index, "name": name, "error": str(error), "size": (size, size)}


class ImageFiles(Dataset):
    """Unlabelled photos (what `predict` reads), turned upright as their EXIF orientation says,
    letterboxed for the model, with the decoded image kept for drawing; an unreadable file becomes
    an error item."""

    def __init__(self, paths: list[Path], size: int) -> None:
        self.paths = paths
        self.size = size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict:
        try:
            image = read_image(self.paths[index], upright=True)
        except GcnsegError as exc:
            return error_item(index, str(self.paths[index]), exc, self.size)
        boxed, box = letterbox(image, self.size)
        return {
            "index": index,
            "image": to_chw_tensor(boxed),
            "letterbox": box,
            "original_image": image,
        }


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


def eval_loader(
    samples: list[Sample],
    size: int,
    *,
    batch_size: int,
    workers: int | None = None,
    keep_image: bool = False,
    sampler: Sampler | None = None,
    pin_memory: bool = False,
) -> DataLoader:
    """The one way to read a split for scoring: letterboxed to `size`, original labels kept,
    never shuffled, unreadable pairs as error items (validation, `gcnseg test`, engine checks)."""
    dataset = SegmentationDataset(
        samples, eval_transform(size), keep_original=True, keep_image=keep_image
    )
    return make_loader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        workers=default_workers() if workers is None else workers,
        sampler=sampler,
        pin_memory=pin_memory,
    )
