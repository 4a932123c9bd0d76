"""Paired image/mask pipelines (albumentations) and the letterbox inverse used at evaluation.

Everything outputs uint8: the model normalises inside, so loaders move 4x fewer bytes and predict,
ONNX and training share one preprocessing.
"""

from __future__ import annotations

from dataclasses import dataclass

import albumentations as A
import cv2
import numpy as np
import torch
import torch.nn.functional as F

from gcnseg.classes import IGNORE_INDEX

# Pixel-centre-aligned nearest neighbour, like the bilinear image resize and `unletterbox`;
# cv2.INTER_NEAREST (albumentations' default) samples corners, shifting labels off the image.
MASK_INTERPOLATION = cv2.INTER_NEAREST_EXACT


def train_transform(
    crop_size: int, scale: tuple[float, float] = (0.5, 2.0), jitter: float = 0.3
) -> A.Compose:
    """Longer side to crop size, random scale, crop/pad (padding is ignore, not background), flip, jitter."""
    return A.Compose(
        [
            A.LongestMaxSize(max_size=crop_size, mask_interpolation=MASK_INTERPOLATION),
            A.RandomScale(
                scale_limit=(scale[0] - 1, scale[1] - 1),
                mask_interpolation=MASK_INTERPOLATION,
                p=1.0,
            ),
            A.PadIfNeeded(
                crop_size,
                crop_size,
                border_mode=cv2.BORDER_CONSTANT,
                fill=0,
                fill_mask=IGNORE_INDEX,
            ),
            A.RandomCrop(crop_size, crop_size),
            A.HorizontalFlip(p=0.5),
            A.ColorJitter(brightness=jitter, contrast=jitter, saturation=jitter, hue=0.05, p=0.8),
        ]
    )


def eval_transform(size: int) -> A.Compose:
    """Keep the aspect ratio: longer side to `size`, pad bottom/right to a square (see `unletterbox`)."""
    return A.Compose(
        [
            A.LongestMaxSize(max_size=size, mask_interpolation=MASK_INTERPOLATION),
            A.PadIfNeeded(
                size,
                size,
                position="top_left",
                border_mode=cv2.BORDER_CONSTANT,
                fill=0,
                fill_mask=IGNORE_INDEX,
            ),
        ]
    )


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
        """The geometry LongestMaxSize + top-left PadIfNeeded (`eval_transform`) produce."""
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
    return eval_transform(size)(image=image)["image"], box


def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 images (0-255) as float32 in [0, 1]: what every model and exported graph takes.
    The one place pixels are scaled (the ImageNet normalisation is inside the model)."""
    return images.float().div_(255)


def to_chw_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
