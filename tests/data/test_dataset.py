"""SegmentationDataset / make_loader over generated pairs: types, seeded crops, bad pairs, originals."""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from _data import GIF_NAMED_JPG, RGBA_PNG_NAMED_JPG
from gcnseg.data import samples as samples_module
from gcnseg.data.dataset import SegmentationDataset, make_loader
from gcnseg.data.images import image_size
from gcnseg.data.layouts import index_dataset
from gcnseg.data.samples import Sample
from gcnseg.data.transforms import eval_transform, train_transform
from gcnseg.errors import GcnsegError

# Cats and dogs of several sizes, the two whose content is not JPEG among them; [3] and [4]
# differ in size (the mismatch test pairs one's image with the other's mask).
NAMES = [
    "Abyssinian_1",
    GIF_NAMED_JPG,
    RGBA_PNG_NAMED_JPG,
    "Bengal_1",
    "boxer_2",
    "beagle_4",
    "boxer_5",
    "Bengal_6",
]


@pytest.fixture(scope="module")
def samples(quirky_pets: Path) -> list[Sample]:
    by_name = {s.name: s for s in index_dataset(quirky_pets).samples}
    return [by_name[n] for n in NAMES]


def test_items_are_uint8_crops(samples: list[Sample]) -> None:
    dataset = SegmentationDataset(samples, train_transform(96), seed=0)
    assert len(dataset) == 8
    for index, sample in enumerate(samples):
        item = dataset[index]
        assert item["index"] == index
        assert item["image"].dtype == torch.uint8 and item["image"].shape == (3, 96, 96)
        assert item["label"].dtype == torch.uint8 and item["label"].shape == (96, 96)
        values = set(item["label"].unique().tolist())
        assert values <= {0, sample.decoder.pet_class, 255}, (sample.name, values)
        assert "original_label" not in item
    assert dataset.skipped == set()


def test_seeded_per_seed_epoch_index(samples: list[Sample]) -> None:
    a = SegmentationDataset(samples, train_transform(96), seed=3)
    b = SegmentationDataset(samples, train_transform(96), seed=3)
    b[5]  # consuming other items first must not matter
    b[0]
    first = a[2]
    again = b[2]
    assert torch.equal(first["image"], again["image"])
    assert torch.equal(first["label"], again["label"])
    assert torch.equal(a[2]["image"], first["image"])  # asking twice: same crop

    a.set_epoch(1)
    next_epoch = a[2]
    assert not torch.equal(next_epoch["image"], first["image"])
    b.set_epoch(1)
    assert torch.equal(b[2]["image"], next_epoch["image"])

    other_seed = SegmentationDataset(samples, train_transform(96), seed=4)
    assert not torch.equal(other_seed[2]["image"], first["image"])


