"""FrozenBatchNorm2d: same keys and numbers as BatchNorm2d in eval, and nothing in it ever moves."""

from __future__ import annotations

import torch
from torch import nn

from gcnseg.models import create_model
from gcnseg.models.frozen_bn import FrozenBatchNorm2d, freeze_batchnorm


def _trained_bn() -> nn.BatchNorm2d:
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(4)
    bn.train()
    for _ in range(3):
        bn(torch.randn(2, 4, 5, 5) * 3 + 1)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 2)
        bn.bias.uniform_(-1, 1)
    return bn


def test_same_outputs_and_keys_as_batchnorm_in_eval() -> None:
    bn = _trained_bn()
    frozen = FrozenBatchNorm2d.from_batchnorm(bn)
    x = torch.randn(2, 4, 5, 5)
    assert torch.equal(frozen(x), bn.eval()(x))
    assert list(frozen.state_dict()) == list(bn.state_dict())
    fresh = nn.BatchNorm2d(4)
    fresh.load_state_dict(frozen.state_dict())  # and back: checkpoints load either way
    assert torch.equal(fresh.eval()(x), bn(x))


def test_train_mode_changes_nothing() -> None:
    frozen = FrozenBatchNorm2d.from_batchnorm(_trained_bn())
    before = {k: v.clone() for k, v in frozen.state_dict().items()}
    frozen.train()
    assert not frozen.training
    out = frozen(torch.randn(2, 4, 5, 5, requires_grad=True))
    out.sum().backward()
    assert list(frozen.parameters()) == []
    for key, value in frozen.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_freeze_batchnorm_replaces_every_layer_and_keeps_the_model_loadable() -> None:
    plain = create_model("gcn_efficientnet_lite0", num_classes=3, backbone_weights="random")
    frozen = create_model(
        "gcn_efficientnet_lite0", num_classes=3, backbone_weights="random", freeze_bn=True
    )
    assert not any(isinstance(m, nn.BatchNorm2d) for m in frozen.backbone.modules())
    assert any(isinstance(m, FrozenBatchNorm2d) for m in frozen.backbone.modules())
    assert list(frozen.state_dict()) == list(plain.state_dict())
    frozen.load_state_dict(plain.state_dict())
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(frozen.train()(x), plain.eval()(x))


def test_a_lone_batchnorm_is_returned_frozen() -> None:
    assert isinstance(freeze_batchnorm(nn.BatchNorm2d(3)), FrozenBatchNorm2d)
