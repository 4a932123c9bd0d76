"""Pictures of masks and predictions: palette PNGs, overlays, side-by-side panels and galleries.

Images are H×W×3 uint8 RGB arrays; masks are H×W uint8 class indices with 255 = ignore.
Everything here is plain numpy + PIL so `predict` and `test --draw` stay cheap to import.
"""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from gcnseg.classes import IGNORE_INDEX, ClassSet
from gcnseg.errors import GcnsegError
from gcnseg.io.atomic import atomic_path

IGNORE_MASK_COLOR = (255, 255, 255)  # in mask PNGs: visibly "not a class"
IGNORE_OVERLAY_COLOR = (128, 128, 128)  # in ground-truth overlays
BACKDROP = (32, 32, 32)  # caption strips and gallery letterboxing
PAD = 3
MIN_LEGEND_SCALE = 0.5  # below this the legend text is unreadable, so it is left out
JPEG_QUALITY = 95
BLEND_ROWS = 256  # an overlay blends this many rows at a time: a 12000-wide band is 3 M pixels

Color = tuple[int, int, int]


def save_mask_png(path: str | Path, mask: np.ndarray, classes: ClassSet) -> Path:
    """Write a palette PNG: pixel values stay class indices, yet any viewer shows class colours."""
    path = Path(path)
    with atomic_path(path) as tmp:
        _mask_image(mask, classes).save(tmp, format="PNG")
    return path


def mask_png_bytes(mask: np.ndarray, classes: ClassSet) -> bytes:
    """The palette PNG of `save_mask_png`, in memory (an HTTP response)."""
    buffer = io.BytesIO()
    _mask_image(mask, classes).save(buffer, format="PNG")
    return buffer.getvalue()


def _mask_image(mask: np.ndarray, classes: ClassSet) -> Image.Image:
    _check_mask(mask, mask.shape, classes)
    image = Image.frombytes("P", (mask.shape[1], mask.shape[0]), np.ascontiguousarray(mask))
    image.putpalette(_palette(classes).ravel().tolist())
    return image


def overlay(
    image: np.ndarray,
    mask: np.ndarray,
    classes: ClassSet,
    *,
    alpha: float = 0.5,
    legend: bool = True,
) -> np.ndarray:
    """Blend class colours over `image`; ignored pixels, and the background class when the
    classes have one, keep the photo as it is. Every other class is painted and in the legend."""
    return _overlay(image, mask, classes, alpha=alpha, legend=legend, ignore_color=None)


def panel(
    image: np.ndarray,
    prediction: np.ndarray,
    classes: ClassSet,
    *,
    truth: np.ndarray | None = None,
    alpha: float = 0.5,
    title_scores: str | None = None,
) -> np.ndarray:
    """Image | ground truth | prediction side by side, each column at the image's own size.

    The result is `caption_height()` taller than the image and 3× as wide (2× without `truth`).
    Ignored pixels in the ground truth are shown grey; `title_scores` (e.g. "IoU 0.91") is
    appended to the prediction caption.
    """
    columns = [("image", _check_image(image))]
    if truth is not None:
        gt = _overlay(
            image, truth, classes, alpha=alpha, legend=True, ignore_color=IGNORE_OVERLAY_COLOR
        )
        columns.append(("ground truth", gt))
    caption = "prediction" if title_scores is None else f"prediction  {title_scores}"
    columns.append((caption, overlay(image, prediction, classes, alpha=alpha)))
    return np.hstack([_captioned(tile, text) for text, tile in columns])


def save_image(path: str | Path, array: np.ndarray) -> Path:
    """Atomically write an RGB (or grey) uint8 array; the format follows the suffix."""
    rgb = array.ndim == 3 and array.shape[2] == 3
    if array.dtype != np.uint8 or not (array.ndim == 2 or rgb):
        raise ValueError(f"expected an H×W or H×W×3 uint8 array, got {array.dtype} {array.shape}")
    path = Path(path)
    options = {"quality": JPEG_QUALITY} if path.suffix.lower() in (".jpg", ".jpeg") else {}
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, **options)
    return path


