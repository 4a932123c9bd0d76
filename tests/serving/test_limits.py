"""The limits: the settings' checks, the memory budget, and the front door over real sockets
(slow and keyless clients hold no place in line; oversized and late bodies close the connection)."""

from __future__ import annotations

import asyncio
import gc
import io
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path

import httpx2 as httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from starlette.exceptions import HTTPException

from _serving import Photo, hold_predictions, png_claiming, served
from gcnseg.data.images import MAX_PIXELS
from gcnseg.errors import GcnsegError
from gcnseg.inference.segmenter import Segmenter
from gcnseg.serving.app import create_app
from gcnseg.serving.limits import (
    MB,
    OVERLAY_BYTES_PER_PIXEL,
    Admission,
    ServeSettings,
    request_bytes,
)
from gcnseg.viz.draw import jpeg_bytes, overlay

BOUNDARY = "gcnsegboundary"
PART_HEAD = (
    f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n'
    "Content-Type: image/jpeg\r\n\r\n"
).encode()


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"port": 99999}, "port"),
        ({"port": -1}, "port"),
        ({"port": 0}, "port"),
        ({"max_upload_mb": float("inf")}, "max_upload_mb"),
        ({"max_upload_mb": float("nan")}, "max_upload_mb"),
        ({"max_upload_mb": 0}, "max_upload_mb"),
        ({"max_upload_mb": -5}, "max_upload_mb"),
        ({"max_queue": 0}, "max_queue"),
        ({"max_queue": 2.5}, "max_queue"),
        ({"max_batch": 0}, "max_batch"),
        ({"memory_budget_mb": float("inf")}, "memory_budget_mb"),
        ({"memory_budget_mb": 0}, "memory_budget_mb"),
        ({"body_timeout_s": float("nan")}, "body_timeout_s"),
        ({"body_timeout_s": -1}, "body_timeout_s"),
        ({"api_key": ""}, "api_key"),
        ({"host": ""}, "host"),
    ],
)
def test_settings_refuse_bad_values_naming_the_argument(options: dict, named: str) -> None:
    with pytest.raises(GcnsegError) as caught:
        ServeSettings(**options)
    message = str(caught.value)
    assert message.startswith(f"{named} ") and "--" not in message and "\n" not in message


def test_the_default_budget_admits_the_largest_photo_accepted() -> None:
    largest = png_claiming(12_000, 12_000)  # the header alone: pixels are never decoded here
    for drawn in (False, True):
        pixels, cost = request_bytes(largest, 3, overlay=drawn)
        assert pixels == MAX_PIXELS
        assert cost <= ServeSettings().memory_budget_bytes


def test_the_cost_follows_the_pixels_the_classes_and_the_endpoint() -> None:
    small, large = png_claiming(100, 100), png_claiming(1000, 1000)
    assert (
        request_bytes(large, 3, overlay=False)[1] > 50 * request_bytes(small, 3, overlay=False)[1]
    )
    assert request_bytes(large, 21, overlay=False)[1] > request_bytes(large, 3, overlay=False)[1]
    # An overlay is drawn after the logits are gone: it costs more only where it needs more.
    assert request_bytes(large, 1, overlay=True)[1] > request_bytes(large, 1, overlay=False)[1]
    assert request_bytes(large, 3, overlay=True)[1] == request_bytes(large, 3, overlay=False)[1]
    # Not an image, or over the pixel limit: decoding refuses it, so only its bytes count.
    assert request_bytes(b"just text", 3, overlay=False) == (0, 9)
    bomb = png_claiming(30_000, 30_000)
    assert request_bytes(bomb, 3, overlay=True) == (0, len(bomb))


def test_admission_holds_a_place_and_memory_until_the_reply() -> None:
    admission = Admission(max_queue=2, budget_bytes=100)
    with pytest.raises(HTTPException) as too_big, admission.admit("huge.png", 1000, 101):
        pass
    assert too_big.value.status_code == 413 and "memory_budget_mb" in too_big.value.detail
    with admission.admit("a.png", 10, 60):
        assert (admission.count, admission.reserved) == (1, 60)
        with pytest.raises(HTTPException) as no_room, admission.admit("b.png", 10, 50):
            pass
        assert no_room.value.status_code == 503 and no_room.value.headers == {"Retry-After": "1"}
        with admission.admit("c.png", 10, 40):
            with pytest.raises(HTTPException) as full, admission.admit("d.png", 1, 0):
                pass
            assert full.value.status_code == 503 and "max_queue 2" in full.value.detail
    assert (admission.count, admission.reserved) == (0, 0)
    # A failing request gives its place back too.
    with pytest.raises(RuntimeError), admission.admit("e.png", 10, 60):
        raise RuntimeError("decode failed")
    assert (admission.count, admission.reserved) == (0, 0)


