"""Typed run configuration: one flat YAML with data/model/optim/schedule/train sections, plus overrides.

`load_config("pets_gcn_lite0", ["optim.lr=0.01"])` reads a shipped config by name (or any YAML path)
and coerces each override to its field's type, so nobody edits code to change a setting.
"""

from __future__ import annotations

import types
import typing
from dataclasses import asdict, dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from gcnseg.errors import GcnsegError


@dataclass
class DataConfig:
    root: str = "../shared/data/oxford-pets-sample"
    manifest: str | None = None  # JSON split manifest; made from the seed/fractions when absent
    test_fraction: float = 0.1
    val_fraction: float = 0.1
    split_seed: int = 0
    max_side: int | None = None  # drop images whose longer side is >= this (the seed's filter)
    crop_size: int = 512
    eval_size: int = 512
    scale_min: float = 0.5
    scale_max: float = 2.0
    color_jitter: float = 0.3
    batch_size: int = 8
    eval_batch_size: int = 8
    workers: int | None = None  # None: one per spare core

    def __post_init__(self) -> None:
        if self.crop_size < 32 or self.eval_size < 32:
            raise GcnsegError("data.crop_size and data.eval_size must be >= 32")
        if not 0 < self.scale_min <= self.scale_max:
            raise GcnsegError("need 0 < data.scale_min <= data.scale_max")


@dataclass
class ModelConfig:
    name: str = "gcn_efficientnet_lite0"
    kernel_size: int | None = None  # None: the model's default (15; 1 for gcn_k1_*)
    decoder_width: int | None = None  # None: num_classes, as in the paper
    backbone_weights: str = "imagenet"  # "imagenet" (shipped offline), "random", or a path/URL
    freeze_bn: bool = False
    freeze_stem: bool = False


@dataclass
class OptimConfig:
    name: Literal["sgd", "adamw"] = "sgd"
    lr: float = 0.01  # backbone learning rate
    decoder_lr_mult: float = 1.0  # decoder lr = lr × this (AdamW recipes use 10)
    momentum: float = 0.9
    weight_decay: float = 1e-4
    grad_clip: float | None = 5.0  # the GCN decoder has no normalisation: clipping keeps it finite


@dataclass
class ScheduleConfig:
    name: Literal["plateau", "poly", "cosine", "constant"] = "plateau"
    warmup_epochs: float = 1.0
    power: float = 0.9  # poly
    patience: int = 10  # plateau: epochs without improvement of the validation loss
    factor: float = 0.1
    threshold: float = 1e-4  # relative
    min_lr: float = 1e-6


@dataclass
class TrainConfig:
    epochs: int = 30
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: Literal["none", "bf16", "fp16"] = "none"
    channels_last: bool = True
    compile: bool = False
    sync_bn: bool = False
    dice_weight: float = 0.0  # loss = CE + dice_weight * (1 - Dice)
    monitor: Literal["miou", "pixel_accuracy", "loss"] = "miou"
    eval_flip: bool = False  # flip test-time augmentation during validation
    output: str = "runs"
    name: str | None = None  # run folder name; default: model name + time
    max_steps_per_epoch: int | None = None  # cap for smoke tests
    time_budget_min: float | None = None  # stop (cleanly, with checkpoints) after this many minutes
    threads: int | None = None  # torch intra-op threads; None: the cores this process may use
    tensorboard: bool = False


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return asdict(self)


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """Turn a YAML/CLI value into the field's declared type (str -> int/float/bool/None)."""
    hint = typing.get_origin(annotation)
    if hint in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        is_none = value is None or (isinstance(value, str) and value.lower() in ("none", "null"))
        if is_none and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, key)
            except GcnsegError:
                continue
        raise GcnsegError(f"{key}: cannot use {value!r}")
    if hint is Literal:
        allowed = typing.get_args(annotation)
        if value not in allowed:
            raise GcnsegError(f"{key}: {value!r} is not one of {', '.join(map(str, allowed))}")
        return value
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "yes", "1", "on"):
            return True
        if str(value).lower() in ("false", "no", "0", "off"):
            return False
        raise GcnsegError(f"{key}: {value!r} is not a boolean")
    if annotation in (int, float, str):
        try:
            if annotation is int and isinstance(value, float) and not value.is_integer():
                raise ValueError
            return annotation(value)
        except (TypeError, ValueError):
            raise GcnsegError(f"{key}: {value!r} is not a {annotation.__name__}") from None
    return value


def _section(cls: type, values: dict, prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = set(values) - known
    if unknown:
        raise GcnsegError(
            f"unknown setting {prefix}.{sorted(unknown)[0]}; known: {', '.join(sorted(known))}"
        )
    return cls(**{k: _coerce(v, hints[k], f"{prefix}.{k}") for k, v in values.items()})


def config_from_dict(data: dict) -> Config:
    hints = typing.get_type_hints(Config)
    unknown = set(data) - set(hints)
    if unknown:
        raise GcnsegError(
            f"unknown config section {sorted(unknown)[0]!r}; known: {', '.join(hints)}"
        )
    return Config(**{name: _section(hints[name], data.get(name) or {}, name) for name in hints})


def shipped_configs() -> list[str]:
    return sorted(
        p.name[:-5] for p in resources.files("gcnseg.configs").iterdir() if p.name.endswith(".yaml")
    )


def _read_yaml(source: str | Path) -> dict:
    path = Path(source)
    if not path.is_file() and str(source) in shipped_configs():
        path = Path(str(resources.files("gcnseg.configs") / f"{source}.yaml"))
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise GcnsegError(
            f"{source}: config not found (shipped: {', '.join(shipped_configs())})"
        ) from None
    except yaml.YAMLError as exc:
        raise GcnsegError(f"{path}: invalid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise GcnsegError(f"{path}: config must be a mapping of sections")
    return data


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    for item in overrides:
        key, sep, value = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot or not name:
            raise GcnsegError(f"override {item!r} must look like section.key=value")
        data.setdefault(section, {})
        if not isinstance(data[section], dict):
            raise GcnsegError(f"override {item!r}: {section} is not a section")
        data[section][name] = yaml.safe_load(value) if value.strip() else None
    return data


def load_config(source: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Defaults, then the YAML (a path or a shipped config name), then `section.key=value` overrides."""
    data = _read_yaml(source) if source else {}
    return config_from_dict(apply_overrides(data, list(overrides or [])))
