"""ResNet backbones: feature shapes per depth, and a state dict laid out like torchvision's."""

from __future__ import annotations

import math

import pytest
import torch

from gcnseg.models.backbones import BACKBONES
from gcnseg.models.backbones import resnet as _resnet  # noqa: F401  (registers the family)

CHANNELS = {
    "resnet18": (64, 128, 256, 512),
    "resnet34": (64, 128, 256, 512),
    "resnet50": (256, 512, 1024, 2048),
    "resnet101": (256, 512, 1024, 2048),
}


def build(name: str) -> torch.nn.Module:
    return BACKBONES[name].builder().eval()


@pytest.mark.parametrize("name", sorted(CHANNELS))
@pytest.mark.parametrize("size", [(64, 96), (65, 97)])
def test_features_have_declared_channels_and_strides(name: str, size: tuple[int, int]) -> None:
    model = build(name)
    with torch.no_grad():
        feats = model(torch.randn(1, 3, *size))
    assert [f.num_chs for f in model.feature_info] == list(CHANNELS[name])
    assert [f.reduction for f in model.feature_info] == [4, 8, 16, 32]
    for feat, info in zip(feats, model.feature_info, strict=True):
        h, w = (math.ceil(s / info.reduction) for s in size)
        assert feat.shape == (1, info.num_chs, h, w)


def test_registered_with_imagenet_normalisation() -> None:
    for name in CHANNELS:
        spec = BACKBONES[name]
        assert spec.mean == (0.485, 0.456, 0.406)
        assert spec.std == (0.229, 0.224, 0.225)
        assert spec.offline_weights() is None


def test_classify_gives_imagenet_logits() -> None:
    with torch.no_grad():
        logits = build("resnet18").classify(torch.randn(2, 3, 64, 64))
    assert logits.shape == (2, 1000)


def test_resnet50_state_dict_matches_torchvision_layout() -> None:
    sd = build("resnet50").state_dict()
    assert len(sd) == 320  # torchvision resnet50, num_batches_tracked included
    for key, shape in {
        "conv1.weight": (64, 3, 7, 7),
        "bn1.running_var": (64,),
        "layer1.0.conv1.weight": (64, 64, 1, 1),
        "layer1.0.downsample.0.weight": (256, 64, 1, 1),
        "layer1.0.downsample.1.num_batches_tracked": (),
        "layer2.0.conv2.weight": (128, 128, 3, 3),  # stride lives on the 3x3 (v1.5)
        "layer3.5.bn3.weight": (1024,),
        "layer4.2.conv3.weight": (2048, 512, 1, 1),
        "fc.weight": (1000, 2048),
        "fc.bias": (1000,),
    }.items():
        assert tuple(sd[key].shape) == shape, key
    assert "layer1.1.downsample.0.weight" not in sd


def test_resnet18_state_dict_matches_torchvision_layout() -> None:
    sd = build("resnet18").state_dict()
    assert len(sd) == 122
    assert tuple(sd["layer2.0.downsample.0.weight"].shape) == (128, 64, 1, 1)
    assert "layer1.0.downsample.0.weight" not in sd
    assert tuple(sd["fc.weight"].shape) == (1000, 512)


def test_v15_stride_is_on_the_3x3_conv() -> None:
    block = build("resnet50").layer2[0]
    assert block.conv1.stride == (1, 1)
    assert block.conv2.stride == (2, 2)
