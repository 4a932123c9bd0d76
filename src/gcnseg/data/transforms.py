"""Paired image/mask pipelines on uint8 arrays and the letterbox inverse used at evaluation.

Everything outputs uint8: the model normalises inside, so loaders move 4x fewer bytes and predict,
ONNX and training share one preprocessing. Images are resized bilinearly on pixel centres (torch,
no antialiasing: the same samples as OpenCV's INTER_LINEAR); masks by pixel-centre nearest
neighbour, so labels stay on the image and never take a value that was not in the mask.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageStat

from gcnseg.classes import IGNORE_INDEX

# (image HxWx3 uint8, mask HxW uint8, seed) -> (image, mask), both crop or eval size.
Transform = Callable[[np.ndarray, np.ndarray, int], tuple[np.ndarray, np.ndarray]]

HUE_JITTER = 0.05  # a fraction of the hue circle; brightness/contrast/saturation take `jitter`
JITTER_P = 0.8


def train_transform(
    crop_size: int,
    scale: tuple[float, float] = (0.5, 2.0),
    jitter: float = 0.3,
    class_crops: float = 0.0,
) -> Transform:
    """Longer side to crop size, random scale, crop/pad (padding is ignore, not background), flip, jitter."""
    return partial(
        augment, crop_size=crop_size, scale=scale, jitter=jitter, class_crops=class_crops
    )


def eval_transform(size: int) -> Transform:
    """Keep the aspect ratio: longer side to `size`, pad bottom/right to a square (see `unletterbox`)."""
    return partial(letterbox_pair, size=size)


def augment(
    image: np.ndarray,
    mask: np.ndarray,
    seed: int,
    *,
    crop_size: int,
    scale: tuple[float, float],
    jitter: float,
    class_crops: float,
) -> tuple[np.ndarray, np.ndarray]:
    """One training pair; the same `seed` gives the same crop, flip and colours.

    With probability `class_crops` the window is centred on a pixel of a class drawn uniformly
    from those in the mask: a class covering 0.5% of a frame is as likely to be in the crop as road.
    """
    rng = np.random.default_rng(seed)
    height, width = mask.shape
    factor = crop_size / max(height, width) * rng.uniform(*scale)
    size = max(1, round(height * factor)), max(1, round(width * factor))
    image, mask = resize_image(image, size), resize_mask(mask, size)
    # A random window (or one centred on a class pixel, clamped to the frame) where the scaled
    # pair is larger than the crop, the whole side where not.
    centre = class_pixel(mask, rng) if class_crops and rng.random() < class_crops else None
    starts = (
        [int(rng.integers(0, max(0, side - crop_size) + 1)) for side in size]
        if centre is None
        else [
            min(max(0, c - crop_size // 2), max(0, side - crop_size))
            for c, side in zip(centre, size, strict=True)
        ]
    )
    window = tuple(slice(start, start + crop_size) for start in starts)
    image, mask = image[window], mask[window]
    flip = rng.random() < 0.5
    if rng.random() < JITTER_P:
        image = color_jitter(image, rng, jitter)
    image, mask = pad_centered(image, crop_size, 0), pad_centered(mask, crop_size, IGNORE_INDEX)
    if flip:
        image, mask = image[:, ::-1], mask[:, ::-1]
    return np.ascontiguousarray(image), np.ascontiguousarray(mask)


def class_pixel(mask: np.ndarray, rng: np.random.Generator) -> tuple[int, int] | None:
    """(row, column) of a random pixel of a class drawn uniformly from the labelled ones; None if none."""
    counts = np.bincount(mask.ravel(), minlength=IGNORE_INDEX + 1)
    counts[IGNORE_INDEX] = 0
    present = np.flatnonzero(counts)
    if present.size == 0:
        return None
    label = present[rng.integers(present.size)]
    pixel = np.flatnonzero(mask.ravel() == label)[rng.integers(counts[label])]
    return divmod(int(pixel), mask.shape[1])


def letterbox_pair(
    image: np.ndarray, mask: np.ndarray, seed: int = 0, *, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Image and mask letterboxed like `letterbox`, the mask's padding ignore (`seed` is unused:
    evaluation is deterministic, the argument keeps the training pipeline's signature)."""
    boxed, box = letterbox(image, size)
    content = resize_mask(mask, (box.content_height, box.content_width))
    return boxed, pad_bottom_right(content, size, IGNORE_INDEX)


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """HxWx3 uint8 to `size` (height, width), bilinear on pixel centres, no antialiasing."""
    if image.shape[:2] == size:
        return image
    # (1, H, W, 3) viewed as NCHW is channels-last: torch's fast uint8 path, output in HWC order.
    # Decoders return read-only arrays (PIL's np.asarray), which torch refuses to wrap silently.
    nchw = torch.from_numpy(np.require(image, requirements="W"))[None].permute(0, 3, 1, 2)
    resized = F.interpolate(nchw, size=size, mode="bilinear", align_corners=False, antialias=False)
    return resized[0].permute(1, 2, 0).numpy()


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """HxW labels to `size` by the nearest pixel centre: only existing values, no drift."""
    if mask.shape == size:
        return mask
    # PIL's NEAREST samples at pixel centres (OpenCV's INTER_NEAREST takes corners).
    return np.asarray(Image.fromarray(mask).resize(size[::-1], Image.Resampling.NEAREST))