def jpeg_bytes(array: np.ndarray) -> bytes:
    """An RGB uint8 array as JPEG bytes in memory (an HTTP response), at `save_image`'s quality."""
    buffer = io.BytesIO()
    Image.fromarray(_check_image(array)).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def gallery(
    items: list[tuple[str, np.ndarray]], path: str | Path, *, columns: int = 3, tile: int = 256
) -> Path:
    """Save a captioned grid of pictures (e.g. panels of the worst images), row by row.

    Every picture is scaled to `tile` pixels high; cells are as wide as the widest scaled
    picture (narrower ones are letterboxed), so the grid is min(columns, n) cells wide and
    ceil(n / columns) cells high, each cell `tile + caption_height()` pixels tall.
    """
    if not items:
        raise ValueError("gallery needs at least one picture")
    if columns < 1 or tile < 1:
        raise ValueError(f"columns and tile must be positive, got {columns} and {tile}")
    scaled = [(caption, _resize_to_height(_check_image(img), tile)) for caption, img in items]
    width = max(img.shape[1] for _, img in scaled)
    cells = [_captioned(_letterbox(img, width), caption) for caption, img in scaled]
    columns = min(columns, len(cells))
    blank = np.full_like(cells[0], BACKDROP)
    cells += [blank] * (-len(cells) % columns)
    rows = [np.hstack(cells[i : i + columns]) for i in range(0, len(cells), columns)]
    return save_image(path, np.vstack(rows))


def caption_height() -> int:
    """Height of the caption strip above every panel column and gallery cell."""
    return _line_height() + 2 * PAD


def _overlay(
    image: np.ndarray,
    mask: np.ndarray,
    classes: ClassSet,
    *,
    alpha: float,
    legend: bool,
    ignore_color: Color | None,
) -> np.ndarray:
    """Overlay with ignored pixels either untouched (predictions) or painted (ground truth)."""
    _check_image(image)
    counts = _check_mask(mask, image.shape[:2], classes)
    check_alpha(alpha)
    colors = _palette(classes).astype(np.float64)
    painted = np.zeros(256, bool)
    painted[: len(classes.names)] = True
    if classes.background is not None:
        painted[classes.background] = False
    present = [i for i in range(len(classes.names)) if counts[i] and painted[i]]
    entries = [(classes.names[i], classes.colors[i]) for i in present]
    if ignore_color is not None:
        colors[IGNORE_INDEX] = ignore_color
        painted[IGNORE_INDEX] = True
        if counts[IGNORE_INDEX]:
            entries.append(("ignore", ignore_color))
    out = image.copy()
    for top in range(0, mask.shape[0], BLEND_ROWS):  # floats for a band, not for the whole photo
        band = slice(top, top + BLEND_ROWS)
        labels = mask[band]
        where = painted[labels]
        blended = (1.0 - alpha) * image[band][where] + alpha * colors[labels[where]]
        out[band][where] = np.rint(blended).astype(np.uint8)
    if legend and entries:
        out = _draw_legend(out, entries)
    return out


def check_alpha(alpha: float) -> None:
    """Overlay opacity: 0 leaves the photo, 1 paints the classes solid; NaN fails too."""
    if not 0.0 <= alpha <= 1.0:
        raise GcnsegError(f"alpha must be in [0, 1], got {alpha}")


def _palette(classes: ClassSet) -> np.ndarray:
    """256×3 uint8 colour table indexed by label value."""
    table = np.zeros((256, 3), np.uint8)
    table[: len(classes.colors)] = classes.colors
    table[IGNORE_INDEX] = IGNORE_MASK_COLOR
    return table


