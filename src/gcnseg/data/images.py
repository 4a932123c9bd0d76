"""Reading images and masks whatever their real format: a `.jpg` may be a GIF or an RGBA PNG."""

from __future__ import annotations

import io
import warnings
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from gcnseg.classes import IGNORE_INDEX
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
# Deflate's best case: 258 bytes from one 2-bit code. A PNG whose header declares more pixel bytes
# than its file could inflate to was cut short (or crafted); PIL decodes the missing rows as black.
MAX_DEFLATE_RATIO = 1032
EXIF_ORIENTATION = 0x0112


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
    if image.format == "PNG":
        stored = len(data) if data is not None else path.stat().st_size
        if _fewest_pixel_bytes(image) > MAX_DEFLATE_RATIO * stored:
            image.close()
            raise GcnsegError(
                f"{path}: truncated image: the header declares {width}x{height}, "
                f"more pixels than its {stored:,} bytes can hold"
            )
    return image


def _fewest_pixel_bytes(image: Image.Image) -> int:
    """A lower bound of the decoded size: PIL reads 1-, 2- and 4-bit PNGs as L or P."""
    bands = len(image.getbands())
    bits = 16 if image.mode.startswith("I") else 1 if bands == 1 else 8 * bands
    return image.width * image.height * bits // 8


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


def read_image(path: str | Path, *, upright: bool = False) -> np.ndarray:
    """Decode an image file to HxWx3 uint8 RGB, or raise a one-line GcnsegError naming it.

    `upright` applies the EXIF orientation, giving a phone photo as every viewer shows it: for a
    user's photo. Datasets leave it off, so an image stays aligned with its mask as both are
    stored (a mask has no orientation tag to follow its photo's)."""
    image = _open(Path(path))
    pixels = to_rgb(image)
    return orient(pixels, exif_orientation(image)) if upright else pixels


def exif_orientation(image: Image.Image) -> int:
    """The EXIF orientation tag (1-8; 1 = as stored), 1 when absent or unreadable."""
    try:
        value = image.getexif().get(EXIF_ORIENTATION, 1)
    except Exception:  # a corrupt EXIF block (any error): viewers show the photo as stored
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def image_orientation(path: str | Path) -> int:
    """The EXIF orientation of an image file, from its header (see `exif_orientation`)."""
    with _open_lazy(Path(path)) as image:
        return exif_orientation(image)