def test_an_image_over_the_memory_budget_is_413(segmenter: Segmenter, photo: Photo) -> None:
    with TestClient(create_app(segmenter, ServeSettings(memory_budget_mb=0.1))) as client:
        response = client.post("/v1/segment", files={"image": ("big.jpg", photo.data)})
    assert response.status_code == 413
    detail = response.json()["detail"]
    assert detail.startswith("big.jpg: ") and "memory_budget_mb" in detail


def test_a_full_memory_budget_is_503_with_retry_after(
    segmenter: Segmenter, photo: Photo, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = hold_predictions(segmenter, monkeypatch)
    cost = request_bytes(photo.data, len(segmenter.classes.names), overlay=False)[1]
    settings = ServeSettings(memory_budget_mb=1.5 * cost / MB)  # room for one photo, not two
    files = {"image": (photo.name, photo.data)}
    with TestClient(create_app(segmenter, settings)) as client:
        first: Future = Future()
        thread = threading.Thread(
            target=lambda: first.set_result(client.post("/v1/segment", files=files))
        )
        thread.start()
        deadline = time.monotonic() + 30
        while client.get("/healthz").json()["in_line"] < 1:
            assert time.monotonic() < deadline, "the first request was never admitted"
            time.sleep(0.01)
        assert client.get("/healthz").json()["memory_reserved_mb"] > 0
        busy = client.post("/v1/segment", files=files)
        assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
        assert "memory budget" in busy.json()["detail"]
        release.set()
        thread.join(60)
        assert first.result(0).status_code == 200
        assert client.post("/v1/segment", files=files).status_code == 200


def _peak_rss_since_reset() -> Callable[[], int]:
    """Reset the process's peak RSS (Linux); the returned function gives the bytes it rose by."""

    def field(name: str) -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(name):
                return int(line.split()[1]) * 1024
        raise RuntimeError(f"no {name} in /proc/self/status")

    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")
    base = field("VmRSS:")
    return lambda: field("VmHWM:") - base


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux's /proc")
def test_the_cost_per_pixel_bounds_the_real_peak(segmenter: Segmenter) -> None:
    side = 6000
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (200, 120, 40)).save(buffer, format="PNG")
    data = buffer.getvalue()
    small = io.BytesIO()
    Image.new("RGB", (64, 48), (1, 2, 3)).save(small, format="PNG")
    classes = len(segmenter.classes.names)
    with TestClient(create_app(segmenter)) as client:
        assert client.post("/v1/segment", files={"image": ("s.png", small.getvalue())}).is_success
        rose = _peak_rss_since_reset()
        response = client.post("/v1/segment", files={"image": ("big.png", data)})
        assert response.status_code == 200
        assert rose() <= request_bytes(data, classes, overlay=False)[1]
    # Drawing an overlay in which every pixel is painted, beside the photo and its mask.
    photo = np.full((side, side, 3), 90, np.uint8)
    mask = np.ones((side, side), np.uint8)
    rose = _peak_rss_since_reset()
    jpeg_bytes(overlay(photo, mask, segmenter.classes))
    assert rose() <= (OVERLAY_BYTES_PER_PIXEL - 4) * side * side  # 4: the photo and mask


# Over real sockets: what the test client cannot show (a client that sends a few bytes and waits,
# a connection that the server closes).


def open_upload(
    port: int, *, key: str | None, length: int = 500_000, body: bytes = b""
) -> socket.socket:
    """A connection that has sent an upload's headers and `body`, and nothing more yet."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    head = (
        f"POST /v1/segment HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {length}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
    )
    if key is not None:
        head += f"X-API-Key: {key}\r\n"
    sock.sendall(head.encode() + b"\r\n" + body)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a timeout fails the test)."""
    reply = b""
    try:
        while chunk := sock.recv(65536):
            reply += chunk
    except ConnectionResetError:  # closed with unread data: a reset, after the reply
        pass
    return reply


def read_reply(sock: socket.socket) -> bytes:
    """A reply's head and its (short) body, while the connection stays open."""
    reply = b""
    while b"}" not in reply:  # the JSON error body's end
        chunk = sock.recv(65536)
        assert chunk, f"closed after {reply!r}"
        reply += chunk
    return reply


