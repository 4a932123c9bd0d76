"""Where a trained model comes from: one resolver for every way to name one, one reader.

A model is named by a packaged name (`pets-default`), a run folder (its best.pt, else
last.pt), a checkpoint file (`.pt`, `.pt.gz`), a folder written by `save_pretrained`
(safetensors + config.json) or an exported `.onnx` file. `resolve_source` says which;
`read_model` gives the torch model with its config, classes and metrics for all but ONNX, and
`write_pretrained` writes the folder `read_model` reads back. `gcnseg.load`, `gcnseg export`,
`--init` and the server all come through here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from gcnseg._version import __version__
from gcnseg.classes import ClassSet
from gcnseg.config import Config, saved_config_from_dict
from gcnseg.errors import GcnsegError

PRETRAINED_CONFIG = "config.json"
PRETRAINED_WEIGHTS = "model.safetensors"
PRETRAINED_FORMAT = "gcnseg-pretrained"
RUN_CHECKPOINTS = ("best.pt", "last.pt")  # a run folder's model, in order of preference


@dataclass(frozen=True)
class Packaged:
    file: str  # in gcnseg/pretrained/
    training_data: dict[str, str]


# Models shipped inside the package, loadable by name with no download.
PACKAGED = {
    "pets-default": Packaged(
        "pets-default.pt.gz", {"name": "Oxford-IIIT Pet", "license": "CC BY-SA 4.0"}
    ),
    "camvid-default": Packaged(
        "camvid-default.pt.gz",
        {
            "name": "CamVid (11 classes, 360x480, SegNet's distribution)",
            "license": "research use; cite Brostow, Fauqueur and Cipolla, 2009",
        },
    ),
}
USER_DATA = {"name": "user data", "license": "as the data's owner set it"}

Kind = Literal["checkpoint", "pretrained", "onnx"]


@dataclass(frozen=True)
class ModelSource:
    """A resolved model name: the file or folder to read and what it is."""

    given: str  # as the user wrote it, for messages
    path: Path
    kind: Kind
    # a packaged model's training data: the package's word, over anything the file says
    training_data: dict[str, str] | None = None


@dataclass
class TrainedModel:
    """A torch model (fp32, eval mode) with what it was trained as."""

    model: nn.Module
    config: Config
    classes: ClassSet
    metrics: dict[str, Any]
    training_data: dict[str, str]

    @property
    def name(self) -> str:
        return self.config.model.name

    @property
    def eval_size(self) -> int:
        return self.config.data.eval_size


def packaged_models() -> list[str]:
    return sorted(PACKAGED)


def packaged_table() -> str:
    """The models shipped in the package: name, architecture, classes, eval size, data, metrics."""
    from gcnseg.checkpoint import load_checkpoint

    lines = ["packaged model   architecture              eval size  val mIoU  data: classes"]
    for name in packaged_models():
        where = resolve_source(name)
        payload = load_checkpoint(where.path)
        config, classes = _config_and_classes(payload, where.path)
        miou = (payload.get("metrics") or {}).get("val_miou")
        shown = f"{miou:.4f}" if isinstance(miou, float) else "-"
        lines.append(
            f"{name:<16} {config.model.name:<25} {config.data.eval_size:>9}  {shown:>8}  "
            f"{PACKAGED[name].training_data['name']}: {', '.join(classes.names)}"
        )
    return "\n".join(lines)


def resolve_source(source: str | Path) -> ModelSource:
    """What `source` names, or one line saying why it names nothing usable."""
    if source is None or str(source) == "":
        raise GcnsegError(
            f"no model given; name a packaged model ({', '.join(PACKAGED)}), a run, a checkpoint, a saved folder or an .onnx file"
        )
    text = str(source)
    if text in PACKAGED:
        entry = PACKAGED[text]
        path = Path(str(resources.files("gcnseg.pretrained") / entry.file))
        return ModelSource(text, path, "checkpoint", dict(entry.training_data))
    path = Path(source)
    if path.is_dir():
        if (path / PRETRAINED_CONFIG).is_file():
            return ModelSource(text, path, "pretrained")
        for name in RUN_CHECKPOINTS:
            if (path / name).is_file():
                return ModelSource(text, path / name, "checkpoint")
        raise GcnsegError(
            f"{path}: neither a run folder (no best.pt or last.pt) nor a folder written by "
            f"save_pretrained (no {PRETRAINED_CONFIG})"
        )
    if not path.is_file():
        raise GcnsegError(
            f"{path}: model not found (packaged models: {', '.join(PACKAGED)}; or a run folder, "
            "a checkpoint, a saved folder or an .onnx file)"
        )
    if path.suffix.lower() == ".onnx":
        return ModelSource(text, path, "onnx")
    return ModelSource(text, path, "checkpoint")


def read_config(source: str | Path | ModelSource) -> tuple[Config, ClassSet]:
    """A model's config and classes without building it (to check a request before loading)."""
    where = source if isinstance(source, ModelSource) else resolve_source(source)
    if where.kind == "pretrained":
        meta = _pretrained_meta(where.path)
        return _config_and_classes(meta, where.path / PRETRAINED_CONFIG)
    if where.kind == "onnx":
        raise GcnsegError(f"{where.path}: an ONNX file holds no torch weights or training config")
    from gcnseg.checkpoint import load_checkpoint

    payload = load_checkpoint(where.path)
    return _config_and_classes(payload, where.path)


