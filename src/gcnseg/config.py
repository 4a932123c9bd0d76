"""Typed run configuration: one flat YAML with data/model/optim/schedule/train sections, plus overrides.

`load_config("pets_gcn_lite0", ["optim.lr=0.01"])` reads a shipped config by name (or any YAML path)
and coerces each override to its field's type, so nobody edits code to change a setting.

Every section checks its own types and ranges when it is built (from YAML or in Python), so a bad
value is one line naming its key (`optim.lr: -1.0 must be > 0`) before any work starts, never a
crash deep in training or, worse, a silently wrong run (a negative grad_clip is gradient ascent).
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import asdict, dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import yaml

from gcnseg.errors import GcnsegError
from gcnseg.io.formats import DuplicateKey, parse_yaml, read_yaml
from gcnseg.limits import MIN_SIDE, REFINE_DEFAULT, REFINE_FULL, REFINE_MODES

if TYPE_CHECKING:
    from torch import nn

    from gcnseg.classes import ClassSet
    from gcnseg.data.sizes import FittedSizes

# What `gcnseg train` uses without --config and `gcnseg init` writes: the best measured recipe.
DEFAULT_CONFIG = "pets_default"
# More classes than pets' three: class weights against imbalance (CamVid's 11, 6-epoch runs on
# val: +0.016 mIoU, SignSymbol 0.16 -> 0.27; benchmarks/README.md, "CamVid").
WEIGHTED_FROM_CLASSES = 4
# Layouts a recipe was measured on: `gcnseg init` writes it unchanged (sizes, weights and all).
MEASURED_RECIPES = {"camvid": "camvid_default", "oxford-pets": "pets_default"}


def _matches(value: Any, annotation: Any) -> bool:
    """Whether `value` already has the declared type; a bool is not a number here (`true` is no
    batch size) and a float must be finite."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, option) for option in typing.get_args(annotation))
    if origin is Literal:
        return isinstance(value, str) and value in typing.get_args(annotation)
    if annotation is type(None):
        return value is None
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return (
            isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        )
    return isinstance(value, annotation)


def _describe(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(annotation))
    if origin is Literal:
        return "one of " + ", ".join(map(str, typing.get_args(annotation)))
    if annotation is type(None):
        return "none"
    if annotation is float:
        return "a finite number"
    return f"a {annotation.__name__}" if annotation is not int else "an int"


class _Section:
    """Type and range checks shared by the sections; each names its keys `section.key`."""

    SECTION: ClassVar[str]

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if not _matches(value, hints[f.name]):
                raise GcnsegError(
                    f"{self.SECTION}.{f.name}: {value!r} is not {_describe(hints[f.name])}"
                )
        self.check()

    def check(self) -> None:
        """Range checks; the types are already right."""

    def require(self, key: str, ok: bool, rule: str) -> None:
        """Write `ok` so that NaN fails it (`not x > 0`, never `x <= 0`)."""
        if not ok:
            raise GcnsegError(f"{self.SECTION}.{key}: {getattr(self, key)!r} must be {rule}")


@dataclass
class DataConfig(_Section):
    SECTION: ClassVar[str] = "data"
    root: str | None = None  # the dataset folder; configs carry none, `--data` gives it
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
    class_crops: float = 0.0  # share of training crops centred on a class drawn uniformly
    batch_size: int = 8
    eval_batch_size: int = 8
    workers: int | None = None  # None: one per spare core

    def check(self) -> None:
        self.require("root", self.root is None or bool(self.root), "a dataset folder or none")
        self.require("manifest", self.manifest is None or bool(self.manifest), "a path or none")
        self.require("test_fraction", 0 <= self.test_fraction < 1, "in [0, 1)")
        self.require(
            "val_fraction",
            0 < self.val_fraction < 1,
            "in (0, 1): training picks best.pt by its score on the validation split",
        )
        self.require("split_seed", self.split_seed >= 0, ">= 0")
        self.require("max_side", self.max_side is None or self.max_side >= 1, ">= 1 or none")
        for key in ("crop_size", "eval_size"):
            self.require(key, getattr(self, key) >= MIN_SIDE, f">= {MIN_SIDE}")
        self.require("scale_min", self.scale_min > 0, "> 0")
        self.require("scale_max", self.scale_max >= self.scale_min, ">= data.scale_min")
        self.require("color_jitter", 0 <= self.color_jitter <= 1, "in [0, 1]")
        self.require("class_crops", 0 <= self.class_crops <= 1, "in [0, 1]")
        for key in ("batch_size", "eval_batch_size"):
            self.require(key, getattr(self, key) >= 1, ">= 1")
        self.require("workers", self.workers is None or self.workers >= 0, ">= 0 or none")


