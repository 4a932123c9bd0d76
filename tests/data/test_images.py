"""read_image / read_mask: whatever the real format behind the extension, HxWx3 uint8 or one-line errors."""

from __future__ import annotations

import os
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from _data import GIF_NAMED_JPG, RGBA_PNG_NAMED_JPG
from gcnseg.data import images
from gcnseg.data.images import ImageTooLarge, image_format, image_size, read_image, read_mask
from gcnseg.errors import GcnsegError


def _assert_rgb(array: np.ndarray, size: tuple[int, int]) -> None:
    """HxWx3 uint8 with (width, height) == size."""
    assert array.dtype == np.uint8
    assert array.ndim == 3 and array.shape[2] == 3
    assert (array.shape[1], array.shape[0]) == size


def test_gif_named_jpg(quirky_pets: Path) -> None:
    path = quirky_pets / "images" / f"{GIF_NAMED_JPG}.jpg"
    with Image.open(path) as image:
        assert image.format == "GIF"
        size = image.size
        expected = np.asarray(image.convert("RGB"))
    array = read_image(path)
    _assert_rgb(array, size)
    np.testing.assert_array_equal(array, expected)
    assert array.std() > 0  # the picture, not a blank frame


def test_rgba_png_named_jpg(quirky_pets: Path) -> None:
    path = quirky_pets / "images" / f"{RGBA_PNG_NAMED_JPG}.jpg"
    with Image.open(path) as image:
        assert (image.format, image.mode) == ("PNG", "RGBA")
        size = image.size
        expected = np.asarray(image.convert("RGB"))  # opaque everywhere: compositing keeps it
    array = read_image(path)
    _assert_rgb(array, size)
    np.testing.assert_array_equal(array, expected)


def test_grey_l(tmp_path: Path) -> None:
    values = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    path = tmp_path / "grey.png"
    Image.fromarray(values, mode="L").save(path)
    array = read_image(path)
    _assert_rgb(array, (4, 3))
    for channel in range(3):
        np.testing.assert_array_equal(array[..., channel], values)


def test_palette_p(tmp_path: Path) -> None:
    image = Image.new("P", (3, 2))
    image.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (253 * 3))
    image.putdata([0, 1, 2, 2, 1, 0])
    path = tmp_path / "palette.png"
    image.save(path)
    with Image.open(path) as reopened:
        assert reopened.mode == "P"
    array = read_image(path)
    _assert_rgb(array, (3, 2))
    red, green, blue = (255, 0, 0), (0, 255, 0), (0, 0, 255)
    assert [tuple(v) for v in array[0]] == [red, green, blue]
    assert [tuple(v) for v in array[1]] == [blue, green, red]


