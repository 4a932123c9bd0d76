"""The cache folder: where it is, turning it off, its size cap and least-recently-used eviction."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gcnseg.errors import GcnsegError
from gcnseg.io.cache import cache_folder, cache_root, evict, limit_bytes, touch

MB = 2**20


def test_cache_root_default_environment_and_argument(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("GCNSEG_CACHE", raising=False)
    assert cache_root() == tmp_path / "home" / ".cache" / "gcnseg"
    assert cache_root("~/elsewhere") == tmp_path / "home" / "elsewhere"
    monkeypatch.setenv("GCNSEG_CACHE", str(tmp_path / "moved"))
    assert cache_root() == tmp_path / "moved"
    assert cache_root(tmp_path / "arg") == tmp_path / "arg"  # the argument beats the environment


@pytest.mark.parametrize("value", ["off", "OFF", " off "])
def test_cache_off_by_environment(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("GCNSEG_CACHE", value)
    assert cache_root() is None


def test_cache_off_by_argument(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GCNSEG_CACHE", str(tmp_path))
    assert cache_root(False) is None
    assert cache_root("off") is None


def test_cache_folder_off_is_temporary(tmp_path: Path) -> None:
    with cache_folder(None) as folder:
        assert folder.is_dir()
        (folder / "model.onnx").write_bytes(b"x")
    assert not folder.exists()
    with cache_folder(tmp_path / "kept") as folder:
        assert folder == tmp_path / "kept"


def test_limit_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GCNSEG_CACHE_MB", raising=False)
    assert limit_bytes() == 256 * MB
    monkeypatch.setenv("GCNSEG_CACHE_MB", "10")
    assert limit_bytes() == 10 * MB
    monkeypatch.setenv("GCNSEG_CACHE_MB", "0.5")
    assert limit_bytes() == MB // 2


@pytest.mark.parametrize("value", ["lots", "-1", "nan"])
def test_bad_limit_is_one_line(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("GCNSEG_CACHE_MB", value)
    with pytest.raises(GcnsegError, match=f"GCNSEG_CACHE_MB='{value}'"):
        limit_bytes()


def _entries(folder: Path, count: int, size: int) -> list[Path]:
    """`count` files of `size` bytes, the first the least recently used."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"{i}.onnx"
        path.write_bytes(b"\0" * size)
        os.utime(path, (1_000_000 + i, 1_000_000 + i))
        paths.append(path)
    return paths


def test_evict_deletes_least_recently_used_until_under_the_limit(tmp_path: Path) -> None:
    paths = _entries(tmp_path, 5, 1000)
    (tmp_path / "notes.txt").write_bytes(b"\0" * 5000)  # not an entry: never counted or deleted
    touch(paths[0])  # just used: now the most recent
    deleted = evict(tmp_path, "*.onnx", 2500)
    assert deleted == paths[1:4]
    assert sorted(tmp_path.glob("*.onnx")) == [paths[0], paths[4]]
    assert (tmp_path / "notes.txt").exists()


def test_evict_keeps_the_entry_in_use_even_over_the_limit(tmp_path: Path) -> None:
    paths = _entries(tmp_path, 3, 1000)
    assert evict(tmp_path, "*.onnx", 0, keep=paths[0]) == paths[1:]
    assert paths[0].exists()


def test_evict_within_the_limit_deletes_nothing(tmp_path: Path) -> None:
    paths = _entries(tmp_path, 3, 1000)
    assert evict(tmp_path, "*.onnx", 3000) == []
    assert all(p.exists() for p in paths)
    assert evict(tmp_path / "missing", "*.onnx", 0) == []