@dataclass
class ModelConfig(_Section):
    SECTION: ClassVar[str] = "model"
    name: str = "gcn_efficientnet_lite0"
    kernel_size: int | None = None  # None: the model's default (15; 1 for gcn_k1_*)
    decoder_width: int | None = None  # None: num_classes, as in the paper
    # Where the last two Boundary Refinements run: "quarter" (both at 1/4, scores upsampled once)
    # or "full" (the paper's half + full resolution); gcnseg.limits says why.
    refine: str = REFINE_DEFAULT
    backbone_weights: str = "imagenet"  # "imagenet" (shipped offline), "random", or a path/URL
    # A segmentation model to start from (packaged name, run folder, checkpoint or folder written
    # by save_pretrained); replaces backbone_weights. See gcnseg.training.init.
    init: str | None = None
    freeze_bn: bool = False
    freeze_stem: bool = False

    def check(self) -> None:
        self.require("name", bool(self.name), "a model name (see `gcnseg models`)")
        k = self.kernel_size
        self.require("kernel_size", k is None or (k >= 1 and k % 2 == 1), "odd and >= 1, or none")
        w = self.decoder_width
        self.require("decoder_width", w is None or w >= 1, ">= 1 or none")
        self.require("refine", self.refine in REFINE_MODES, " or ".join(REFINE_MODES))
        self.require(
            "backbone_weights", bool(self.backbone_weights), "imagenet, random, a path or a URL"
        )
        self.require(
            "init", self.init is None or bool(self.init), "a model, run, checkpoint or none"
        )

    def build(self, num_classes: int, backbone_weights: str | None = None) -> nn.Module:
        """The model this section describes: the one builder for training and loading.

        `backbone_weights` overrides the section's ("random" when trained weights will be
        loaded over it anyway).
        """
        from gcnseg.models.registry import create_model

        return create_model(
            self.name,
            num_classes=num_classes,
            backbone_weights=backbone_weights or self.backbone_weights,
            kernel_size=self.kernel_size,
            decoder_width=self.decoder_width,
            refine=self.refine,
            freeze_bn=self.freeze_bn,
            freeze_stem=self.freeze_stem,
        )


@dataclass
class OptimConfig(_Section):
    SECTION: ClassVar[str] = "optim"
    name: Literal["sgd", "adamw"] = "sgd"
    lr: float = 0.01  # backbone learning rate
    decoder_lr_mult: float = 1.0  # decoder lr = lr × this (AdamW recipes use 10)
    momentum: float = 0.9
    weight_decay: float = 1e-4
    grad_clip: float | None = 5.0  # the GCN decoder has no normalisation: clipping keeps it finite

    def check(self) -> None:
        self.require("lr", self.lr > 0, "> 0")
        self.require("decoder_lr_mult", self.decoder_lr_mult > 0, "> 0")
        self.require("momentum", 0 <= self.momentum < 1, "in [0, 1)")
        self.require("weight_decay", self.weight_decay >= 0, ">= 0")
        clip = self.grad_clip
        self.require("grad_clip", clip is None or clip > 0, "> 0 or none (no clipping)")


@dataclass
class ScheduleConfig(_Section):
    SECTION: ClassVar[str] = "schedule"
    name: Literal["plateau", "poly", "cosine", "constant"] = "plateau"
    warmup_epochs: float = 1.0
    power: float = 0.9  # poly
    patience: int = 10  # plateau: epochs without improvement of the validation loss
    factor: float = 0.1
    threshold: float = 1e-4  # relative
    min_lr: float = 1e-6

    def check(self) -> None:
        self.require("warmup_epochs", self.warmup_epochs >= 0, ">= 0")
        self.require("power", self.power > 0, "> 0")
        self.require("patience", self.patience >= 0, ">= 0")
        self.require("factor", 0 < self.factor < 1, "in (0, 1): the plateau schedule lowers the lr")
        self.require("threshold", self.threshold >= 0, ">= 0")
        self.require("min_lr", self.min_lr >= 0, ">= 0")


