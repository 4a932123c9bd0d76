"""Train/eval pipelines: padding is ignore, labels stay in the class set and on the image, seeds
reproduce, each step matches an independent definition, letterbox + unletterbox round trip."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gcnseg.classes import IGNORE_INDEX
from gcnseg.data.transforms import (
    Letterbox,
    class_pixel,
    color_jitter,
    eval_transform,
    letterbox,
    pad_centered,
    resize_image,
    resize_mask,
    to_chw_tensor,
    train_transform,
    unletterbox,
)


def _run(transform, image: np.ndarray, label: np.ndarray, seed: int) -> dict:
    out_image, out_mask = transform(image, label, seed)
    return {"image": out_image, "mask": out_mask}


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
    out = _run(eval_transform(size), image, label, 0)
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
    # same grid, or its edges drift off the image's by up to a pixel (as corner sampling does).
    image, label = _grey_blocks(333, 479)
    out = _run(eval_transform(size), image, label, 0)
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
    out = _run(
        eval_transform(size),
        np.zeros((height, width, 3), np.uint8),
        np.zeros((height, width), np.uint8),
        0,
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


def _bilinear_reference(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Separable linear interpolation on pixel centres, edges clamped (OpenCV's INTER_LINEAR)."""
    out = image.astype(np.float64)
    for axis, (n, m) in enumerate(zip(image.shape[:2], size, strict=True)):
        pos = np.clip((np.arange(m) + 0.5) * n / m - 0.5, 0, n - 1)
        low = np.floor(pos).astype(int)
        high, frac = np.minimum(low + 1, n - 1), pos - low
        shape = (-1, 1, 1) if axis == 0 else (1, -1, 1)
        out = np.take(out, low, axis) * (1 - frac.reshape(shape)) + np.take(
            out, high, axis
        ) * frac.reshape(shape)
    return out


@pytest.mark.parametrize("size", [(50, 70), (120, 90), (17, 200), (33, 33)])
def test_resize_image_is_pixel_centre_bilinear(size: tuple[int, int]) -> None:
    image = np.random.default_rng(0).integers(0, 256, (41, 57, 3), dtype=np.uint8)
    out = resize_image(image, size)
    assert out.shape == (*size, 3) and out.dtype == np.uint8 and out.flags.c_contiguous
    # uint8 fixed-point arithmetic rounds differently by at most one level.
    assert np.abs(out - np.rint(_bilinear_reference(image, size))).max() <= 1


@pytest.mark.parametrize("size", [(50, 70), (120, 90), (7, 200), (41, 57), (1, 1)])
def test_resize_mask_takes_the_nearest_pixel_centre(size: tuple[int, int]) -> None:
    mask = np.random.default_rng(1).choice(np.array([0, 3, 7, IGNORE_INDEX], np.uint8), (41, 57))
    rows = np.minimum(((np.arange(size[0]) + 0.5) * 41 / size[0]).astype(int), 40)
    cols = np.minimum(((np.arange(size[1]) + 0.5) * 57 / size[1]).astype(int), 56)
    np.testing.assert_array_equal(resize_mask(mask, size), mask[rows[:, None], cols])


def test_read_only_arrays_are_accepted() -> None:
    # Decoded images are read-only views; the pipelines must neither fail nor warn on them.
    image = np.full((30, 40, 3), 90, np.uint8)
    mask = np.ones((30, 40), np.uint8)
    image.flags.writeable = mask.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for transform in (train_transform(32), eval_transform(48)):
            out_image, out_mask = transform(image, mask, 3)
            assert out_image.shape == (*out_mask.shape, 3)


def test_train_mask_keeps_its_class_values() -> None:
    rng = np.random.default_rng(2)
    classes = np.array([0, 1, 2, 5], np.uint8)
    label = rng.choice(classes, (90, 130))
    image = rng.integers(0, 256, (90, 130, 3), dtype=np.uint8)
    transform = train_transform(64)
    for seed in range(20):
        mask = _run(transform, image, label, seed)["mask"]
        assert set(np.unique(mask).tolist()) <= {*classes.tolist(), IGNORE_INDEX}, seed


def test_train_padding_is_centred_zero_and_ignore() -> None:
    # scale fixed at 0.5: the 100x100 pair becomes 32x32, centred in the 64x64 crop.
    image = np.full((100, 100, 3), 200, np.uint8)
    label = np.full((100, 100), 2, np.uint8)
    out = _run(train_transform(64, scale=(0.5, 0.5)), image, label, 0)
    mask, boxed = out["mask"], out["image"]
    inside = np.zeros((64, 64), bool)
    inside[16:48, 16:48] = True
    np.testing.assert_array_equal(mask == 2, inside)
    assert (mask[~inside] == IGNORE_INDEX).all()
    assert (boxed[~inside] == 0).all() and (boxed[inside] > 0).all()


