"""The GCN segmentation model: a backbone's 4 stages, GCN + BR per stage, a top-down BR decoder."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gcnseg.limits import REFINE_DEFAULT, REFINE_MODES, REFINE_QUARTER
from gcnseg.models.layers import BoundaryRefine, GCNBlock


def _upsample(x: Tensor, size: tuple[int, int] | list[int]) -> Tensor:
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)


class GCNDecoder(nn.Module):
    """Top-down path of the paper's Figure 2, ending at the input resolution for any H, W."""

    def __init__(
        self, in_channels: list[int], width: int, kernel_size: int, refine: str = REFINE_DEFAULT
    ) -> None:
        super().__init__()
        if refine not in REFINE_MODES:
            raise ValueError(f"refine must be one of {REFINE_MODES}, got {refine!r}")
        self.refine = refine
        self.gcn = nn.ModuleList(GCNBlock(c, width, kernel_size) for c in in_channels)
        self.stage_br = nn.ModuleList(BoundaryRefine(width) for _ in in_channels)
        self.merge_br = nn.ModuleList(BoundaryRefine(width) for _ in in_channels[:-1])
        # Named for the paper's resolutions; with "quarter" both run at 1/4. The names stay, so
        # weights move between the two refinements (gcnseg.limits.REFINE_MODES).
        self.half_br = BoundaryRefine(width)
        self.full_br = BoundaryRefine(width)

    def extra_repr(self) -> str:
        return f"refine={self.refine!r}"

    def forward(self, features: list[Tensor], out_size: tuple[int, int]) -> Tensor:
        scores = [br(gcn(f)) for gcn, br, f in zip(self.gcn, self.stage_br, features, strict=True)]
        x = scores[-1]
        for finer, merge in zip(reversed(scores[:-1]), reversed(self.merge_br), strict=True):
            x = merge(finer + _upsample(x, finer.shape[-2:]))
        if self.refine == REFINE_QUARTER:
            return _upsample(self.full_br(self.half_br(x)), out_size)
        h, w = out_size
        x = self.half_br(_upsample(x, ((h + 1) // 2, (w + 1) // 2)))
        return self.full_br(_upsample(x, (h, w)))


class GCN(nn.Module):
    """RGB in [0, 1] (N, 3, H, W) -> per-pixel logits (N, num_classes, H, W) at the input's size.

    The backbone's normalisation lives inside the model, so training, prediction and the ONNX
    export share one preprocessing and loaders can move uint8.
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        *,
        mean: tuple[float, float, float],
        std: tuple[float, float, float],
        kernel_size: int = 15,
        width: int | None = None,
        refine: str = REFINE_DEFAULT,
    ) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        width = width or num_classes
        self.backbone = backbone
        self.decoder = GCNDecoder(
            [f.num_chs for f in backbone.feature_info], width, kernel_size, refine
        )
        # The paper's decoder carries class scores throughout; a wider one needs a classifier.
        self.classifier = (
            nn.Identity() if width == num_classes else nn.Conv2d(width, num_classes, 1)
        )

    def forward(self, x: Tensor) -> Tensor:
        size = (x.shape[-2], x.shape[-1])
        features = self.backbone((x - self.mean) / self.std)
        return self.classifier(self.decoder(features, size))
