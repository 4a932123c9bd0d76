"""Helpers for the server tests and fixtures (tests/serving): a photo to send, a bomb, and a
server on a free loopback port: `gcnseg serve` as a process, or an app served in a thread."""

from __future__ import annotations

import io
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx
import pytest
import uvicorn
from PIL import Image

CAT = "Abyssinian_10.jpg"  # a cat filling a fifth of the frame
ENGINE = "torch-fp32"  # loads in seconds; auto would export to ONNX first on a fresh machine


@dataclass(frozen=True)
class Photo:
    name: str
    data: bytes
    real: bool  # the real sample's cat photo; else a generated picture (a clone without shared/)

    @property
    def size(self) -> tuple[int, int]:
        return Image.open(io.BytesIO(self.data)).size


def hold_predictions(segmenter, monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Make `segmenter.predict` wait until the returned event is set: requests stay in line."""
    release = threading.Event()
    real_predict = segmenter.predict

    def held_predict(images: list) -> list:
        assert release.wait(60)
        return real_predict(images)

    monkeypatch.setattr(segmenter, "predict", held_predict)
    return release


def png_claiming(width: int, height: int) -> bytes:
    """A few hundred bytes of PNG whose header claims width × height: a decompression bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    body = zlib.compress(b"\0" * 4096)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def running_server(log: Path, *args: str, ready_s: float = 180.0) -> Iterator[Server]:
    """`gcnseg serve` on a free loopback port, ready when /healthz answers; stopped at the end."""
    port = free_port()
    command = [sys.executable, "-m", "gcnseg", "serve", "--port", str(port), "--engine", ENGINE]
    env = {k: v for k, v in os.environ.items() if k != "GCNSEG_API_KEY"}  # keys come from args
    with log.open("w") as sink:
        process = subprocess.Popen(
            [*command, *args], stdout=sink, stderr=subprocess.STDOUT, env=env
        )
    server = Server(f"http://127.0.0.1:{port}", process, log)
    try:
        deadline = time.monotonic() + ready_s
        while True:
            if process.poll() is not None:
                pytest.fail(f"gcnseg serve exited with {process.returncode}:\n{server.output()}")
            try:
                if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"gcnseg serve not ready after {ready_s:.0f} s:\n{server.output()}")
            time.sleep(0.2)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@dataclass
class Served:
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def served(app: object) -> Iterator[Served]:
    """`app` served by uvicorn (as `gcnseg serve` runs it) in a thread, on a free loopback port,
    so tests can reach it with raw sockets; stopped at the end."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=5
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="test-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield Served(port)
    finally:
        server.should_exit = True
        thread.join(30)
