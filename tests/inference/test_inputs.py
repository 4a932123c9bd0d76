"""expand_inputs / output_stems: inputs found safely, and one distinct output name per input."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from gcnseg.errors import GcnsegError
from gcnseg.inference.inputs import check_no_overwrite, expand_inputs, output_stems


def _touch(*paths: Path) -> None:
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


def test_files_folders_and_patterns_in_order_without_duplicates(tmp_path: Path) -> None:
    a, b, c = tmp_path / "d" / "a.jpg", tmp_path / "d" / "b.PNG", tmp_path / "e" / "c.jpg"
    _touch(a, b, c, tmp_path / "d" / "notes.txt")
    (tmp_path / "d" / "sub.jpg").mkdir()  # a folder named like an image is no image
    found = expand_inputs([str(c), str(tmp_path / "d"), str(tmp_path / "*" / "*.jpg"), str(a)])
    assert found == [c, a, b]  # the folder adds a, b; the pattern and a repeat nothing
    same = expand_inputs([str(a), str(tmp_path / "d" / ".." / "d" / "a.jpg")])
    assert same == [a]


def test_missing_and_empty_inputs(tmp_path: Path) -> None:
    with pytest.raises(GcnsegError, match=r"nope\.jpg: no such file"):
        expand_inputs([str(tmp_path / "nope.jpg")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(GcnsegError, match="no input images found"):
        expand_inputs([str(tmp_path / "empty")])


def test_fifo_is_skipped_without_opening(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Opening a FIFO blocks until someone writes to it: it must never be opened."""
    good = tmp_path / "in" / "good.jpg"
    _touch(good)
    fifo = tmp_path / "in" / "x.jpg"
    os.mkfifo(fifo)
    with caplog.at_level(logging.WARNING, logger="gcnseg.inference.inputs"):
        assert expand_inputs([str(tmp_path / "in")]) == [good]
        assert expand_inputs([str(tmp_path / "in" / "*.jpg")]) == [good]
        with pytest.raises(GcnsegError, match="no input images"):
            expand_inputs([str(fifo)])
    assert sum(f"{fifo}: not a regular file" in r.getMessage() for r in caplog.records) == 3


@pytest.mark.parametrize(
    ("paths", "expected"),
    [
        (["in/a.jpg", "in/b.jpg"], ["a", "b"]),
        (["sub1/x.jpg", "sub2/x.jpg"], ["sub1/x", "sub2/x"]),
        (["sub1/deep/x.jpg", "sub2/x.jpg"], ["sub1/deep/x", "sub2/x"]),
        (["in/x.jpg", "in/x.png"], ["x_jpg", "x_png"]),
        (["in/x.jpg", "in/X.jpg"], ["x_jpg", "X_jpg_1"]),
        (["in/x_jpg.png", "in/x.jpg", "in/x.png"], ["x_jpg", "x_jpg_1", "x_png"]),
        (["only.jpg"], ["only"]),
    ],
    ids=["same-folder", "same-name", "depths", "same-stem", "case", "crafted", "one"],
)
def test_output_stems_are_unique(tmp_path: Path, paths: list[str], expected: list[str]) -> None:
    stems = output_stems([tmp_path / p for p in paths])
    assert stems == expected
    assert len({s.lower() for s in stems}) == len(stems)


def test_earlier_outputs_are_inputs_only_when_named(tmp_path: Path) -> None:
    photo = tmp_path / "d" / "cat.jpg"
    outputs = [
        tmp_path / "d" / name for name in ("cat_mask.png", "cat_overlay.jpg", "Cat_Panel.PNG")
    ]
    _touch(photo, *outputs)
    assert expand_inputs([str(tmp_path / "d")]) == [photo]
    assert expand_inputs([str(tmp_path / "d" / "*")]) == [photo]
    assert expand_inputs([str(outputs[1])]) == [outputs[1]]  # named on purpose: taken


def test_an_output_onto_an_input_is_refused(tmp_path: Path) -> None:
    cat, overlay = tmp_path / "cat.jpg", tmp_path / "cat_overlay.jpg"
    _touch(cat, overlay)
    with pytest.raises(GcnsegError, match=f"the overlay of {cat} would overwrite this input"):
        check_no_overwrite([cat, overlay], [tmp_path / "cat", tmp_path / "cat_overlay"])
    check_no_overwrite([cat, overlay], [tmp_path / "out" / "cat", tmp_path / "out" / "x"])
    # an output that is a link to an input is the input too
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "cat_mask.png").symlink_to(cat)
    with pytest.raises(GcnsegError, match="the mask of"):
        check_no_overwrite([cat], [tmp_path / "out" / "cat"])
