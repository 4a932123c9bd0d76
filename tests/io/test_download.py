"""download_file against a loopback server that honours Range; safe_extract_tar on hostile tars."""

from __future__ import annotations

import hashlib
import io
import re
import tarfile
from pathlib import Path

import pytest

from _loopback import LoopbackServer
from gcnseg.errors import GcnsegError
from gcnseg.io.download import download_file, safe_extract_tar

PAYLOAD = bytes(range(256)) * 400  # 100 KiB, not a multiple of the 1 MiB read size


@pytest.fixture
def server(http_server: LoopbackServer) -> LoopbackServer:
    (http_server.root / "blob.bin").write_bytes(PAYLOAD)
    return http_server


SHA256 = hashlib.sha256(PAYLOAD).hexdigest()
MD5 = hashlib.md5(PAYLOAD).hexdigest()


@pytest.mark.parametrize(
    "digest", [{"sha256": SHA256}, {"sha256": SHA256[:8].upper()}, {"md5": MD5}, {}]
)
def test_download_verifies_and_renames(
    server: LoopbackServer, tmp_path: Path, digest: dict
) -> None:
    dest = tmp_path / "out" / "blob.bin"
    assert download_file(f"{server.url}/blob.bin", dest, progress=False, **digest) == dest
    assert dest.read_bytes() == PAYLOAD
    assert not dest.with_suffix(".bin.part").exists()
    assert server.seen == [("/blob.bin", None, 200)]


def test_existing_file_with_matching_digest_is_not_fetched(
    server: LoopbackServer, tmp_path: Path
) -> None:
    dest = tmp_path / "blob.bin"
    dest.write_bytes(PAYLOAD)
    download_file(f"{server.url}/blob.bin", dest, sha256=SHA256, progress=False)
    assert server.seen == []


