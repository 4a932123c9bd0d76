"""YAML read strictly (plain values, no key twice) and JSON written strictly."""

from __future__ import annotations

import math

import pytest
import yaml

from gcnseg.errors import GcnsegError
from gcnseg.io.formats import DuplicateKey, finite, parse_yaml, read_yaml


def test_plain_yaml_and_merge_keys_still_read() -> None:
    text = "base: &b {x: 1, y: 2}\nrun:\n  <<: *b\n  x: 3\nlist: [1, 2]\n"
    assert parse_yaml(text) == {"base": {"x": 1, "y": 2}, "run": {"x": 3, "y": 2}, "list": [1, 2]}


@pytest.mark.parametrize(
    ("text", "key", "lines"),
    [
        ("a: 1\na: 2\n", "a", (1, 2)),
        ("outer:\n  lr: 1\n  momentum: 2\n  lr: 3\n", "lr", (2, 4)),
        ("{names: [a], names: [b]}", "names", (1, 1)),
    ],
)
def test_a_key_twice_is_refused_with_both_lines(text: str, key: str, lines: tuple) -> None:
    with pytest.raises(DuplicateKey, match=rf"key '{key}' appears twice \(lines {lines[0]} and {lines[1]}\)"):  # fmt: skip
        parse_yaml(text)


def test_python_tags_are_never_constructed() -> None:
    with pytest.raises(yaml.YAMLError):
        parse_yaml('!!python/object/apply:os.system ["true"]')


def test_read_yaml_names_the_file_and_key(tmp_path) -> None:
    path = tmp_path / "classes.yaml"
    path.write_text("names: [background, cat]\nnames: [background, dog]\n")
    with pytest.raises(GcnsegError) as exc:
        read_yaml(path)
    assert str(exc.value) == (
        f"{path}: key 'names' appears twice (lines 1 and 2); the last one would silently win"
    )


def test_finite_replaces_nan_and_inf_with_none() -> None:
    assert finite({"a": [1.0, math.nan], "b": (math.inf, 2)}) == {"a": [1.0, None], "b": [None, 2]}
