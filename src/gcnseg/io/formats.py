"""Reading YAML and writing strict JSON, with a user's mistake reported as one line."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from gcnseg.errors import GcnsegError


class DuplicateKey(yaml.YAMLError):
    """A mapping names one key twice: YAML's last-one-wins would silently drop a setting."""

    def __init__(self, key: Any, first: int, again: int) -> None:
        super().__init__(f"key {key!r} appears twice (lines {first} and {again})")


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader (plain values only, never Python objects), refusing duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base` may be overridden
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the base constructor names it
                continue
            if first is not None:
                raise DuplicateKey(key, first, line)
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str) -> Any:
    """YAML text to plain values; duplicate keys raise DuplicateKey, anything else yaml.YAMLError."""
    return yaml.load(text, Loader=_StrictLoader)


def read_yaml(path: Path) -> Any:
    """The parsed YAML (a superset of JSON) of `path`, or one line naming the file."""
    try:
        return parse_yaml(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise GcnsegError(f"{path}: not a UTF-8 text file") from None
    except DuplicateKey as exc:
        raise GcnsegError(f"{path}: {exc}; the last one would silently win") from None
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