def test_16_bit_scales_to_8_bit(tmp_path: Path) -> None:
    values = np.array([[0, 257, 32768, 65535]], dtype=np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    with Image.open(path) as reopened:
        assert reopened.mode == "I;16"
    array = read_image(path)
    _assert_rgb(array, (4, 1))
    assert array[0, :, 0].tolist() == [0, 1, 127, 255]
    assert (array[..., 0] == array[..., 1]).all() and (array[..., 1] == array[..., 2]).all()


def test_rgba_transparent_area_is_white(tmp_path: Path) -> None:
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (10, 20, 30, 255)  # opaque: kept
    rgba[0, 1] = (200, 0, 0, 0)  # fully transparent red: must not stay red
    rgba[1, :] = (0, 0, 0, 0)  # fully transparent black
    path = tmp_path / "alpha.jpg"  # content PNG, named .jpg as in the release
    Image.fromarray(rgba, mode="RGBA").save(path, format="PNG")
    array = read_image(path)
    _assert_rgb(array, (2, 2))
    assert tuple(array[0, 0]) == (10, 20, 30)
    assert tuple(array[0, 1]) == (255, 255, 255)
    assert (array[1] == 255).all()


def test_multi_picture_jpeg_reads_first_frame(tmp_path: Path) -> None:
    path = tmp_path / "phone.jpg"
    first = Image.new("RGB", (8, 6), (0, 0, 0))
    first.save(path, format="MPO", save_all=True, append_images=[Image.new("RGB", (8, 6), "red")])
    assert image_format(path) == "MPO"
    array = read_image(path)
    _assert_rgb(array, (8, 6))
    assert array.max() < 20  # first frame (black), not the red second one


def _assert_one_line_naming(exc: pytest.ExceptionInfo[GcnsegError], path: Path) -> None:
    message = str(exc.value)
    assert str(path) in message
    assert "\n" not in message


def test_corrupt_file(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.jpg"
    path.write_bytes(os.urandom(2048))
    with pytest.raises(GcnsegError) as exc:
        read_image(path)
    _assert_one_line_naming(exc, path)
    with pytest.raises(GcnsegError) as exc:
        read_mask(path)
    _assert_one_line_naming(exc, path)
    assert image_format(path) is None


def test_truncated_jpeg(tmp_path: Path) -> None:
    full = tmp_path / "full.jpg"
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(full, quality=95)
    path = tmp_path / "truncated.jpg"
    path.write_bytes(full.read_bytes()[:600])
    with pytest.raises(GcnsegError) as exc:
        read_image(path)
    _assert_one_line_naming(exc, path)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "missing.jpg"
    with pytest.raises(GcnsegError) as exc:
        read_image(path)
    _assert_one_line_naming(exc, path)
    assert "not found" in str(exc.value)


def test_read_mask_values_and_rgb_rejected(tmp_path: Path) -> None:
    values = np.array([[0, 1, 2], [255, 1, 0]], np.uint8)
    path = tmp_path / "mask.png"
    Image.fromarray(values, mode="L").save(path)
    mask = read_mask(path)
    assert mask.dtype == np.uint8
    np.testing.assert_array_equal(mask, values)

    rgb = tmp_path / "rgb_mask.png"
    Image.new("RGB", (3, 2)).save(rgb)
    with pytest.raises(GcnsegError) as exc:
        read_mask(rgb)
    _assert_one_line_naming(exc, rgb)


def test_two_channel_mask_rejected(tmp_path: Path) -> None:
    path = tmp_path / "la.png"
    Image.new("LA", (4, 3), (1, 255)).save(path)
    with pytest.raises(GcnsegError, match="single-channel") as exc:
        read_mask(path)
    _assert_one_line_naming(exc, path)


def test_pixel_limit_is_checked_from_the_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "big.png"
    Image.new("RGB", (40, 30)).save(path)
    assert image_size(path) == (40, 30)
    monkeypatch.setattr(images, "MAX_PIXELS", 40 * 30 - 1)
    for read in (read_image, read_mask, image_size):
        with pytest.raises(ImageTooLarge, match=r"image too large \(40x30\)") as exc:
            read(path)
        _assert_one_line_naming(exc, path)
    assert image_format(path) is None


def test_pil_warning_size_is_accepted_below_our_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between PIL's warning and our limit an image is read, without a DecompressionBombWarning."""
    path = tmp_path / "warned.png"
    Image.new("L", (40, 30), 1).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 40 * 30 - 1)  # PIL warns, does not raise
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_mask(path).shape == (30, 40)


def test_fifo_is_refused_without_opening(tmp_path: Path) -> None:
    fifo = tmp_path / "x.jpg"
    os.mkfifo(fifo)
    with pytest.raises(GcnsegError, match="not a regular file"):
        read_image(fifo)  # opening it would block until a writer appears


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (np.full((4, 5), 0.6, np.float32), "whole class indices, got 0.6"),
        (np.full((4, 5), -1, np.int32), r"negative mask values \(min -1\)"),
        (np.full((4, 5), 300, np.int32), r"above 255 \(max 300\)"),
    ],
)
def test_masks_no_class_index_can_be_are_refused(
    tmp_path: Path, values: np.ndarray, message: str
) -> None:
    path = tmp_path / "mask.tif"
    Image.fromarray(values).save(path)
    with pytest.raises(images.BadMaskValues, match=message) as exc:
        read_mask(path)
    _assert_one_line_naming(exc, path)


