"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

# /work/main/tests/conftest.py -> /work/shared/data/oxford-pets-sample
PETS_SAMPLE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "oxford-pets-sample"


@pytest.fixture(scope="session")
def pets_root() -> Path:
    """The real Oxford-IIIT Pet sample (506 pairs), read-only; skips the test when it is absent."""
    if not (PETS_SAMPLE / "images").is_dir() or not (PETS_SAMPLE / "annotations").is_dir():
        pytest.skip(f"Oxford-IIIT Pet sample not found at {PETS_SAMPLE}")
    return PETS_SAMPLE
