"""Reading images and masks whatever their real format: a `.jpg` may be a GIF or an RGBA PNG."""

from __future__ import annotations

import io
import warnings
from collections.abc import Collection
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


# The most pixels an image or mask may have: 12000² covers 108-megapixel phone photos, while a
# decompression bomb (a few KB of PNG claiming 30000²) is refused from its header, before any
# pixel is decoded. PIL's own limit warns above 89 M pixels and raises above 179 M; ours
# replaces both, so there is one rule and one message.
MAX_PIXELS = 12_000 * 12_000


class ImageTooLarge(GcnsegError):
    """More than MAX_PIXELS pixels: refused from the header, before decoding."""


def _open(path: Path, data: bytes | None = None) -> Image.Image:
    """Open and decode `path` (or `data`, named `path`); every way it can fail is a one-line
    GcnsegError naming it."""
    return _load(_open_lazy(path, data), path)


def _load(image: Image.Image, path: Path) -> Image.Image:
    """Decode the pixels of an image opened by `_open_lazy`."""
    try:
        image.load()
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        raise GcnsegError(f"{path}: unreadable image ({exc})") from None
    return image


def _open_lazy(path: Path, data: bytes | None = None) -> Image.Image:
    """Read only the header: the format and size are known, no pixel is decoded yet."""
    if data is None and path.exists() and not path.is_file():  # a FIFO would block forever
        raise GcnsegError(f"{path}: not a regular file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # checked below
            image = Image.open(path if data is None else _Named(data, str(path)))
    except FileNotFoundError:
        raise GcnsegError(f"{path}: file not found") from None
    except Image.DecompressionBombError:  # over twice PIL's own limit: no size to report
        raise ImageTooLarge(
            f"{path}: image too large (a possible decompression bomb); the limit is {_limit()}"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise GcnsegError(f"{path}: unreadable image ({exc})") from None
    width, height = image.size
    if width * height > MAX_PIXELS:
        image.close()
        raise ImageTooLarge(f"{path}: image too large ({width}x{height}); the limit is {_limit()}")
    return image


def _limit() -> str:
    return f"{MAX_PIXELS:,} pixels"


class _Named(io.BytesIO):
    """Bytes in memory that PIL's messages name like a file, not as `<_io.BytesIO at 0x...>`."""

    def __init__(self, data: bytes, name: str) -> None:
        super().__init__(data)
        self.name = name

    def __repr__(self) -> str:
        return repr(self.name)


def image_format(path: Path) -> str | None:
    """The format the file's content really has (PIL's name), or None when unreadable."""
    try:
        with _open_lazy(Path(path)) as image:
            return image.format
    except GcnsegError:
        return None


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) from the header alone; GcnsegError when unreadable or too large."""
    with _open_lazy(Path(path)) as image:
        return image.size


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


class UnsupportedFormat(GcnsegError):
    """A picture PIL can read, in a format the caller does not accept (e.g. PSD over HTTP)."""


def decode_image(data: bytes, name: str, formats: Collection[str] = ()) -> np.ndarray:
    """HxWx3 uint8 RGB from bytes in memory (an HTTP upload), checked as `read_image` checks a
    file; `formats` (PIL's names), when given, is checked from the header, before decoding."""
    image = _open_lazy(Path(name), data)
    if formats and image.format not in formats:
        image.close()
        accepted = ", ".join(sorted(formats))
        raise UnsupportedFormat(f"{name}: {image.format} images are not accepted ({accepted} are)")
    return to_rgb(_load(image, Path(name)))


Color = tuple[int, int, int]


class UnknownColor(GcnsegError):
    """An RGB mask holds a colour that is no class's colour."""


def read_mask(path: str | Path, colors: tuple[Color, ...] | None = None) -> np.ndarray:
    """Decode a mask to HxW uint8: a single-channel one (class index per pixel, a palette PNG's
    indices, or an Oxford trimap) as it is; an RGB one through `colors` (class i painted in
    colors[i]), when the dataset lists its class colours."""
    path = Path(path)
    image = _open(path)
    if image.mode == "RGB" and colors is not None:
        return colors_to_indices(np.asarray(image), colors, path)
    if len(image.getbands()) != 1:  # RGB, RGBA, LA (grey + alpha), CMYK, ...
        hint = (
            "; for RGB colour masks list the class colours in classes.yaml "
            "(colors: [[0, 0, 0], [255, 0, 0], ...])"
            if image.mode == "RGB"
            else ""
        )
        raise GcnsegError(
            f"{path}: mask must be single-channel (class index per pixel), got {image.mode} "
            f"with {len(image.getbands())} channels{hint}"
        )
    values = np.array(image)  # a writable copy: labels become tensors
    if values.dtype != np.uint8:
        if values.max(initial=0) > 255:
            raise GcnsegError(f"{path}: mask values above 255 (max {values.max()})")
        values = values.astype(np.uint8)
    return values


def colors_to_indices(rgb: np.ndarray, colors: tuple[Color, ...], path: Path) -> np.ndarray:
    """HxW class indices of an HxWx3 colour mask; a colour no class has is one line naming it
    (a JPEG-saved mask, whose edges blur into new colours, is the usual cause)."""
    table: dict[int, int] = {}
    for index, (r, g, b) in enumerate(colors):
        key = (r << 16) | (g << 8) | b
        if key in table:
            raise GcnsegError(
                f"{path}: classes {table[key]} and {index} share the colour {(r, g, b)}; "
                "RGB masks need one colour per class"
            )
        table[key] = index
    keys = (
        (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8) | rgb[..., 2]
    )
    found, inverse = np.unique(keys, return_inverse=True)
    unknown = [int(k) for k in found if int(k) not in table]
    if unknown:
        first = unknown[0]
        more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
        raise UnknownColor(
            f"{path}: colour {(first >> 16, (first >> 8) & 255, first & 255)} is no class's "
            f"colour in classes.yaml{more}; save masks losslessly (PNG) in the listed colours"
        )
    lut = np.array([table[int(k)] for k in found], np.uint8)
    return lut[inverse].reshape(keys.shape)