def test_corrupt_image_is_replaced_in_training_only(
    samples: list[Sample], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken_image = tmp_path / "broken.jpg"
    broken_image.write_bytes(os.urandom(4096))
    broken = replace(samples[3], name="broken", image=broken_image)
    mixed = [*samples[:3], broken, *samples[3:]]
    train = SegmentationDataset(mixed, train_transform(64))
    with caplog.at_level(logging.WARNING, logger="gcnseg.data.dataset"):
        item = train[3]
        train[3]
    assert train.skipped == {"broken"} and item["index"] == 3
    warnings = [r for r in caplog.records if "broken.jpg" in r.getMessage()]
    assert len(warnings) == 1  # reported once, not at every epoch

    evaluation = SegmentationDataset(mixed, eval_transform(96), keep_original=True)
    item = evaluation[3]
    assert item["name"] == "broken" and item["index"] == 3
    assert str(broken_image) in item["error"]
    # Its neighbour is scored once, under its own index.
    assert torch.equal(evaluation[4]["original_label"], torch.from_numpy(samples[3].load_label()))


def test_size_mismatch_is_an_error_item(samples: list[Sample]) -> None:
    # One pet's image with another's trimap: both readable, sizes differ.
    with Image.open(samples[3].image) as a, Image.open(samples[4].mask) as b:
        assert a.size != b.size
    mismatched = replace(samples[3], name="mismatched", mask=samples[4].mask)
    dataset = SegmentationDataset([mismatched, samples[5]], eval_transform(64), keep_original=True)
    item = dataset[0]
    assert item["name"] == "mismatched"
    assert f"{samples[4].mask.name}: mask is" in item["error"]
    assert samples[3].image.name in item["error"]
    batch = next(iter(make_loader(dataset, batch_size=2, shuffle=False, workers=0)))
    assert batch["index"].tolist() == [1]
    assert batch["errors"] == [(0, "mismatched", item["error"])]


def test_nothing_readable(tmp_path: Path, samples: list[Sample]) -> None:
    broken_image = tmp_path / "broken.jpg"
    broken_image.write_bytes(b"not an image")
    dataset = SegmentationDataset([replace(samples[0], image=broken_image)], eval_transform(64))
    with pytest.raises(GcnsegError, match="no readable image/mask pair"):
        dataset[0]
    with pytest.raises(GcnsegError, match="empty"):
        SegmentationDataset([], eval_transform(64))


def test_loader_keeps_original_labels(samples: list[Sample]) -> None:
    dataset = SegmentationDataset(samples, eval_transform(96), keep_original=True)
    loader = make_loader(dataset, batch_size=3, shuffle=False, workers=0)
    seen = []
    for batch in loader:
        n = len(batch["index"])
        assert batch["image"].shape == (n, 3, 96, 96) and batch["image"].dtype == torch.uint8
        assert batch["label"].shape == (n, 96, 96) and batch["label"].dtype == torch.uint8
        assert isinstance(batch["original_label"], list) and len(batch["original_label"]) == n
        for index, original in zip(batch["index"].tolist(), batch["original_label"], strict=True):
            with Image.open(samples[index].image) as image:
                width, height = image.size
            assert original.shape == (height, width) and original.dtype == torch.uint8
            assert torch.equal(original, torch.from_numpy(samples[index].load_label()))
            seen.append(index)
    assert seen == list(range(8))


def test_worker_count_does_not_change_crops(samples: list[Sample]) -> None:
    dataset = SegmentationDataset(samples[:4], train_transform(64), seed=1)
    batches = []
    for workers in (0, 2):
        loader = make_loader(dataset, batch_size=2, shuffle=True, workers=workers, seed=5)
        batches.append(list(loader))
    for single, multi in zip(*batches, strict=True):
        assert torch.equal(single["index"], multi["index"])
        assert torch.equal(single["image"], multi["image"])
        assert torch.equal(single["label"], multi["label"])


def test_read_only_decodes_are_copied_for_torch(
    tiny_folders: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A decoder may return read-only arrays (PIL's np.asarray does); torch must never be handed
    one (it warns "non-writable tensors"), even where the transform changes nothing."""
    real_read_mask, real_from_numpy = samples_module.read_mask, torch.from_numpy

    def read_only_mask(path: Path, *args) -> np.ndarray:
        mask = real_read_mask(path, *args)
        mask.flags.writeable = False
        return mask

    def writable_only(array: np.ndarray) -> torch.Tensor:
        assert array.flags.writeable, "a read-only array reached torch.from_numpy"
        return real_from_numpy(array)

    monkeypatch.setattr(samples_module, "read_mask", read_only_mask)
    monkeypatch.setattr(torch, "from_numpy", writable_only)
    folder_samples = index_dataset(tiny_folders).samples
    # A square image at its own size: eval's letterbox is a no-op and returns the input array.
    side = next(w for w, h in (image_size(s.image) for s in folder_samples) if w == h)
    dataset = SegmentationDataset(folder_samples, eval_transform(side), keep_original=True)
    for index, sample in enumerate(folder_samples):
        item = dataset[index]
        assert item["label"].shape == (side, side)
        assert torch.equal(item["original_label"], real_from_numpy(sample.load_label().copy()))
