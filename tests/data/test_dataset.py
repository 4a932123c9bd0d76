"""SegmentationDataset / make_loader over real pairs: types, seeded crops, bad pairs, originals."""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from PIL import Image

from gcnseg.data.dataset import SegmentationDataset, make_loader
from gcnseg.data.layouts import index_dataset
from gcnseg.data.samples import Sample
from gcnseg.data.transforms import eval_transform, train_transform
from gcnseg.errors import GcnsegError

NAMES = [
    "Abyssinian_10",
    "Abyssinian_34",  # GIF named .jpg
    "Abyssinian_5",  # RGBA PNG named .jpg
    "Bengal_1",
    "boxer_26",
    "american_bulldog_10",
    "samoyed_147",
    "Sphynx_93",
]


@pytest.fixture(scope="module")
def samples(pets_root: Path) -> list[Sample]:
    by_name = {s.name: s for s in index_dataset(pets_root).samples}
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
    # Bengal_1's image with boxer_26's trimap: both readable, sizes differ.
    with Image.open(samples[3].image) as a, Image.open(samples[4].mask) as b:
        assert a.size != b.size
    mismatched = replace(samples[3], name="mismatched", mask=samples[4].mask)
    dataset = SegmentationDataset([mismatched, samples[5]], eval_transform(64), keep_original=True)
    item = dataset[0]
    assert item["name"] == "mismatched"
    assert "boxer_26.png: mask is" in item["error"] and "Bengal_1.jpg" in item["error"]
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