def read_model(source: str | Path | ModelSource) -> TrainedModel:
    """The torch model `source` names, rebuilt from its config, with its classes and metrics.

    Weights that do not fit the architecture the config names (a crafted or foreign file) are one
    line naming the file, not a state-dict traceback.
    """
    where = source if isinstance(source, ModelSource) else resolve_source(source)
    if where.kind == "onnx":
        raise GcnsegError(f"{where.path}: an ONNX file holds no torch weights")
    if where.kind == "pretrained":
        meta = _pretrained_meta(where.path)
        config, classes = _config_and_classes(meta, where.path / PRETRAINED_CONFIG)
        state = _read_safetensors(where.path / PRETRAINED_WEIGHTS)
        metrics = meta.get("metrics") or {}
        training_data = meta.get("training_data")
    else:
        from gcnseg.checkpoint import load_checkpoint

        payload = load_checkpoint(where.path)
        config, classes = _config_and_classes(payload, where.path)
        state = payload["model"]
        metrics = payload.get("metrics") or {}
        training_data = payload.get("training_data")
    model = config.model.build(len(classes.names), backbone_weights="random")
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        problem = " ".join(str(exc).split())[:300]
        raise GcnsegError(
            f"{where.path}: weights do not fit {config.model.name} with "
            f"{len(classes.names)} classes ({problem})"
        ) from None
    training_data = where.training_data or training_data or USER_DATA
    return TrainedModel(model.eval(), config, classes, dict(metrics), dict(training_data))


def write_pretrained(folder: str | Path, trained: TrainedModel, *, eval_size: int) -> Path:
    """safetensors weights + a JSON config (model, classes, eval size, metrics, data), written
    atomically; `read_model(folder)` reads them back."""
    from safetensors.torch import save_file

    from gcnseg.io.atomic import atomic_path, write_json

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise GcnsegError(f"{folder}: exists and is not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    state = {
        k: v.detach().float().cpu().contiguous() for k, v in trained.model.state_dict().items()
    }
    with atomic_path(folder / PRETRAINED_WEIGHTS) as tmp:
        save_file(state, str(tmp), metadata={"format": "pt"})
    config = trained.config.to_dict()
    config["data"]["eval_size"] = eval_size
    write_json(
        folder / PRETRAINED_CONFIG,
        {
            "format": PRETRAINED_FORMAT,
            "gcnseg_version": __version__,
            "model": config["model"],
            "classes": trained.classes.to_dict(),
            "eval_size": eval_size,
            "preprocessing": {
                "input": "RGB, letterboxed: longer side to eval_size, padded bottom/right with 0",
                "tensor": "float32 NCHW in [0, 1]; the ImageNet normalisation is inside the model",
                "output": "logits NCHW at the input's size; argmax over C gives class indices",
            },
            "metrics": trained.metrics,
            "training_data": trained.training_data,
            "config": config,
        },
    )
    return folder


def _pretrained_meta(folder: Path) -> dict[str, Any]:
    path = folder / PRETRAINED_CONFIG
    try:
        meta = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GcnsegError(f"{path}: not a gcnseg config ({exc})") from None
    if not isinstance(meta, dict):
        raise GcnsegError(f"{path}: not a gcnseg config (not a JSON object)")
    return meta


def _config_and_classes(data: dict[str, Any], where: Path) -> tuple[Config, ClassSet]:
    try:
        return saved_config_from_dict(data["config"]), ClassSet.from_dict(data["classes"])
    except (KeyError, TypeError) as exc:
        raise GcnsegError(f"{where}: not a gcnseg model (missing {exc})") from None
    except GcnsegError as exc:
        raise GcnsegError(f"{where}: bad model config: {exc}") from None


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (OSError, SafetensorError) as exc:
        raise GcnsegError(f"{path}: unreadable weights ({exc})") from None