@pytest.fixture
def hold_socks() -> Iterator[list[socket.socket]]:
    socks: list[socket.socket] = []
    yield socks
    for sock in socks:
        sock.close()


def test_slow_and_keyless_clients_hold_no_place_in_line(
    segmenter: Segmenter, photo: Photo, hold_socks: list[socket.socket]
) -> None:
    settings = ServeSettings(max_queue=2, api_key="k3y")
    with served(create_app(segmenter, settings)) as server:
        keyless = [open_upload(server.port, key=None, body=PART_HEAD) for _ in range(3)]
        idle = [open_upload(server.port, key="k3y", body=PART_HEAD) for _ in range(3)]
        hold_socks.extend(keyless + idle)
        for sock in keyless:  # refused from the headers, before the body is read
            reply = read_reply(sock)
            assert reply.startswith(b"HTTP/1.1 401") and b"X-API-Key" in reply
        stop = threading.Event()

        def drip() -> None:
            sock = open_upload(server.port, key="k3y", body=PART_HEAD)
            hold_socks.append(sock)
            while not stop.wait(0.2):
                sock.sendall(b"x")

        dripping = threading.Thread(target=drip)
        dripping.start()
        try:
            assert httpx.get(f"{server.url}/healthz", timeout=30).json()["in_line"] == 0
            for _ in range(3):
                good = httpx.post(
                    f"{server.url}/v1/segment",
                    files={"image": (photo.name, photo.data, "image/jpeg")},
                    headers={"X-API-Key": "k3y"},
                    timeout=120,
                )
                assert good.status_code == 200, good.text
        finally:
            stop.set()
            dripping.join(30)
            for sock in hold_socks:  # before the server stops: it waits for open uploads
                sock.close()


def test_refused_uploads_of_declared_length_still_get_their_answer(
    segmenter: Segmenter, photo: Photo
) -> None:
    # Clients like this one read only once they have sent the whole body: closing on them
    # would turn the answer into a connection reset.
    settings = ServeSettings(max_upload_mb=1, api_key="k3y")
    big = {"image": ("big.jpg", b"\xff\xd8" + bytes(2 * MB), "image/jpeg")}

    async def send(url: str) -> tuple[httpx.Response, httpx.Response]:
        async with httpx.AsyncClient(timeout=60) as client:
            keyless = await client.post(url, files={"image": (photo.name, photo.data)})
            oversized = await client.post(url, files=big, headers={"X-API-Key": "k3y"})
        return keyless, oversized

    with served(create_app(segmenter, settings)) as server:
        keyless, oversized = asyncio.run(send(f"{server.url}/v1/segment"))
    assert keyless.status_code == 401 and "X-API-Key" in keyless.json()["detail"]
    assert oversized.status_code == 413 and "max_upload_mb" in oversized.json()["detail"]


def test_a_body_that_does_not_arrive_in_time_is_408_and_closed(
    segmenter: Segmenter, hold_socks: list[socket.socket]
) -> None:
    with served(create_app(segmenter, ServeSettings(body_timeout_s=0.5))) as server:
        sock = open_upload(server.port, key=None, body=PART_HEAD)
        hold_socks.append(sock)
        reply = read_until_closed(sock)
    assert reply.startswith(b"HTTP/1.1 408") and b"body_timeout_s" in reply


def test_an_oversized_chunked_upload_is_413_and_the_rest_is_not_read(
    segmenter: Segmenter, hold_socks: list[socket.socket]
) -> None:
    total = 64 * MB  # far beyond what the two sockets' buffers hold
    with served(create_app(segmenter, ServeSettings(max_upload_mb=1))) as server:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        hold_socks.append(sock)
        head = (
            "POST /v1/segment HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n\r\n"
        )
        sock.sendall(head.encode() + f"{len(PART_HEAD):x}\r\n".encode() + PART_HEAD + b"\r\n")
        chunk = bytes(64 * 1024)
        framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        sent = 0
        refused: Future = Future()

        def send() -> None:
            nonlocal sent
            try:
                while sent < total:
                    sock.sendall(framed)
                    sent += len(chunk)
                sock.sendall(b"0\r\n\r\n")
                refused.set_result(False)
            except OSError:  # the server closed the connection: the rest is never read
                refused.set_result(True)

        sender = threading.Thread(target=send)
        sender.start()
        reply = read_until_closed(sock)
        sender.join(60)
    assert reply.startswith(b"HTTP/1.1 413") and b"max_upload_mb" in reply
    assert refused.result(0) is True and sent < total
