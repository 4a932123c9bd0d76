"""`--init`: start training from a segmentation model's weights instead of ImageNet's.

For a small dataset a model that already segments (pets-default knows fur, ears and outlines)
is a far better start than a classifier. Every weight is copied, except those whose shape
depends on the number of classes when the new data has another count:

- `classifier.*`: the 1×1 class-score conv a decoder wider than the class count ends with;
- `decoder.*` when the decoder carries class scores throughout (`model.decoder_width` unset,
  the paper's design and pets-default's): every GCN block's convs (their output is one channel
  per class) and every Boundary Refinement conv (C → C) are then class-shaped.

Those start as a fresh model's (seeded by `train.seed`); the backbone, and any decoder whose
width does not follow the class count, keeps the source's weights and BatchNorm statistics.

The source fixes the architecture: `follow_init_model` takes its model name and kernel size
unless the command line names them, and a different model is refused from the source's config
alone, before any weights are loaded or data read.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from torch import nn

from gcnseg.classes import ClassSet
from gcnseg.config import Config
from gcnseg.errors import GcnsegError

log = logging.getLogger(__name__)


def read_init(source: str) -> tuple[dict[str, Any], dict, ClassSet]:
    """(state dict, config dict, classes) of a packaged model, run folder, checkpoint or a folder
    written by `save_pretrained`: read by `gcnseg.source`, like every other model."""
    from gcnseg.source import read_model

    trained = read_model(source)
    return trained.model.state_dict(), trained.config.to_dict(), trained.classes


def source_model(source: str) -> dict:
    """The `model` settings of an --init source, read from its config alone (no model is built)."""
    from gcnseg.source import read_config, resolve_source

    where = resolve_source(source)
    if where.kind == "onnx":
        raise GcnsegError(f"--init {source}: an ONNX file holds no trainable weights")
    config, _ = read_config(where)
    return config.to_dict()["model"]


def _other_model(source: str, source_name: str, name: str) -> GcnsegError:
    return GcnsegError(
        f"--init {source} is a {source_name} model but this run trains {name}; "
        f"pass --model {source_name}, or leave --model out (--init implies the source's model)"
    )


def check_init_model(source: str, name: str) -> None:
    """Refuse training model `name` from a source holding another model, before any loading."""
    source_name = source_model(source)["name"]
    if source_name != name:
        raise _other_model(source, source_name, name)


def follow_init_model(cfg: Config, overrides: list[str]) -> Config:
    """`cfg` training the architecture of its model.init source (model name, kernel size, refine),
    except settings named in `overrides` (the command line's): those are the user's choice, and
    a model other than the source's is refused later by `check_init_model`."""
    if cfg.model.init is None:
        return cfg
    given = {item.partition("=")[0].strip() for item in overrides}
    source = source_model(cfg.model.init)
    follow = {
        key: source.get(key)
        for key in ("name", "kernel_size", "refine")
        if f"model.{key}" not in given and source.get(key) != getattr(cfg.model, key)
    }
    if not follow:
        return cfg
    for key, value in follow.items():
        log.info("model.%s: %s (from --init %s)", key, value, cfg.model.init)
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, **follow))


def class_dependent(key: str, width_follows_classes: bool) -> bool:
    """Whether parameter `key` of a GCN model is shaped by the number of classes."""
    return key.startswith("classifier.") or (width_follows_classes and key.startswith("decoder."))


def apply_init(model: nn.Module, cfg: Config, classes: ClassSet, source: str) -> list[str]:
    """Copy `source`'s weights into `model` (built from `cfg` for `classes`); return the keys
    left as initialised because the class count differs. Another model is one line."""
    state, config, source_classes = read_init(source)
    model_cfg = config.get("model", {})
    source_name = model_cfg.get("name")
    if source_name != cfg.model.name:
        raise _other_model(source, source_name, cfg.model.name)
    ours = model.state_dict()
    same_count = len(source_classes.names) == len(classes.names)
    tied = cfg.model.decoder_width is None or model_cfg.get("decoder_width") is None
    fresh = [] if same_count else [k for k in ours if class_dependent(k, tied)]
    copied = {}
    for key, value in ours.items():
        if key in fresh:
            continue
        theirs = state.get(key)
        if theirs is None or theirs.shape != value.shape:
            found = "missing" if theirs is None else f"shaped {tuple(theirs.shape)}"
            raise GcnsegError(
                f"--init {source}: {key} is {found} there but {tuple(value.shape)} here; "
                "model.kernel_size or model.decoder_width differ from the source's"
            )
        copied[key] = theirs.to(value.dtype)
    model.load_state_dict(copied, strict=False)
    if fresh:
        log.info(
            "--init %s: %d tensors copied; %d re-initialised (classifier and class-shaped decoder: "
            "%d classes there, %d here)",
            source,
            len(copied),
            len(fresh),
            len(source_classes.names),
            len(classes.names),
        )
    else:
        log.info("--init %s: all %d tensors copied", source, len(copied))
    return fresh