def pad_centered(array: np.ndarray, size: int, fill: int) -> np.ndarray:
    """Pad each side shorter than `size` evenly on both ends (the extra pixel after)."""
    before = [(size - n) // 2 if n < size else 0 for n in array.shape[:2]]
    return _pad(array, size, fill, before)


def pad_bottom_right(array: np.ndarray, size: int, fill: int) -> np.ndarray:
    return _pad(array, size, fill, [0, 0])


def _pad(array: np.ndarray, size: int, fill: int, before: list[int]) -> np.ndarray:
    height, width = array.shape[:2]
    if height >= size and width >= size:
        return array
    out = np.full((max(size, height), max(size, width), *array.shape[2:]), fill, array.dtype)
    out[before[0] : before[0] + height, before[1] : before[1] + width] = array
    return out


def color_jitter(image: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Brightness, contrast and saturation by factors in [1 - strength, 1 + strength] (torchvision's
    definitions) and a hue rotation up to HUE_JITTER of the circle, in random order.

    Each step is an affine map of the colours, so the four compose into one, applied in a single
    pass and clipped to uint8 once (torchvision clips after each step, which loses more).
    """
    low, high = max(0.0, 1 - strength), 1 + strength
    brightness, contrast, saturation = rng.uniform(low, high, 3)
    hue = rng.uniform(-HUE_JITTER, HUE_JITTER)
    picture = Image.fromarray(np.ascontiguousarray(image))
    mean = np.array(ImageStat.Stat(picture).mean)  # per channel, from PIL's histogram
    matrix, offset = np.eye(3), np.zeros(3)
    for step in rng.permutation(4):
        if step == 0:
            matrix, offset = brightness * matrix, brightness * offset
        elif step == 1:  # towards the mean grey of the image as the steps so far left it
            grey = _GREY @ (matrix @ mean + offset)
            matrix, offset = contrast * matrix, contrast * offset + (1 - contrast) * grey
        else:
            turn = _saturation(saturation) if step == 2 else _hue_rotation(hue)
            matrix, offset = turn @ matrix, turn @ offset
    colours = np.hstack([matrix, offset[:, None]]).ravel().tolist()
    return np.asarray(picture.convert("RGB", tuple(colours)))


_GREY = np.array([0.299, 0.587, 0.114])  # ITU-R 601 luma, as PIL's "L" and torchvision use
# SVG's feColorMatrix "hueRotate": a rotation about the grey axis that keeps (Rec. 709) luma; it
# moves colours as far as the same shift of HSV hue does, at a tenth of the cost.
_LUMA = np.array([[0.213, 0.715, 0.072]] * 3)
_HUE_SIN = np.array([[-0.213, -0.715, 0.928], [0.143, 0.140, -0.283], [-0.787, 0.715, 0.072]])


def _saturation(factor: float) -> np.ndarray:
    """Blend each colour with its grey: `factor` 0 is greyscale, 1 the identity."""
    return factor * np.eye(3) + (1 - factor) * np.tile(_GREY, (3, 1))


def _hue_rotation(fraction: float) -> np.ndarray:
    angle = 2 * math.pi * fraction
    return _LUMA + math.cos(angle) * (np.eye(3) - _LUMA) + math.sin(angle) * _HUE_SIN


@dataclass(frozen=True)
class Letterbox:
    """Where an image sits in its padded square: made once when the image is letterboxed and
    carried with it, so predictions map back to the original pixels without guessing."""

    height: int  # original size
    width: int
    size: int  # the padded square's side
    content_height: int  # the resized image inside the square (top-left)
    content_width: int

    @classmethod
    def fit(cls, height: int, width: int, size: int) -> Letterbox:
        """Longer side to `size`, aspect ratio kept: the geometry `letterbox` produces."""
        scale = size / max(height, width)
        content = max(1, round(height * scale)), max(1, round(width * scale))
        return cls(height, width, size, *content)


def unletterbox(logits: torch.Tensor, box: Letterbox) -> torch.Tensor:
    """Map (C, S, S) logits of a letterboxed image back to (C, H, W) at the original resolution."""
    content = logits[:, : box.content_height, : box.content_width].unsqueeze(0).float()
    return F.interpolate(
        content, size=(box.height, box.width), mode="bilinear", align_corners=False
    )[0]


def letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, Letterbox]:
    """An HxWx3 uint8 image letterboxed into a size×size square, with its geometry."""
    box = Letterbox.fit(image.shape[0], image.shape[1], size)
    resized = resize_image(image, (box.content_height, box.content_width))
    return pad_bottom_right(resized, size, 0), box


def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 images (0-255) as float32 in [0, 1]: what every model and exported graph takes.
    The one place pixels are scaled (the ImageNet normalisation is inside the model)."""
    return images.float().div_(255)


def to_chw_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