def test_train_scale_range_sets_the_content_size() -> None:
    # A 200x100 pair at crop 80: the longer side is 80 * scale before cropping.
    image = np.full((100, 200, 3), 50, np.uint8)
    label = np.ones((100, 200), np.uint8)
    transform = train_transform(80, scale=(0.5, 0.75))
    for seed in range(10):
        mask = _run(transform, image, label, seed)["mask"]
        width = int((mask != IGNORE_INDEX).any(axis=0).sum())
        height = int((mask != IGNORE_INDEX).any(axis=1).sum())
        assert 40 <= width <= 60, seed
        assert abs(height - width / 2) <= 1, seed


def test_train_flips_image_and_mask_together() -> None:
    # Left third class 1 and white, the rest class 0 and black; no scaling, crop = whole image.
    image = np.zeros((60, 60, 3), np.uint8)
    image[:, :20] = 255
    label = np.zeros((60, 60), np.uint8)
    label[:, :20] = 1
    transform = train_transform(60, scale=(1.0, 1.0), jitter=0.0)
    sides = set()
    for seed in range(16):
        out = _run(transform, image, label, seed)
        np.testing.assert_array_equal(out["image"][..., 0] > 127, out["mask"] == 1)
        sides.add(bool(out["mask"][0, 0] == 1))
    assert sides == {True, False}  # both flipped and unflipped crops occurred


def test_class_crops_find_a_small_class_that_random_crops_miss() -> None:
    # A 400x400 frame of class 0 with a 6x6 class-1 patch in a corner, cropped to 100 unscaled:
    # a random window holds the patch about 1 time in 50, a class crop every other time (the
    # class is drawn from {0, 1}), the patch then wholly inside its window.
    image = np.zeros((400, 400, 3), np.uint8)
    label = np.zeros((400, 400), np.uint8)
    label[380:386, 10:16] = 1
    label[0, :] = IGNORE_INDEX  # ignore is never a class to crop around
    counts = {}
    for share in (0.0, 1.0):
        transform = train_transform(400 // 4, scale=(4.0, 4.0), jitter=0.0, class_crops=share)
        masks = [_run(transform, image, label, seed)["mask"] for seed in range(200)]
        counts[share] = [int((mask == 1).sum()) for mask in masks]
    assert sum(n > 0 for n in counts[0.0]) < 20
    assert 70 <= counts[1.0].count(36) <= sum(n > 0 for n in counts[1.0]) <= 140


def test_class_pixel_draws_labelled_classes_alike_and_never_ignore() -> None:
    label = np.full((50, 50), IGNORE_INDEX, np.uint8)
    assert class_pixel(label, np.random.default_rng(0)) is None
    label[:40] = 3
    label[45, 7] = 9
    rng = np.random.default_rng(0)
    drawn = [label[class_pixel(label, rng)] for _ in range(400)]
    assert set(drawn) == {3, 9}
    assert 150 <= drawn.count(9) <= 250


def test_pad_centered_puts_the_odd_pixel_after() -> None:
    out = pad_centered(np.ones((3, 6), np.uint8), 8, IGNORE_INDEX)
    assert out.shape == (8, 8)
    rows, cols = np.nonzero(out == 1)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (2, 4, 1, 6)


def _jitter(image: np.ndarray, seed: int, strength: float = 0.3) -> np.ndarray:
    return color_jitter(image, np.random.default_rng(seed), strength)


def test_color_jitter_keeps_grey_grey_and_moves_colours_within_bounds() -> None:
    rng = np.random.default_rng(3)
    grey = np.repeat(rng.integers(0, 256, (20, 30, 1), dtype=np.uint8), 3, axis=2)
    colour = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    changed = 0
    for seed in range(10):
        out = _jitter(grey, seed)
        assert out.dtype == np.uint8 and out.shape == grey.shape
        assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
        shifted = _jitter(colour, seed)
        changed += not np.array_equal(shifted, colour)
    assert changed == 10


def test_color_jitter_of_strength_zero_leaves_greys_alone() -> None:
    # Brightness, contrast and saturation factors are all 1 and a hue turn keeps greys.
    grey = np.repeat(np.arange(256, dtype=np.uint8).reshape(16, 16, 1), 3, axis=2)
    for seed in range(5):
        np.testing.assert_array_equal(_jitter(grey, seed, strength=0.0), grey)


def test_hue_rotation_by_a_third_turns_red_into_green() -> None:
    from gcnseg.data.transforms import _hue_rotation

    red = np.array([255.0, 0, 0])
    turned = np.clip(_hue_rotation(1 / 3) @ red, 0, 255)
    assert turned.argmax() == 1 and turned[0] < 1 and turned[2] < 1
    np.testing.assert_allclose(_hue_rotation(0), np.eye(3), atol=1e-12)
    luma = np.array([0.213, 0.715, 0.072])
    colour = np.array([30.0, 200.0, 90.0])
    assert luma @ (_hue_rotation(0.05) @ colour) == pytest.approx(luma @ colour, abs=0.2)