def test_existing_file_with_wrong_digest_is_fetched_again(
    server: LoopbackServer, tmp_path: Path
) -> None:
    dest = tmp_path / "blob.bin"
    dest.write_bytes(b"stale")
    download_file(f"{server.url}/blob.bin", dest, sha256=SHA256, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert len(server.seen) == 1


def test_resume_sends_range_and_appends(server: LoopbackServer, tmp_path: Path) -> None:
    dest = tmp_path / "blob.bin"
    dest.with_suffix(".bin.part").write_bytes(PAYLOAD[:1000])
    download_file(f"{server.url}/blob.bin", dest, sha256=SHA256, progress=True)
    assert server.seen == [("/blob.bin", "bytes=1000-", 206)]
    assert dest.read_bytes() == PAYLOAD


def test_no_progress_bar_when_stderr_is_not_a_terminal(
    server: LoopbackServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`data download > log 2>&1`: a bar's carriage returns would fill the log."""
    download_file(f"{server.url}/blob.bin", tmp_path / "blob.bin", sha256=SHA256, progress=True)
    assert capsys.readouterr().err == ""


def test_server_ignoring_range_restarts_from_zero(server: LoopbackServer, tmp_path: Path) -> None:
    server.honour_range = False
    dest = tmp_path / "blob.bin"
    dest.with_suffix(".bin.part").write_bytes(PAYLOAD[:1000])
    download_file(f"{server.url}/blob.bin", dest, md5=MD5, progress=False)
    assert server.seen == [("/blob.bin", "bytes=1000-", 200)]
    assert dest.read_bytes() == PAYLOAD


def test_part_longer_than_file_restarts_after_416(server: LoopbackServer, tmp_path: Path) -> None:
    dest = tmp_path / "blob.bin"
    dest.with_suffix(".bin.part").write_bytes(PAYLOAD + b"junk")
    download_file(f"{server.url}/blob.bin", dest, sha256=SHA256, progress=False)
    assert [status for _, _, status in server.seen] == [416, 200]
    assert dest.read_bytes() == PAYLOAD


def test_interrupted_download_keeps_part_and_resumes(
    server: LoopbackServer, tmp_path: Path
) -> None:
    dest = tmp_path / "blob.bin"
    part = dest.with_suffix(".bin.part")
    server.cut_after = 5000
    with pytest.raises(GcnsegError, match=r"blob\.bin: connection closed after 5000 of 102400"):
        download_file(f"{server.url}/blob.bin", dest, sha256=SHA256, progress=False)
    assert part.read_bytes() == PAYLOAD[:5000]
    assert not dest.exists()
    server.cut_after = None
    download_file(f"{server.url}/blob.bin", dest, sha256=SHA256, progress=False)
    assert server.seen[-1] == ("/blob.bin", "bytes=5000-", 206)
    assert dest.read_bytes() == PAYLOAD


def test_checksum_mismatch_raises_one_line_and_leaves_nothing(
    server: LoopbackServer, tmp_path: Path
) -> None:
    dest = tmp_path / "blob.bin"
    wrong = "0" * 64
    with pytest.raises(GcnsegError) as info:
        download_file(f"{server.url}/blob.bin", dest, sha256=wrong, progress=False)
    message = str(info.value)
    assert "\n" not in message
    assert f"{server.url}/blob.bin" in message and wrong in message and SHA256 in message
    assert list(tmp_path.iterdir()) == [tmp_path / "srv"]


def test_http_error_names_url_and_keeps_part(server: LoopbackServer, tmp_path: Path) -> None:
    dest = tmp_path / "missing.bin"
    part = dest.with_suffix(".bin.part")
    part.write_bytes(b"partial")
    with pytest.raises(GcnsegError, match=r"download failed: http://\S+/missing\.bin: HTTP 404"):
        download_file(f"{server.url}/missing.bin", dest, progress=False)
    assert part.read_bytes() == b"partial"


def test_server_error_keeps_part_and_the_next_try_resumes(
    server: LoopbackServer, tmp_path: Path
) -> None:
    dest = tmp_path / "blob.bin"
    part = dest.with_suffix(".bin.part")
    part.write_bytes(PAYLOAD[:1000])
    server.fail_with = [503]
    with pytest.raises(GcnsegError, match=r"blob\.bin: HTTP 503"):
        download_file(f"{server.url}/blob.bin", dest, sha256=SHA256, progress=False)
    assert part.read_bytes() == PAYLOAD[:1000]
    download_file(f"{server.url}/blob.bin", dest, sha256=SHA256, progress=False)
    assert server.seen == [("/blob.bin", "bytes=1000-", 503), ("/blob.bin", "bytes=1000-", 206)]
    assert dest.read_bytes() == PAYLOAD


def test_unreachable_server_is_a_gcnseg_error(server: LoopbackServer, tmp_path: Path) -> None:
    url = f"{server.url}/blob.bin"
    server.close()
    with pytest.raises(GcnsegError, match=re.escape(f"download failed: {url}: ")):
        download_file(url, tmp_path / "blob.bin", progress=False)


@pytest.mark.parametrize("bad", [{"sha256": "abc123"}, {"sha256": "z" * 64}, {"md5": "0" * 31}])
def test_malformed_digest_fails_before_any_request(
    server: LoopbackServer, tmp_path: Path, bad: dict
) -> None:
    with pytest.raises(GcnsegError, match=r"bad (sha256|md5)"):
        download_file(f"{server.url}/blob.bin", tmp_path / "blob.bin", progress=False, **bad)
    assert server.seen == []


# --- safe_extract_tar ------------------------------------------------------------------------


def _member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


def _write_tar(path: Path, members: list[tarfile.TarInfo]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info in members:
            body = f"content of {info.name}".encode() if info.isfile() else b""
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return path


def test_safe_extract_tar_unpacks_and_merges(tmp_path: Path) -> None:
    target = tmp_path / "root"
    (target / "images").mkdir(parents=True)
    (target / "images" / "old.txt").write_text("kept")
    archive = _write_tar(
        tmp_path / "ok.tar.gz",
        [
            _member("images", tarfile.DIRTYPE),
            _member("images/a.txt"),
            _member("notes/b.txt"),
            _member("notes/link", tarfile.SYMTYPE, "b.txt"),
        ],
    )
    safe_extract_tar(archive, target)
    assert (target / "images" / "a.txt").read_text() == "content of images/a.txt"
    assert (target / "images" / "old.txt").read_text() == "kept"
    assert (target / "notes" / "link").read_text() == "content of notes/b.txt"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.tar.gz", "root"]  # no temp dir


@pytest.mark.parametrize(
    ("members", "culprit"),
    [
        ([_member("fine.txt"), _member("../evil")], "../evil"),
        ([_member("sub/../../evil")], "sub/../../evil"),
        ([_member("ABSOLUTE")], "ABSOLUTE"),
        ([_member("up", tarfile.SYMTYPE, "../evil")], "up"),
        ([_member("abs", tarfile.SYMTYPE, "ABSOLUTE")], "abs"),
        ([_member("hard", tarfile.LNKTYPE, "../evil")], "hard"),
        ([_member("dot", tarfile.SYMTYPE, "."), _member("up", tarfile.SYMTYPE, "dot/..")], "up"),
        ([_member("dev", tarfile.CHRTYPE)], "dev"),
        ([_member("fifo", tarfile.FIFOTYPE)], "fifo"),
    ],
    ids=[
        "dotdot",
        "nested-dotdot",
        "absolute",
        "symlink",
        "abs-symlink",
        "hardlink",
        "symlink-chain",
        "chardev",
        "fifo",
    ],
)
def test_safe_extract_tar_rejects_escapes(
    tmp_path: Path, members: list[tarfile.TarInfo], culprit: str
) -> None:
    outside = tmp_path / "evil"
    for info in members:  # absolute names must point into tmp_path so a leak would show
        info.name = info.name.replace("ABSOLUTE", str(outside))
        info.linkname = info.linkname.replace("ABSOLUTE", str(outside))
    culprit = culprit.replace("ABSOLUTE", str(outside))
    target = tmp_path / "target"
    archive = _write_tar(tmp_path / "bad.tar.gz", members)
    with pytest.raises(GcnsegError) as info:
        safe_extract_tar(archive, target)
    assert str(archive) in str(info.value) and repr(culprit) in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.tar.gz"]  # no target, no temp


def test_safe_extract_tar_reports_corrupt_archive(tmp_path: Path) -> None:
    archive = tmp_path / "broken.tar.gz"
    archive.write_bytes(b"\x1f\x8b\x08\x00not really gzip")
    with pytest.raises(GcnsegError, match=r"cannot extract .*broken\.tar\.gz"):
        safe_extract_tar(archive, tmp_path / "target")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.tar.gz"]
