"""The GCN model family: shapes at any size, the paper's modules, and the pretrained backbone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from gcnseg.data.images import read_image
from gcnseg.models import create_model, list_models
from gcnseg.models.layers import BoundaryRefine, GCNBlock
from gcnseg.models.registry import build_backbone


@pytest.mark.parametrize(
    "name", ["gcn_efficientnet_lite0", "gcn_k1_efficientnet_lite0", "gcn_resnet18"]
)
@pytest.mark.parametrize("size", [(333, 479), (64, 64), (97, 65)])
def test_output_matches_input_size(name: str, size: tuple[int, int]) -> None:
    model = create_model(name, num_classes=3, backbone_weights="random").eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, *size))
    assert out.shape == (1, 3, *size)


@pytest.mark.parametrize("size", [(333, 479), (64, 64), (97, 65)])
def test_quarter_refine_keeps_the_weights_and_the_output_size(size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    full = create_model(
        "gcn_efficientnet_lite0", num_classes=3, backbone_weights="random", refine="full"
    )
    quarter = create_model(
        "gcn_efficientnet_lite0", num_classes=3, backbone_weights="random", refine="quarter"
    )
    for br in (full.decoder.half_br, full.decoder.full_br):
        torch.nn.init.normal_(br.conv2.weight, std=0.1)  # not the identity they start as
    quarter.load_state_dict(full.state_dict())  # the same tensors: switchable without training
    x = torch.rand(1, 3, *size)
    with torch.no_grad():
        a, b = full.eval()(x), quarter.eval()(x)
    assert a.shape == b.shape == (1, 3, *size)
    assert not torch.allclose(a, b, atol=1e-4)


def test_quarter_refine_upsamples_the_scores_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The refinements run on the finest stage's maps; only the last resize reaches full size."""
    sizes = []
    real = torch.nn.functional.interpolate

    def spy(x, size=None, **kwargs):
        sizes.append(tuple(size))
        return real(x, size=size, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "interpolate", spy)
    for refine, full_size_resizes in (("quarter", 1), ("full", 1)):
        sizes.clear()
        model = create_model(
            "gcn_efficientnet_lite0", num_classes=3, backbone_weights="random", refine=refine
        )
        with torch.no_grad():
            model.eval()(torch.rand(1, 3, 128, 96))
        assert sizes.count((128, 96)) == full_size_resizes
        assert ((64, 48) in sizes) == (refine == "full")  # the paper's half-resolution BR


def test_unknown_refine_is_refused() -> None:
    with pytest.raises(ValueError, match="refine must be one of"):
        create_model("gcn_efficientnet_lite0", num_classes=3, backbone_weights="random", refine="x")


def test_boundary_refine_has_relu_branch() -> None:
    br = BoundaryRefine(1)
    with torch.no_grad():
        for conv in (br.conv1, br.conv2):
            conv.weight.zero_()
            conv.weight[0, 0, 1, 1] = 1.0  # identity kernels
            conv.bias.zero_()
    x = torch.tensor([-2.0, 3.0]).view(1, 1, 1, 2)
    # x + conv(relu(conv(x))) = x + relu(x); the seed's x + conv(x) would give 2x.
    assert torch.equal(br(x), torch.tensor([-2.0, 6.0]).view(1, 1, 1, 2))


def test_boundary_refine_starts_as_identity() -> None:
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(BoundaryRefine(3)(x), x)


def test_gcn_block_kernel_shapes() -> None:
    block = GCNBlock(16, 3, 15)
    assert [c.kernel_size for c in block.left] == [(15, 1), (1, 15)]
    assert [c.kernel_size for c in block.right] == [(1, 15), (15, 1)]
    assert all(c.bias is not None for c in [*block.left, *block.right])
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.ReLU)) for m in block.modules())


def test_k1_baseline_is_a_plain_score_layer() -> None:
    model = create_model("gcn_k1_efficientnet_lite0", num_classes=3, backbone_weights="random")
    blocks = list(model.decoder.gcn)
    assert all(b.kernel_size == 1 and b.score.kernel_size == (1, 1) for b in blocks)
    assert "gcn_k1_resnet50" in list_models("gcn_k1_*")


def test_kernel_size_and_width_are_configurable() -> None:
    model = create_model(
        "gcn_efficientnet_lite0",
        num_classes=3,
        backbone_weights="random",
        kernel_size=7,
        decoder_width=16,
    )
    assert model.decoder.gcn[0].left[0].kernel_size == (7, 1)
    assert model.decoder.gcn[0].left[0].out_channels == 16
    assert model(torch.rand(1, 3, 64, 64)).shape == (1, 3, 64, 64)


def test_freeze_options() -> None:
    model = create_model(
        "gcn_resnet18", num_classes=3, backbone_weights="random", freeze_bn=True, freeze_stem=True
    )
    model.train()
    assert not model.backbone.conv1.weight.requires_grad
    assert not model.backbone.layer1[0].bn1.training
    assert not model.backbone.layer1[0].bn1.weight.requires_grad
    assert model.decoder.gcn[0].left[0].weight.requires_grad


def test_unknown_model_lists_known_names() -> None:
    from gcnseg.errors import GcnsegError

    with pytest.raises(GcnsegError, match="gcn_efficientnet_lite0"):
        create_model("gcn_nope", num_classes=3)


def test_resnet_without_offline_weights_asks_for_a_file() -> None:
    from gcnseg.errors import GcnsegError

    with pytest.raises(GcnsegError, match="pass a file or URL of torchvision-compatible weights"):
        create_model("gcn_resnet50", num_classes=3)


# Real photos (skips without ../shared): a generated shape is no ImageNet class.
def test_pretrained_lite0_recognises_pets(pets_root: Path) -> None:
    """ImageNet top-5 holds a cat (281-285) / dog (151-268) class with gcnseg's preprocessing.

    This proves the shipped weights, the RGB order and the normalisation used by the model.
    """
    backbone = build_backbone("efficientnet_lite0", "imagenet").eval()
    model = create_model("gcn_efficientnet_lite0", num_classes=3)
    for image, low, high in (("Abyssinian_10", 281, 285), ("american_bulldog_10", 151, 268)):
        rgb = read_image(pets_root / "images" / f"{image}.jpg")
        x = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))).float()[None] / 255
        x = torch.nn.functional.interpolate(x, size=(224, 224), mode="bilinear", antialias=True)
        with torch.no_grad():  # the same normalisation the segmentation model applies inside
            top5 = backbone.classify((x - model.mean) / model.std).topk(5).indices[0].tolist()
        assert any(low <= c <= high for c in top5), (image, top5)