def _check_image(image: np.ndarray) -> np.ndarray:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an H×W×3 uint8 image, got {image.dtype} {image.shape}")
    return image


def _check_mask(mask: np.ndarray, shape: tuple[int, ...], classes: ClassSet) -> np.ndarray:
    """Validate a label map and return its per-value pixel counts (length 256)."""
    if mask.dtype != np.uint8 or mask.ndim != 2:
        raise ValueError(f"expected an H×W uint8 mask, got {mask.dtype} {mask.shape}")
    if mask.shape != tuple(shape[:2]):
        raise ValueError(f"mask is {mask.shape} but the image is {tuple(shape[:2])}")
    counts = np.bincount(mask.ravel(), minlength=256)
    unknown = np.flatnonzero(counts[len(classes.names) : IGNORE_INDEX])
    if unknown.size:
        value = int(unknown[0]) + len(classes.names)
        raise GcnsegError(
            f"mask contains class {value} but only {len(classes.names)} classes are defined"
        )
    return counts


@lru_cache(maxsize=1)
def _font() -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default()


def _glyph_rows() -> tuple[int, int]:
    """Top and bottom of the font's glyphs, measured on letters with an ascender and descender."""
    box = _font().getbbox("Ag")
    return int(box[1]), int(box[3])


def _line_height() -> int:
    top, bottom = _glyph_rows()
    return bottom - top


def _text(draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str) -> None:
    """Draw white text whose glyphs (not the font's ascent box) start at `xy`."""
    draw.text((xy[0], xy[1] - _glyph_rows()[0]), text, fill=(255, 255, 255), font=_font())


def _draw_legend(image: np.ndarray, entries: list[tuple[str, Color]]) -> np.ndarray:
    """Put a colour key in the top-left corner, shrunk to fit a quarter of the image or dropped."""
    patch = _legend_patch(entries)
    height, width = image.shape[:2]
    scale = min(1.0, 0.5 * width / patch.width, 0.5 * height / patch.height)
    if scale < MIN_LEGEND_SCALE:
        return image
    if scale < 1.0:
        size = (max(1, round(patch.width * scale)), max(1, round(patch.height * scale)))
        patch = patch.resize(size, Image.Resampling.LANCZOS)
    canvas = Image.fromarray(image).convert("RGBA")
    canvas.alpha_composite(patch)
    return np.asarray(canvas.convert("RGB"))


def _legend_patch(entries: list[tuple[str, Color]]) -> Image.Image:
    line = _line_height()
    text_width = max(_font().getlength(name) for name, _ in entries)
    size = (int(3 * PAD + line + text_width + 1), PAD + len(entries) * (line + PAD))
    patch = Image.new("RGBA", size, (0, 0, 0, 160))
    draw = ImageDraw.Draw(patch)
    for i, (name, color) in enumerate(entries):
        y = PAD + i * (line + PAD)
        draw.rectangle((PAD, y, PAD + line - 1, y + line - 1), fill=(*color, 255), outline="white")
        _text(draw, (2 * PAD + line, y), name)
    return patch


def _captioned(tile: np.ndarray, text: str) -> np.ndarray:
    """Stack a caption strip on top of `tile` (text wider than the tile is clipped)."""
    strip = Image.new("RGB", (tile.shape[1], caption_height()), BACKDROP)
    _text(ImageDraw.Draw(strip), (PAD, PAD), text)
    return np.vstack([np.asarray(strip), tile])


def _resize_to_height(image: np.ndarray, height: int) -> np.ndarray:
    width = max(1, round(image.shape[1] * height / image.shape[0]))
    resized = Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(resized)


def _letterbox(image: np.ndarray, width: int) -> np.ndarray:
    """Centre `image` on a backdrop `width` pixels wide."""
    out = np.full((image.shape[0], width, 3), BACKDROP, np.uint8)
    left = (width - image.shape[1]) // 2
    out[:, left : left + image.shape[1]] = image
    return out
