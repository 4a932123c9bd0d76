"""Reading images and masks whatever their real format: a `.jpg` may be a GIF or an RGBA PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from gcnseg.errors import GcnsegError

# What PIL calls the formats a file extension promises.
EXTENSION_FORMATS = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".png": "PNG",
    ".gif": "GIF",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
}
IMAGE_EXTENSIONS = frozenset(EXTENSION_FORMATS)


def _open(path: Path) -> Image.Image:
    try:
        image = Image.open(path)
        image.load()
    except FileNotFoundError:
        raise GcnsegError(f"{path}: file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise GcnsegError(f"{path}: unreadable image ({exc})") from None
    return image


def image_format(path: Path) -> str | None:
    """The format the file's content really has (PIL's name), or None when unreadable."""
    try:
        with Image.open(path) as image:
            return image.format
    except (UnidentifiedImageError, OSError):
        return None


def to_rgb(image: Image.Image) -> np.ndarray:
    """HxWx3 uint8 RGB from any PIL mode: grey, palette, RGBA, CMYK, 16-bit and float."""
    if image.mode == "F" or image.mode.startswith("I"):
        values = np.asarray(image, dtype=np.float64)
        high = values.max(initial=0.0)
        if image.mode == "F":
            scale = 255.0 / high if high > 1 else 255.0  # floats in [0, 1] or arbitrary range
        else:
            scale = 255.0 / 65535.0 if high > 255 else 1.0  # 16-bit, or 8-bit values in int mode
        grey = np.clip(values * scale, 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Composite over white so transparent areas don't turn into arbitrary colours.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"))
    return np.asarray(image.convert("RGB"))


def read_image(path: str | Path) -> np.ndarray:
    """Decode an image file to HxWx3 uint8 RGB, or raise a one-line GcnsegError naming it."""
    return to_rgb(_open(Path(path)))


def read_mask(path: str | Path) -> np.ndarray:
    """Decode a single-channel mask (class index per pixel, or an Oxford trimap) to HxW uint8."""
    path = Path(path)
    image = _open(path)
    if image.mode in ("RGB", "RGBA"):
        raise GcnsegError(
            f"{path}: mask must be single-channel (class index per pixel), got {image.mode}"
        )
    values = np.asarray(image)
    if values.dtype != np.uint8:
        if values.max(initial=0) > 255:
            raise GcnsegError(f"{path}: mask values above 255 (max {values.max()})")
        values = values.astype(np.uint8)
    return values
