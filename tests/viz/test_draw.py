from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from gcnseg.classes import ClassSet
from gcnseg.data.oxford_pets import PETS
from gcnseg.errors import GcnsegError
from gcnseg.viz.draw import (
    IGNORE_OVERLAY_COLOR,
    caption_height,
    gallery,
    overlay,
    panel,
    save_image,
    save_mask_png,
)

H, W = 48, 64
CAT = 1


def _image() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)


def _mask() -> np.ndarray:
    """Background everywhere, a cat block, a dog block and an ignored border in the bottom right."""
    mask = np.zeros((H, W), np.uint8)
    mask[20:40, 4:30] = CAT
    mask[20:40, 34:50] = 2
    mask[44:, 56:] = 255
    return mask


def test_mask_png_keeps_class_indices_and_class_colours(tmp_path):
    mask = _mask()
    path = save_mask_png(tmp_path / "mask.png", mask, PETS)

    with Image.open(path) as png:
        assert png.mode == "P"
        assert np.array_equal(np.asarray(png), mask)
        palette = np.asarray(png.getpalette("RGB"), np.uint8).reshape(-1, 3)
    assert [tuple(c) for c in palette[: len(PETS.colors)]] == list(PETS.colors)
    assert tuple(palette[255]) == (255, 255, 255)
    assert [p.name for p in tmp_path.iterdir()] == ["mask.png"]  # no temp file left behind


def test_mask_with_undefined_class_is_refused(tmp_path):
    mask = _mask()
    mask[0, 0] = len(PETS.names)
    with pytest.raises(GcnsegError, match="class 3"):
        save_mask_png(tmp_path / "mask.png", mask, PETS)


@pytest.mark.parametrize("alpha", [-0.01, 1.01, float("nan")])
def test_overlay_refuses_an_opacity_outside_0_to_1(alpha: float) -> None:
    with pytest.raises(GcnsegError, match=r"alpha must be in \[0, 1\]"):
        overlay(_image(), _mask(), PETS, alpha=alpha)


def test_overlay_blends_classes_by_alpha_and_leaves_background_and_ignore_alone():
    image, mask = _image(), _mask()
    out = overlay(image, mask, PETS, alpha=0.25, legend=False)

    untouched = (mask == 0) | (mask == 255)
    assert np.array_equal(out[untouched], image[untouched])
    y, x = 25, 10
    assert mask[y, x] == CAT
    expected = np.rint(0.75 * image[y, x] + 0.25 * np.array(PETS.colors[CAT]))
    assert np.array_equal(out[y, x], expected.astype(np.uint8))
    cat_color = np.array(PETS.colors[CAT])
    before = np.abs(image[y, x].astype(int) - cat_color).sum()
    assert np.abs(out[y, x].astype(int) - cat_color).sum() < before


def test_without_a_background_class_every_class_is_painted_and_in_the_legend():
    image, mask = _image(), _mask()
    alike = ClassSet(PETS.names, PETS.colors)  # same classes, none marked background
    out = overlay(image, mask, alike, alpha=0.25, legend=False)
    zero = mask == 0
    expected = np.rint(0.75 * image[zero] + 0.25 * np.array(PETS.colors[0]))
    assert np.array_equal(out[zero], expected.astype(np.uint8))
    assert np.array_equal(out[mask == 255], image[mask == 255])

    only_zero = np.zeros((160, 200), np.uint8)  # class 0 alone: its legend entry or none
    grey = np.full((160, 200, 3), 200, np.uint8)
    for classes, drawn in ((alike, True), (PETS, False)):
        legend = overlay(grey, only_zero, classes, legend=True)
        assert (
            not np.array_equal(legend, overlay(grey, only_zero, classes, legend=False))
        ) == drawn


def test_panel_ground_truth_paints_class_zero_without_a_background():
    image, mask = _image(), _mask()
    alike = ClassSet(PETS.names, PETS.colors)
    sky = (H - 1, 0)  # class 0, clear of the legend in the top-left corner
    assert mask[sky] == 0
    top = caption_height()
    for classes, painted in ((alike, True), (PETS, False)):
        tiles = panel(image, mask, classes, truth=mask)
        truth_tile = tiles[top:, W : 2 * W]
        assert (not np.array_equal(truth_tile[sky], image[sky])) == painted


@pytest.mark.parametrize("size", [(160, 200), (40, 40)])  # natural size, shrunk to fit
def test_legend_stays_within_the_top_left_quarter(size):
    height, width = size
    image, mask = np.full((height, width, 3), 200, np.uint8), np.zeros(size, np.uint8)
    mask[height // 2 :, width // 2 :] = CAT
    plain = overlay(image, mask, PETS, legend=False)
    with_legend = overlay(image, mask, PETS, legend=True)

    changed = np.argwhere((plain != with_legend).any(axis=2))
    assert changed.size
    assert changed[:, 0].max() < height // 2 and changed[:, 1].max() < width // 2


def test_legend_is_left_out_when_the_image_is_too_small_for_it():
    image, mask = _image()[:8, :8], np.full((8, 8), CAT, np.uint8)
    assert np.array_equal(
        overlay(image, mask, PETS, legend=True), overlay(image, mask, PETS, legend=False)
    )


def test_panel_puts_columns_side_by_side_at_the_image_size():
    image, mask = _image(), _mask()
    truth = mask.copy()
    out = panel(image, mask, PETS, truth=truth, title_scores="IoU 0.91")

    assert out.shape == (H + caption_height(), 3 * W, 3)
    pictures = out[caption_height() :]
    assert np.array_equal(pictures[:, :W], image)
    assert np.array_equal(pictures[:, 2 * W :], overlay(image, mask, PETS))
    # Ignored ground-truth pixels are painted grey, unlike in the prediction column.
    expected = np.rint(0.5 * image[-1, -1] + 0.5 * np.array(IGNORE_OVERLAY_COLOR))
    assert np.array_equal(pictures[-1, 2 * W - 1], expected.astype(np.uint8))
    assert np.array_equal(pictures[-1, 3 * W - 1], image[-1, -1])


def test_panel_without_truth_has_two_columns():
    out = panel(_image(), _mask(), PETS)
    assert out.shape == (H + caption_height(), 2 * W, 3)


def test_gallery_grid_size(tmp_path):
    tile_panel = panel(_image(), _mask(), PETS, truth=_mask())
    items = [(f"image {i}  IoU 0.{i}", tile_panel) for i in range(5)]
    path = gallery(items, tmp_path / "worst.png", columns=3, tile=64)

    cell_width = round(tile_panel.shape[1] * 64 / tile_panel.shape[0])
    with Image.open(path) as png:
        assert png.format == "PNG"
        assert png.size == (3 * cell_width, 2 * (64 + caption_height()))


def test_gallery_with_fewer_items_than_columns_is_one_row(tmp_path):
    path = gallery([("only", _image())], tmp_path / "one.png", columns=4, tile=32)
    with Image.open(path) as png:
        assert png.size == (round(W * 32 / H), 32 + caption_height())


def test_save_image_writes_jpeg_by_suffix(tmp_path):
    image = np.full((H, W, 3), 90, np.uint8)
    path = save_image(tmp_path / "flat.jpg", image)
    with Image.open(path) as jpeg:
        assert jpeg.format == "JPEG"
        assert np.abs(np.asarray(jpeg).astype(int) - 90).max() <= 2
    assert [p.name for p in tmp_path.iterdir()] == ["flat.jpg"]