def orient(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """An HxW(xC) array turned as EXIF `orientation` says (what PIL's `exif_transpose` does to
    a picture), so a mask can follow its photo."""
    turned = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: np.swapaxes(a, 0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: np.swapaxes(a[::-1, ::-1], 0, 1),
        8: lambda a: np.rot90(a, 1),
    }.get(orientation)
    return pixels if turned is None else np.ascontiguousarray(turned(pixels))


class UnsupportedFormat(GcnsegError):
    """A picture PIL can read, in a format the caller does not accept (e.g. PSD over HTTP)."""


def decode_image(
    data: bytes, name: str, formats: Collection[str] = (), *, upright: bool = True
) -> np.ndarray:
    """HxWx3 uint8 RGB from bytes in memory (an HTTP upload), checked as `read_image` checks a
    file; `formats` (PIL's names), when given, is checked from the header, before decoding.
    An upload is a user's photo, so `upright` (the EXIF orientation applied) is the default."""
    image = _open_lazy(Path(name), data)
    if formats and image.format not in formats:
        image.close()
        accepted = ", ".join(sorted(formats))
        raise UnsupportedFormat(f"{name}: {image.format} images are not accepted ({accepted} are)")
    pixels = to_rgb(_load(image, Path(name)))
    return orient(pixels, exif_orientation(image)) if upright else pixels


Color = tuple[int, int, int]


@dataclass(frozen=True)
class MaskColors:
    """How a dataset's RGB masks map to class indices: class i is painted in `colors[i]`,
    `ignore` (when set) marks pixels to skip, and `source` names where the colours come from
    (`classes.yaml`, "VOC's palette"), so a colour outside them is blamed on the right file."""

    colors: tuple[Color, ...]
    ignore: Color | None = None
    source: str = "classes.yaml"
    hint: str = "list it under `colors` in classes.yaml, or declare `ignore: [R, G, B]` there"


class BadMaskValues(GcnsegError):
    """A mask holds values outside the class set: a number no class has, or a colour."""


class UnknownColor(BadMaskValues):
    """An RGB mask holds a colour that is no class's colour."""


def read_mask(path: str | Path, colors: MaskColors | None = None) -> np.ndarray:
    """Decode a mask to HxW uint8: a single-channel one (class index per pixel, a palette PNG's
    indices, or an Oxford trimap) as it is; an RGB one through `colors`, when the dataset has
    class colours. Values no uint8 index can be (fractions, negatives, above 255) are
    BadMaskValues, never rounded or wrapped into a class or the ignore value."""
    path = Path(path)
    image = _open(path)
    if image.mode == "RGB" and colors is not None:
        return colors_to_indices(np.asarray(image), colors, path, lossy=image.format == "JPEG")
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
        _check_index_values(values, path)
        values = values.astype(np.uint8)
    return values


def _check_index_values(values: np.ndarray, path: Path) -> None:
    """Refuse what casting to uint8 would silently turn into a class (0.6 -> 0, -1 -> 255)."""
    if np.issubdtype(values.dtype, np.floating):
        fractional = values[~np.isfinite(values) | (values != np.round(values))]
        if fractional.size:
            raise BadMaskValues(
                f"{path}: mask values must be whole class indices, got {fractional.flat[0]:g} "
                f"({values.dtype} mask)"
            )
    if values.min(initial=0) < 0:
        raise BadMaskValues(f"{path}: negative mask values (min {values.min():g})")
    if values.max(initial=0) > 255:
        raise BadMaskValues(f"{path}: mask values above 255 (max {values.max():g})")


def _rgb_key(r: int, g: int, b: int) -> int:
    return (r << 16) | (g << 8) | b


def colors_to_indices(
    rgb: np.ndarray, colors: MaskColors, path: Path, *, lossy: bool = False
) -> np.ndarray:
    """HxW class indices of an HxWx3 colour mask (the ignore colour becomes IGNORE_INDEX); a
    colour no class has is one line naming it, with what to do about it: a JPEG-saved mask
    (`lossy`) blurs its edges into new colours, a lossless one holds a colour nobody listed."""
    table: dict[int, int] = {}
    for index, (r, g, b) in enumerate(colors.colors):
        key = _rgb_key(r, g, b)
        if key in table:
            raise GcnsegError(
                f"{path}: classes {table[key]} and {index} share the colour {(r, g, b)}; "
                "RGB masks need one colour per class"
            )
        table[key] = index
    if colors.ignore is not None:
        key = _rgb_key(*colors.ignore)
        if key in table:
            raise GcnsegError(
                f"{path}: the ignore colour {colors.ignore} is also class {table[key]}'s colour"
            )
        table[key] = IGNORE_INDEX
    keys = (
        (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8) | rgb[..., 2]
    )
    found, inverse = np.unique(keys, return_inverse=True)
    unknown = [int(k) for k in found if int(k) not in table]
    if unknown:
        first = unknown[0]
        more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
        hint = (
            "a JPEG mask's edges blur into new colours: save masks losslessly (PNG)"
            if lossy
            else colors.hint
        )
        raise UnknownColor(
            f"{path}: colour {(first >> 16, (first >> 8) & 255, first & 255)} is no class's "
            f"colour in {colors.source}{more}; {hint}"
        )
    lut = np.array([table[int(k)] for k in found], np.uint8)
    return lut[inverse].reshape(keys.shape)
