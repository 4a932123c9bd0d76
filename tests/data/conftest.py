"""A generated Oxford-IIIT Pet layout with the real release's quirks, for the data tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from _data import add_release_quirks


@pytest.fixture(scope="session")
def quirky_pets(tiny_pets: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of `tiny_pets` with a GIF and an RGBA PNG named .jpg and a stray .mat; read-only."""
    root = tmp_path_factory.mktemp("data") / "quirky-pets"
    shutil.copytree(tiny_pets, root)
    return add_release_quirks(root)
