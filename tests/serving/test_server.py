"""`gcnseg serve` as a process: SIGTERM lets in-flight requests finish; the CLI's defaults."""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2 as httpx
import pytest

from _serving import Photo, running_server
from gcnseg.cli import build_parser, main
from gcnseg.inference import segmenter


def test_serve_binds_loopback_by_default() -> None:
    args = build_parser().parse_args(["serve"])
    assert (args.host, args.port, args.checkpoint) == ("127.0.0.1", 8000, "pets-default")
    assert (args.max_upload_mb, args.max_queue) == (20.0, 16)


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--port", "99999"], "port"),
        (["--port", "-1"], "port"),
        (["--max-upload-mb", "inf"], "max_upload_mb"),
        (["--max-upload-mb", "nan"], "max_upload_mb"),
        (["--max-upload-mb", "0"], "max_upload_mb"),
        (["--max-upload-mb", "-3"], "max_upload_mb"),
        (["--max-queue", "0"], "max_queue"),
        (["--memory-budget-mb", "inf"], "memory_budget_mb"),
        (["--body-timeout-s", "0"], "body_timeout_s"),
    ],
)
def test_bad_settings_are_one_line_before_the_model_loads(
    flags: list[str], named: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    def load(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model was loaded before the settings were checked")

    monkeypatch.setattr(segmenter, "load", load)
    assert main(["serve", *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and named in err


@pytest.mark.slow
def test_sigterm_finishes_in_flight_requests_then_exits(tmp_path: Path, photo: Photo) -> None:
    # --max-batch 1: the three requests run one after another, so two are still in the line
    # (one running, one waiting) when the signal comes.
    with running_server(tmp_path / "serve.log", "--max-batch", "1") as server:

        def send() -> httpx.Response:
            files = {"image": (photo.name, photo.data, "image/jpeg")}
            return httpx.post(f"{server.url}/v1/segment", files=files, timeout=120)

        with ThreadPoolExecutor(3) as pool:
            replies = [pool.submit(send) for _ in range(3)]
            deadline = time.monotonic() + 60
            while httpx.get(f"{server.url}/healthz", timeout=5).json()["in_line"] < 2:
                assert time.monotonic() < deadline, "the requests never queued up"
                time.sleep(0.005)
            server.process.send_signal(signal.SIGTERM)
            statuses = [reply.result(120).status_code for reply in replies]
        assert statuses == [200, 200, 200], server.output()
        # uvicorn re-raises the signal once it has shut down, so the exit is "terminated by
        # SIGTERM", which service managers count as a clean stop (older uvicorn exits 0).
        assert server.process.wait(timeout=60) in (0, -signal.SIGTERM), server.output()
        assert "Shutting down" in server.output()
        with pytest.raises(httpx.TransportError):  # and it is gone
            httpx.get(f"{server.url}/healthz", timeout=5)


@pytest.mark.slow
def test_api_key_from_the_command_line(tmp_path: Path) -> None:
    with running_server(tmp_path / "serve.log", "--api-key", "k3y") as server:
        assert httpx.get(f"{server.url}/v1/model", timeout=30).status_code == 401
        model = httpx.get(f"{server.url}/v1/model", headers={"X-API-Key": "k3y"}, timeout=30)
        assert model.status_code == 200 and model.json()["engine"] == "torch-fp32"
