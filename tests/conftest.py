"""Shared fixtures: generated datasets in both layouts, the real sample, a loopback HTTP server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from _data import (
    CAMVID,
    PETS_SAMPLE,
    camvid_missing,
    make_tiny_folders,
    make_tiny_pets,
    pets_sample_missing,
)
from _loopback import LoopbackServer


@pytest.fixture(scope="session")
def pets_root() -> Path:
    """The real Oxford-IIIT Pet sample (506 pairs), read-only; skips the test when it is absent."""
    if (reason := pets_sample_missing()) is not None:
        pytest.skip(reason)
    return PETS_SAMPLE


@pytest.fixture(scope="session")
def camvid_root() -> Path:
    """The real CamVid train + val folders, read-only; skips the test when they are absent."""
    if (reason := camvid_missing()) is not None:
        pytest.skip(reason)
    return CAMVID


@pytest.fixture(scope="session")
def tiny_pets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated Oxford-IIIT Pet layout (28 pairs, 4 breeds); tests must not modify it."""
    return make_tiny_pets(tmp_path_factory.mktemp("data") / "tiny-pets")


@pytest.fixture(scope="session")
def tiny_folders(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated images/ + masks/ + classes.yaml layout (8 pairs); tests must not modify it."""
    return make_tiny_folders(tmp_path_factory.mktemp("data") / "tiny-folders")


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[LoopbackServer]:
    """A loopback server over an empty `tmp_path/srv`; the test puts the files to serve there."""
    root = tmp_path / "srv"
    root.mkdir()
    server = LoopbackServer(root)
    yield server
    server.close()


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """One torch thread for the module: on a small shared machine spinning OpenMP threads can be
    100× slower than one, and one thread's sums are reproducible (golden logits, ONNX parity)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The suite's ONNX exports and downloads go to a temporary cache, never the user's own."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GCNSEG_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield
