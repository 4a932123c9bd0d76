"""ResNet-18/34/50/101 laid out exactly like torchvision's, so its checkpoints load strictly.

The attribute names (`conv1`, `bn1`, `layerN.i.downsample.0`, `fc`, ...) are the checkpoint format:
renaming anything breaks `load_state_dict(strict=True)` against the official files.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import Tensor, nn

from gcnseg.models.backbones import BackboneSpec, FeatureInfo, register_backbone

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _downsample(in_chs: int, out_chs: int, stride: int) -> nn.Module | None:
    """Projection shortcut, needed only where the residual changes shape."""
    if stride == 1 and in_chs == out_chs:
        return None
    return nn.Sequential(
        nn.Conv2d(in_chs, out_chs, 1, stride=stride, bias=False), nn.BatchNorm2d(out_chs)
    )


class BasicBlock(nn.Module):
    """Two 3x3 convs (ResNet-18/34)."""

    expansion = 1

    def __init__(self, in_chs: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_chs, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(in_chs, planes, stride)

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class Bottleneck(nn.Module):
    """1x1 -> 3x3 -> 1x1 (ResNet-50/101); stride on the 3x3 ("v1.5"), as torchvision does."""

    expansion = 4

    def __init__(self, in_chs: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        out_chs = planes * self.expansion
        self.conv1 = nn.Conv2d(in_chs, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_chs, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_chs)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(in_chs, out_chs, stride)

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


class ResNet(nn.Module):
    """Feature extractor returning the outputs of layer1..layer4 (strides 4, 8, 16, 32)."""

    def __init__(
        self,
        block: type[BasicBlock | Bottleneck],
        depths: tuple[int, int, int, int],
        num_classes: int = 1000,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        in_chs = 64
        self.feature_info: list[FeatureInfo] = []
        for i, (planes, depth) in enumerate(zip((64, 128, 256, 512), depths, strict=True)):
            stride = 1 if i == 0 else 2
            blocks = []
            for j in range(depth):
                blocks.append(block(in_chs, planes, stride if j == 0 else 1))
                in_chs = planes * block.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            self.feature_info.append(FeatureInfo(in_chs, 4 * 2**i))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_chs, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        """torchvision's init, so training from scratch behaves like the reference."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        features = []
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = layer(x)
            features.append(x)
        return features

    def stem(self) -> list[nn.Module]:
        return [self.conv1, self.bn1]

    def strip_classifier(self) -> None:
        """Drop the ImageNet head that segmentation never uses."""
        self.fc = nn.Identity()

    def classify(self, x: Tensor) -> Tensor:
        """ImageNet logits, to sanity-check that pretrained weights were loaded correctly."""
        return self.fc(torch.flatten(self.avgpool(self.forward(x)[-1]), 1))


_VARIANTS = {
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet34": (BasicBlock, (3, 4, 6, 3)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)),
    "resnet101": (Bottleneck, (3, 4, 23, 3)),
}

for _name, (_block, _depths) in _VARIANTS.items():
    register_backbone(
        _name,
        BackboneSpec(
            builder=partial(ResNet, _block, _depths),
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
            offline_weights=lambda: None,
        ),
    )
