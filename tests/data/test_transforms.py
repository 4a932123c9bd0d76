"""Train/eval pipelines: padding is ignore, seeds reproduce, letterbox + unletterbox round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gcnseg.classes import IGNORE_INDEX
from gcnseg.data.transforms import (
    Letterbox,
    eval_transform,
    letterbox,
    to_chw_tensor,
    train_transform,
    unletterbox,
)


def _run(transform, image: np.ndarray, label: np.ndarray, seed: int) -> dict:
    transform.set_random_seed(seed)
    return transform(image=image, mask=label)


def test_train_padding_is_ignore_not_background() -> None:
    # LongestMaxSize upsamples the longer side to the crop size, so a merely small image fills the
    # crop at scale 2.0; a 4x30 strip is 9x64 after resizing, at most 18 rows high at scale 2.0.
    image = np.full((4, 30, 3), 200, np.uint8)
    label = np.ones((4, 30), np.uint8)
    transform = train_transform(64)
    for seed in range(8):
        out = _run(transform, image, label, seed)
        assert out["image"].shape == (64, 64, 3) and out["image"].dtype == np.uint8
        mask = out["mask"]
        assert mask.shape == (64, 64) and mask.dtype == np.uint8
        assert set(np.unique(mask).tolist()) <= {1, IGNORE_INDEX}
        assert (mask == IGNORE_INDEX).sum() >= 64 * (64 - 18)
        assert 0 not in mask  # padding must never become background


def test_train_20x30_image_is_never_background() -> None:
    image = np.full((20, 30, 3), 120, np.uint8)
    label = np.ones((20, 30), np.uint8)
    transform = train_transform(64)
    padded = 0
    for seed in range(12):
        mask = _run(transform, image, label, seed)["mask"]
        assert mask.shape == (64, 64)
        assert set(np.unique(mask).tolist()) <= {1, IGNORE_INDEX}
        padded += bool((mask == IGNORE_INDEX).any())
    assert padded >= 3  # scales below ~1.5 leave the 43-row image shorter than the crop


def test_same_seed_same_output_other_seed_differs() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)
    label = rng.integers(0, 3, (50, 70), dtype=np.uint8)
    a = _run(train_transform(48), image, label, 11)
    b = _run(train_transform(48), image, label, 11)  # a fresh pipeline, same seed
    np.testing.assert_array_equal(a["image"], b["image"])
    np.testing.assert_array_equal(a["mask"], b["mask"])
    c = _run(train_transform(48), image, label, 12)
    assert not np.array_equal(a["image"], c["image"])


def _blocks(height: int, width: int, classes: int, block: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, classes, (height // block + 1, width // block + 1), dtype=np.uint8)
    return np.kron(coarse, np.ones((block, block), np.uint8))[:height, :width]


@pytest.mark.parametrize(("size", "threshold"), [(512, 0.99), (256, 0.96)])
def test_unletterbox_restores_original_label(size: int, threshold: float) -> None:
    # 512 upsamples the 333x479 label (lossless up to rounding); 256 halves it, so block edges
    # can move by about a pixel and a few percent of pixels legitimately change.
    height, width, classes = 333, 479, 4
    label = _blocks(height, width, classes, block=24, seed=size)
    image = np.zeros((height, width, 3), np.uint8)
    out = eval_transform(size)(image=image, mask=label)
    boxed = out["mask"]
    assert out["image"].shape == (size, size, 3) and boxed.shape == (size, size)

    box = Letterbox.fit(height, width, size)
    content_h, content_w = box.content_height, box.content_width
    assert content_w == size  # the longer side fills the square
    assert (boxed[:content_h, :content_w] != IGNORE_INDEX).all()
    assert (boxed[content_h:] == IGNORE_INDEX).all() and (
        boxed[:, content_w:] == IGNORE_INDEX
    ).all()

    logits = torch.zeros(classes, size, size)
    content = torch.from_numpy(boxed[:content_h, :content_w].astype(np.int64))
    logits[:, :content_h, :content_w] = F.one_hot(content, classes).permute(2, 0, 1).float()
    logits[0, content_h:, :] = 100.0  # padding predictions must not leak back in
    logits[0, :, content_w:] = 100.0
    restored = unletterbox(logits, box)
    assert restored.shape == (classes, height, width)
    agreement = (restored.argmax(0).numpy() == label).mean()
    assert agreement >= threshold, agreement


def _grey_blocks(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    label = _blocks(height, width, 2, block=24, seed=1)
    return np.repeat(label[..., None] * 255, 3, axis=2).astype(np.uint8), label


@pytest.mark.parametrize("size", [256, 512, 700])
def test_eval_label_stays_on_the_image(size: int) -> None:
    # The image is resized bilinearly (pixel-centre aligned); the label must be resampled on the
    # same grid, or its edges drift off the image's by up to a pixel (cv2.INTER_NEAREST did).
    image, label = _grey_blocks(333, 479)
    out = eval_transform(size)(image=image, mask=label)
    box = Letterbox.fit(333, 479, size)
    h, w = box.content_height, box.content_width
    from_image = (out["image"][:h, :w, 0] > 127).astype(np.uint8)
    assert (from_image == out["mask"][:h, :w]).mean() >= 0.999


def test_train_label_stays_on_the_image() -> None:
    image, label = _grey_blocks(333, 479)
    transform = train_transform(160, jitter=0.0)  # grey image: hue jitter changes nothing
    for seed in range(6):
        out = _run(transform, image, label, seed)
        inside = out["mask"] != IGNORE_INDEX
        from_image = (out["image"][..., 0] > 127).astype(np.uint8)
        assert (from_image[inside] == out["mask"][inside]).mean() >= 0.995, seed


@pytest.mark.parametrize(
    ("height", "width", "size"),
    [(333, 479, 512), (479, 333, 512), (100, 100, 64), (1, 1000, 64), (375, 500, 321), (7, 3, 5)],
)
def test_letterbox_geometry_matches_content(height: int, width: int, size: int) -> None:
    out = eval_transform(size)(
        image=np.zeros((height, width, 3), np.uint8), mask=np.zeros((height, width), np.uint8)
    )
    mask = out["mask"]
    content_rows = int((mask != IGNORE_INDEX).any(axis=1).sum())
    content_cols = int((mask != IGNORE_INDEX).any(axis=0).sum())
    box = Letterbox.fit(height, width, size)
    assert (box.content_height, box.content_width) == (content_rows, content_cols)
    boxed, carried = letterbox(np.zeros((height, width, 3), np.uint8), size)
    assert carried == box and boxed.shape == (size, size, 3)
    # Content sits top-left: everything it does not cover is padding.
    assert (mask[:content_rows, :content_cols] == 0).all()


def test_to_chw_tensor() -> None:
    image = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    tensor = to_chw_tensor(image)
    assert tensor.shape == (3, 2, 3) and tensor.dtype == torch.uint8
    assert tensor[1, 0, 2].item() == image[0, 2, 1]
    assert tensor.is_contiguous()