@dataclass
class TrainConfig(_Section):
    SECTION: ClassVar[str] = "train"
    epochs: int = 30
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: Literal["auto", "none", "bf16", "fp16"] = "auto"  # auto: see runtime.resolve_amp
    channels_last: bool = True
    compile: bool = False
    sync_bn: bool = False
    dice_weight: float = 0.0  # loss = CE + dice_weight * (1 - Dice)
    label_smoothing: float = 0.0  # of the cross-entropy's targets
    # OHEM: CE over the pixels whose true class has at most this probability (0.7 in PSPNet's
    # code), at least 1/16 of them; none: every labelled pixel (training.losses.hard_pixels)
    ohem_threshold: float | None = None
    # CE weights per class from the training labels (see gcnseg.training.losses.class_weights)
    class_weights: Literal["none", "median_frequency", "sqrt_median_frequency"] = "none"
    ema_decay: float | None = None  # validate, save and ship an EMA of the weights (e.g. 0.995)
    monitor: Literal["miou", "pixel_accuracy", "loss"] = "miou"
    eval_flip: bool = False  # flip test-time augmentation during validation
    output: str = "runs"
    name: str | None = None  # run folder name; default: model name + time
    max_steps_per_epoch: int | None = None  # cap for smoke tests
    time_budget_min: float | None = None  # fit the epochs and schedule into this many minutes
    threads: int | None = None  # torch intra-op threads; None: the cores this process may use
    tensorboard: bool = False

    def check(self) -> None:
        self.require("epochs", self.epochs >= 1, ">= 1")
        self.require("seed", 0 <= self.seed < 2**32, "in [0, 2**32)")  # what every RNG takes
        self.require("dice_weight", self.dice_weight >= 0, ">= 0")
        self.require("label_smoothing", 0 <= self.label_smoothing < 1, "in [0, 1)")
        ohem = self.ohem_threshold
        self.require("ohem_threshold", ohem is None or 0 < ohem <= 1, "in (0, 1] or none")
        decay = self.ema_decay
        self.require("ema_decay", decay is None or 0 < decay < 1, "in (0, 1) or none")
        self.require("output", bool(self.output), "a folder")
        name = self.name
        self.require(
            "name",
            name is None
            or (bool(name) and name not in (".", "..") and "/" not in name and "\\" not in name),
            "a folder name (not a path) or none",
        )
        steps = self.max_steps_per_epoch
        self.require("max_steps_per_epoch", steps is None or steps >= 1, ">= 1 or none")
        budget = self.time_budget_min
        self.require("time_budget_min", budget is None or budget > 0, "> 0 or none")
        self.require("threads", self.threads is None or self.threads >= 1, ">= 1 or none")


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
    """Turn a YAML/CLI value into the field's declared type (str -> int/float/None).

    Only what is unambiguous is converted: `true` is not a number, `1` is not a boolean, and
    `nan` is no learning rate; the section's own checks then catch what remains.
    """
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
        raise GcnsegError(f"{key}: {value!r} is not {_describe(annotation)}")
    if hint is Literal:
        allowed = typing.get_args(annotation)
        if value not in allowed:
            raise GcnsegError(f"{key}: {value!r} is not one of {', '.join(map(str, allowed))}")
        return value
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "on", "false", "no", "off"):
            return value.lower() in ("true", "yes", "on")
        raise GcnsegError(f"{key}: {value!r} is not a boolean (true or false)")
    if annotation in (int, float, str):
        if value is None or isinstance(value, (bool, dict, list)):
            raise GcnsegError(f"{key}: {value!r} is not {_describe(annotation)}")
        try:
            if annotation is int and isinstance(value, float) and not value.is_integer():
                raise ValueError
            coerced = annotation(value)
        except (TypeError, ValueError, OverflowError):
            raise GcnsegError(f"{key}: {value!r} is not {_describe(annotation)}") from None
        if annotation is float and not math.isfinite(coerced):
            raise GcnsegError(f"{key}: {value!r} is not {_describe(annotation)}")
        return coerced
    return value


