"""ClassSet: no class is special unless the set names a background, and old dicts still load."""

from __future__ import annotations

import pytest

from gcnseg.checkpoint import load_checkpoint
from gcnseg.classes import ClassSet
from gcnseg.errors import GcnsegError
from gcnseg.source import resolve_source

COLORS = [[0, 0, 0], [200, 0, 0], [0, 200, 0]]


def test_background_travels_through_to_dict_and_back() -> None:
    marked = ClassSet.from_dict({"names": ["sky", "road", "car"], "background": "road"})
    assert marked.background == 1
    assert marked.to_dict()["background"] == "road"
    assert ClassSet.from_dict(marked.to_dict()) == marked
    unmarked = ClassSet.from_dict({"names": ["background", "cat"], "background": None})
    assert unmarked.background is None  # an explicit null wins over the name
    assert ClassSet.from_dict(unmarked.to_dict()) == unmarked


def test_a_dict_without_the_key_takes_a_class_named_background() -> None:
    old = ClassSet.from_dict({"names": ["cat", "background"], "colors": COLORS[:2]})
    assert old.background == 1
    assert ClassSet.from_dict({"names": ["Sky", "Road"]}).background is None


def test_the_packaged_pets_model_keeps_its_background() -> None:
    stored = load_checkpoint(resolve_source("pets-default").path)["classes"]
    assert "background" not in stored  # saved before the key existed
    assert ClassSet.from_dict(stored).background == stored["names"].index("background")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"names": ["a", "b"], "ignore_index": 11}, "unknown key 'ignore_index'"),
        ({"names": ["a", "b"], "background": "c"}, "background must name one of the classes"),
        ({"names": ["a", "b"], "background": 0}, "background must name one of the classes"),
    ],
)
def test_bad_keys_are_one_line_naming_them(data: dict, message: str) -> None:
    with pytest.raises(GcnsegError, match=message) as exc:
        ClassSet.from_dict(data)
    assert "\n" not in str(exc.value)


def test_background_index_is_checked() -> None:
    with pytest.raises(GcnsegError, match="background must be a class index"):
        ClassSet(("a", "b"), ((0, 0, 0), (1, 1, 1)), background=2)
