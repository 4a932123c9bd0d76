from __future__ import annotations

import pytest

from gcnseg.config import load_config, shipped_configs
from gcnseg.errors import GcnsegError


def test_shipped_config_and_typed_overrides() -> None:
    assert "pets_gcn_lite0" in shipped_configs()
    cfg = load_config(
        "pets_gcn_lite0",
        [
            "optim.lr=0.02",
            "train.epochs=3",
            "train.channels_last=false",
            "data.max_side=600",
            "model.kernel_size=none",
        ],
    )
    assert cfg.optim.lr == 0.02 and isinstance(cfg.train.epochs, int) and cfg.train.epochs == 3
    assert cfg.train.channels_last is False
    assert cfg.data.max_side == 600
    assert cfg.model.kernel_size is None


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optim.lrr=1", "unknown setting optim.lrr"),
        ("nope.x=1", "unknown config section"),
        ("train.epochs=many", "train.epochs"),
        ("optim.name=rmsprop", "not one of"),
        ("train.epochs", "section.key=value"),
        ("data.crop_size=8", "crop_size"),
    ],
)
def test_bad_overrides_are_one_line_errors(override: str, message: str) -> None:
    with pytest.raises(GcnsegError, match=message):
        load_config("pets_gcn_lite0", [override])


def test_yaml_file(tmp_path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  name: gcn_resnet18\ntrain:\n  amp: bf16\n")
    cfg = load_config(path)
    assert cfg.model.name == "gcn_resnet18" and cfg.train.amp == "bf16"
    with pytest.raises(GcnsegError, match="config not found"):
        load_config(tmp_path / "missing.yaml")
