"""Reading YAML and writing strict JSON, with a user's mistake reported as one line."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from gcnseg.errors import GcnsegError


def read_yaml(path: Path) -> Any:
    """The parsed YAML (a superset of JSON) of `path`, or one line naming the file."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise GcnsegError(f"{path}: not a UTF-8 text file") from None
    except yaml.YAMLError as exc:
        raise GcnsegError(f"{path}: invalid YAML ({str(exc).splitlines()[0]})") from None


def finite(value: Any) -> Any:
    """`value` with every NaN or infinite float replaced by None: strict JSON, which every parser
    reads (a class absent from every image has an undefined IoU)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value