def test_float_mask_of_whole_numbers_is_read(tmp_path: Path) -> None:
    path = tmp_path / "mask.tif"
    Image.fromarray(np.array([[0, 1], [2, 255]], np.float32)).save(path)
    np.testing.assert_array_equal(read_mask(path), [[0, 1], [2, 255]])


def _png(path: Path, width: int, height: int, rows: int) -> Path:
    """A grey PNG whose header declares width×height but whose data ends after `rows` rows,
    closed properly (zlib end, IEND), so PIL reads it without complaint."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"".join(b"\x00" + b"\x80" * width for _ in range(rows)))
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )
    return path


def test_png_declaring_more_pixels_than_it_holds_is_truncated(tmp_path: Path) -> None:
    path = _png(tmp_path / "short.png", 11000, 11000, 50)
    for read in (read_image, read_mask, image_size):
        with pytest.raises(GcnsegError, match="truncated image") as exc:
            read(path)
        _assert_one_line_naming(exc, path)
    data = path.read_bytes()
    with pytest.raises(GcnsegError, match="truncated image"):
        images.decode_image(data, "upload.png")


def test_highly_compressible_pngs_are_not_mistaken_for_truncated(tmp_path: Path) -> None:
    whole = _png(tmp_path / "whole.png", 3000, 2000, 2000)  # every row there: flat grey
    assert read_mask(whole).shape == (2000, 3000)
    for mode in ("1", "L", "P", "RGB"):  # a flat picture is the best case for deflate
        path = tmp_path / f"flat_{mode}.png"
        Image.new(mode, (3000, 2000)).save(path, optimize=True)
        assert image_size(path) == (3000, 2000)


def _photo_with_orientation(path: Path, orientation: int) -> Path:
    """A 40×24 JPEG (stored landscape) with distinct corners, tagged with EXIF `orientation`."""
    pixels = np.zeros((24, 40, 3), np.uint8)
    pixels[:12, :20] = (250, 0, 0)
    pixels[:12, 20:] = (0, 250, 0)
    pixels[12:, :20] = (0, 0, 250)
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(pixels).save(path, exif=exif, quality=95)
    return path


@pytest.mark.parametrize("orientation", range(1, 9))
def test_upright_applies_exif_orientation_like_pil(tmp_path: Path, orientation: int) -> None:
    path = _photo_with_orientation(tmp_path / "phone.jpg", orientation)
    with Image.open(path) as image:
        expected = np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
        stored = np.asarray(image.convert("RGB"))
    np.testing.assert_array_equal(read_image(path, upright=True), expected)
    np.testing.assert_array_equal(read_image(path), stored)  # datasets: as stored
    np.testing.assert_array_equal(images.decode_image(path.read_bytes(), "up.jpg"), expected)
    assert images.image_orientation(path) == orientation


def test_orientation_6_turns_photo_and_its_mask_alike(tmp_path: Path) -> None:
    path = _photo_with_orientation(tmp_path / "phone.jpg", 6)
    assert read_image(path).shape == (24, 40, 3)
    upright = read_image(path, upright=True)
    assert upright.shape == (40, 24, 3)
    stored_mask = np.arange(24 * 40, dtype=np.int64).reshape(24, 40) % 251
    turned = images.orient(stored_mask, 6)
    assert turned.shape == (40, 24)
    assert turned[0, -1] == stored_mask[0, 0]  # rotated 90° clockwise: top-left to top-right
    stored = images.decode_image(path.read_bytes(), "up.jpg", upright=False)
    assert stored.shape == (24, 40, 3)