def _section(cls: type, values: Any, prefix: str) -> Any:
    if not isinstance(values, dict):
        raise GcnsegError(f"{prefix}: must be a mapping of settings, got {values!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = set(values) - known
    if unknown:
        raise GcnsegError(
            f"unknown setting {prefix}.{sorted(unknown)[0]}; known: {', '.join(sorted(known))}"
        )
    return cls(**{k: _coerce(v, hints[k], f"{prefix}.{k}") for k, v in values.items()})


# Settings added after models were first saved, with the value that rebuilds what those models
# trained: a saved config without `model.refine` ran the paper's full-resolution decoder.
_SAVED_DEFAULTS = {"model": {"refine": REFINE_FULL}}


def saved_config_from_dict(data: dict) -> Config:
    """The config a checkpoint or saved model holds, read as `config_from_dict` reads a user's,
    except that settings it predates keep the value it was trained with, not today's default."""
    if isinstance(data, dict):
        data = {**data}
        for section, defaults in _SAVED_DEFAULTS.items():
            saved = data.get(section) or {}
            if isinstance(saved, dict):  # anything else is config_from_dict's to refuse
                data[section] = {**defaults, **saved}
    return config_from_dict(data)


def config_from_dict(data: dict) -> Config:
    """Build and check a Config; the first bad setting is a GcnsegError naming its key."""
    if not isinstance(data, dict):
        raise GcnsegError(f"config must be a mapping of sections, got {type(data).__name__}")
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
        data = read_yaml(path) or {}
    except FileNotFoundError:
        raise GcnsegError(
            f"{source}: config not found (shipped: {', '.join(shipped_configs())})"
        ) from None
    except OSError as exc:
        raise GcnsegError(f"{path}: cannot read config ({exc.strerror or exc})") from None
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
        data[section][name] = _override_value(f"{section}.{name}", value)
    return data


def _override_value(key: str, text: str) -> Any:
    """An override's value, parsed as YAML (plain values only): `0.01`, `none`, `[1, 2]`."""
    if not text.strip():
        return None
    try:
        return parse_yaml(text)
    except DuplicateKey as exc:
        raise GcnsegError(f"{key}: {text!r}: {exc}") from None
    except yaml.YAMLError as exc:
        problem = str(exc).splitlines()[0]
        raise GcnsegError(f"{key}: {text!r} is not a plain YAML value ({problem})") from None


def load_config(source: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Defaults, then the YAML (a path or a shipped config name), then `section.key=value` overrides."""
    data = _read_yaml(source) if source else {}
    return config_from_dict(apply_overrides(data, list(overrides or [])))


def starter_config(
    root: Path,
    classes: ClassSet,
    pairs: int,
    sizes: FittedSizes | None = None,
    layout: str | None = None,
) -> str:
    """The YAML `gcnseg init DATA` writes: every setting of the best measured recipe, with
    `data.root` set and the data's classes named in the header (they come from the data, not
    from the config). A layout the project measured a recipe on (CamVid, Oxford-IIIT Pet) gets
    that recipe as it is; any other data the default recipe (what `gcnseg train --data DATA`
    uses) with crop and eval sizes fitted to its frames (`sizes`) and class weights where there
    are more classes than pets' three (as `camvid_default`)."""
    measured = MEASURED_RECIPES.get(layout or "")
    cfg = load_config(measured or DEFAULT_CONFIG)
    cfg.data.root = str(root)
    budget = f"{cfg.train.time_budget_min:g} minutes" if cfg.train.time_budget_min else "none"
    notes = [
        f"# The recipe {'measured on this dataset' if measured else 'of the packaged models'} "
        f"({measured or DEFAULT_CONFIG}): {cfg.model.name}, CE + {cfg.train.dice_weight:g} Dice, "
        f"{cfg.optim.name}, {cfg.schedule.name} schedule;",
        f"# the run fits its epochs into train.time_budget_min ({budget}; none: every epoch).",
    ]
    if sizes is not None and not measured:
        cfg.data.crop_size, cfg.data.eval_size = sizes.crop_size, sizes.eval_size
        notes.append(
            f"# data.crop_size and data.eval_size fit the median frame, {sizes.width}x"
            f"{sizes.height}: eval at its longer side, crops within its shorter side."
        )
    if len(classes.names) >= WEIGHTED_FROM_CLASSES and not measured:
        cfg.train.class_weights = "sqrt_median_frequency"
        notes.append(
            f"# {len(classes.names)} classes: train.class_weights weighs rare classes up, "
            "as the camvid_default recipe does."
        )
    header = [
        f"# gcnseg training config for {root}",
        f"# {pairs} image/mask pairs; classes (from the data): {', '.join(classes.names)}",
        *notes,
        "# Train with: gcnseg train --config THIS_FILE   (print the result: add --print-config)",
        "# Small dataset? Start from a segmentation model: set model.init to pets-default.",
        "",
    ]
    return "\n".join(header) + yaml.safe_dump(cfg.to_dict(), sort_keys=False)
