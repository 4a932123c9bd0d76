"""One battery over every registered model: any input size, backward, save/load, ONNX export,
and golden logits for two models, so a refactor cannot change what a model computes unnoticed.
"""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from gcnseg.classes import ClassSet
from gcnseg.models import create_model
from gcnseg.models.registry import list_models

CLASSES = ClassSet(("background", "cat", "dog"), ((0, 0, 0), (255, 140, 0), (30, 144, 255)))
# Odd, non-square sizes: a stride-32 backbone sees 2×2 and 3×2 maps; output must match the input.
SIZES = [(64, 96), (77, 50)]
# ResNet-101 uses the blocks ResNet-50 already exports here; its 170 MB graph adds little but time.
ONNX_SKIP = {"gcn_resnet101", "gcn_k1_resnet101"}


pytestmark = pytest.mark.usefixtures("one_thread")


def build(name: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return create_model(name, num_classes=len(CLASSES.names), backbone_weights="random")


def pattern(height: int, width: int) -> torch.Tensor:
    """A fixed input in [0, 1) that needs no random generator (golden values must not drift)."""
    count = 3 * height * width
    return (torch.arange(count, dtype=torch.float32).reshape(1, 3, height, width) * 0.618034) % 1


@pytest.fixture(scope="module", params=list_models())
def model(request: pytest.FixtureRequest) -> nn.Module:
    return build(request.param)


@pytest.mark.parametrize(("height", "width"), SIZES)
def test_logits_have_the_input_size(model: nn.Module, height: int, width: int) -> None:
    with torch.no_grad():
        logits = model.eval()(torch.rand(2, 3, height, width))
    assert logits.shape == (2, len(CLASSES.names), height, width)
    assert torch.isfinite(logits).all()


def test_backward_reaches_every_parameter(model: nn.Module) -> None:
    model.train().zero_grad(set_to_none=True)
    labels = torch.randint(0, len(CLASSES.names), (2, 77, 50))
    nn.functional.cross_entropy(model(torch.rand(2, 3, 77, 50)), labels).backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    missing = [n for n, p in trainable if p.grad is None]
    assert not missing, missing[:5]
    assert all(torch.isfinite(p.grad).all() for _, p in trainable)
    stem = next(p for n, p in trainable if n.startswith("backbone."))
    assert stem.grad.abs().sum() > 0  # the loss reaches the first backbone layer


def test_state_dict_round_trip_gives_identical_outputs(
    model: nn.Module, request: pytest.FixtureRequest
) -> None:
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    fresh = build(request.node.callspec.params["model"], seed=1)
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        assert torch.equal(fresh.eval()(x), model.eval()(x))


@pytest.mark.slow
def test_onnx_export_matches_torch_at_another_size(
    model: nn.Module, request: pytest.FixtureRequest, tmp_path
) -> None:
    name = request.node.callspec.params["model"]
    if name in ONNX_SKIP:
        pytest.skip(f"{name}: same blocks as the exported ResNet-50, a 170 MB graph")
    pytest.importorskip("onnx", reason="the [onnx] extra is not installed")
    pytest.importorskip("onnxruntime", reason="the [onnx] extra is not installed")
    from gcnseg.inference.engines import OnnxEngine
    from gcnseg.inference.export import export_onnx

    path = export_onnx(model.eval(), tmp_path / "m.onnx", classes=CLASSES, sample_size=64)
    x = torch.rand(1, 3, 77, 50)  # not the traced 64×64: sizes must stay dynamic
    with torch.no_grad():
        expected = model(x)
    assert (OnnxEngine(path, threads=1)(x) - expected).abs().max().item() <= 1e-3


# Seeded random weights, eval mode, `pattern(64, 96)`: mean logit per class, then the logits at
# three pixels (top-left, centre, bottom-right). Recorded with torch 2.13 on CPU.
GOLDEN = {
    "gcn_efficientnet_lite0": {
        "class_means": [0.0061807, 0.1626477, -0.1818768],
        "pixels": [
            [-0.0207894, 0.1490280, -0.1477104],
            [0.0325109, 0.1655780, -0.1886059],
            [0.0073527, 0.1823282, -0.1958085],
        ],
    },
    "gcn_resnet18": {
        "class_means": [0.0868569, 0.1676610, -1.1046921],
        "pixels": [
            [-0.2918513, 0.3142434, -1.0504609],
            [-0.3972282, 0.0733099, -1.1795411],
            [0.6605857, 0.8425617, -0.9690688],
        ],
    },
}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_logits(name: str) -> None:
    with torch.no_grad():
        logits = build(name).eval()(pattern(64, 96))[0]
    golden = GOLDEN[name]
    got_means = logits.mean(dim=(1, 2))
    got_pixels = torch.stack([logits[:, 0, 0], logits[:, 31, 47], logits[:, 63, 95]])
    torch.testing.assert_close(got_means, torch.tensor(golden["class_means"]), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(got_pixels, torch.tensor(golden["pixels"]), rtol=1e-4, atol=1e-5)


# Graph capture, on one model of each backbone family (the blocks repeat across sizes).
CAPTURED = ["gcn_efficientnet_lite0", "gcn_resnet18"]


@pytest.mark.slow
@pytest.mark.parametrize("name", CAPTURED)
def test_torch_export_captures_the_model_with_dynamic_sizes(name: str) -> None:
    """`torch.export` traces one graph that takes other batch sizes and other multiples of 32."""
    model = build(name).eval()
    height, width = torch.export.Dim("h32", min=2, max=64), torch.export.Dim("w32", min=2, max=64)
    dynamic = {"x": {2: 32 * height, 3: 32 * width}}
    program = torch.export.export(model, (torch.rand(1, 3, 64, 96),), dynamic_shapes=dynamic)
    x = pattern(128, 64)
    with torch.no_grad():
        torch.testing.assert_close(program.module()(x), model(x), rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_torch_compile_matches_eager() -> None:
    model = build("gcn_k1_efficientnet_lite0").eval()
    compiled = torch.compile(model, dynamic=False)
    x = pattern(64, 96)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x), rtol=1e-3, atol=1e-4)
