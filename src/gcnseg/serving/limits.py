"""What a request may cost, each limit checked in one place.

- `ServeSettings`: the limits and the address, checked when built (before any model loads).
- `Gate`, in front of /v1: refuses from the headers alone (401, 415, 413), before the body is
  read; then bounds the body as it arrives, in size (413) and in time (408).
- `Admission`: a request's place in line and its share of the memory budget, taken once its
  body is in (so a slow client holds neither) and held until its reply is made (503 when full).
"""

from __future__ import annotations

import hmac
import io
import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import anyio
from PIL import Image
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gcnseg.data.images import MAX_PIXELS
from gcnseg.errors import GcnsegError
from gcnseg.serving.schemas import error

MB = 1024 * 1024
API_KEY_HEADER = "X-API-Key"
UPLOAD_PATHS = ("/v1/segment", "/v1/overlay")
RETRY_AFTER = {"Retry-After": "1"}

# What one request holds at its peak, per pixel of its image, measured with a 12000² upload
# (3.5 GB above the loaded model for 3 classes) and with 3000² ones of 3 and 21 classes:
# the decoded photo, its decoding and its mask take about 12 bytes; the full-size logits take
# 4 bytes per class, and as much again is kept in reserve (the argmax once held int64 indices
# of the whole image; a CI run's allocator rose to 37 bytes a pixel where this machine rose to
# 31, and to 23 once it ran in bands). An overlay in which every pixel is painted rose by 16
# bytes a pixel beside the photo and mask (its copy, one band of floats, the JPEG encoding;
# 55 when it blended the whole photo in floats at once): 28 in all, whatever the classes.
# A whole test suite's process on a 2-core Xeon (2026-12-07) rose to 37 bytes a pixel for 3
# classes even in bands, past the 36 allowed then: 2 bytes more are kept for the photo.
BYTES_PER_PIXEL = 14
BYTES_PER_PIXEL_PER_CLASS = 8
OVERLAY_BYTES_PER_PIXEL = 28


@dataclass(frozen=True)
class ServeSettings:
    """What `gcnseg serve` (and `serve()` in Python) lets its user set; checked when built."""

    host: str = "127.0.0.1"
    port: int = 8000
    max_upload_mb: float = 20.0  # larger uploads get 413
    max_queue: int = 16  # requests admitted at once (decoding, waiting, running); more get 503
    max_batch: int = 4  # requests that wait together share one forward pass, up to this many
    # Memory the admitted requests' images may take, on top of the loaded model: one 12000²
    # photo for a 3-class model (4944 MB by the cost above), segmented or drawn over, fits, with
    # room for small ones.
    memory_budget_mb: float = 6144.0
    # A body must have arrived within this many seconds of its headers (20 MB needs 5.6 Mbit/s);
    # slower uploads get 408, so a client that sends a few bytes and then waits is let go.
    body_timeout_s: float = 30.0
    api_key: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.port, int) or not 1 <= self.port <= 65535:
            raise GcnsegError(f"port must be an integer from 1 to 65535, got {self.port!r}")
        for name in ("max_queue", "max_batch"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise GcnsegError(f"{name} must be an integer of at least 1, got {value!r}")
        for name in ("max_upload_mb", "memory_budget_mb", "body_timeout_s"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
                raise GcnsegError(f"{name} must be a positive finite number, got {value!r}")
        if not self.host:
            raise GcnsegError("host is empty; give an address to bind, e.g. 127.0.0.1")
        if self.api_key == "":
            raise GcnsegError("api_key is empty; leave it out to serve without a key")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * MB)

    @property
    def memory_budget_bytes(self) -> int:
        return int(self.memory_budget_mb * MB)


def key_matches(expected: str | None, given: str | None) -> bool:
    """True without a key set, else when `given` is the key (in constant time)."""
    return expected is None or hmac.compare_digest((given or "").encode(), expected.encode())


class Gate:
    """ASGI middleware for /v1: the API key, the content type and the upload's size and time."""

    def __init__(self, app: ASGIApp, settings: ServeSettings) -> None:
        self.app = app
        self.settings = settings
        self.too_large = f"upload over the {settings.max_upload_mb:g} MB limit (max_upload_mb)"
        self.too_slow = (
            f"upload not received within {settings.body_timeout_s:g} s of its headers "
            "(body_timeout_s)"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        upload = scope["method"] == "POST" and scope["path"] in UPLOAD_PATHS
        refusal = self._refusal(headers, upload)
        chunked = "content-length" not in headers  # no end to read up to: close instead
        if refusal is not None:
            if upload and chunked:
                refusal.headers["Connection"] = "close"
            await refusal(scope, receive, send)
            return
        if upload:
            body = _Upload(receive, send, self, close_early=chunked)
            receive, send = body.receive, body.send
        await self.app(scope, receive, send)

    def _refusal(self, headers: Headers, upload: bool) -> JSONResponse | None:
        if not key_matches(self.settings.api_key, headers.get(API_KEY_HEADER)):
            message = f"missing or wrong API key (send it in the {API_KEY_HEADER} header)"
            return error(401, message)
        if not upload:
            return None
        content_type = headers.get("content-type", "")
        length = headers.get("content-length", "")
        if not content_type.startswith("multipart/form-data"):
            sent = content_type.split(";")[0] or "no content type"
            message = f"send the image as multipart/form-data in a field named 'image', not {sent}"
            return error(415, message)
        if length.isdigit() and int(length) > self.settings.max_upload_bytes:
            return error(413, self.too_large)
        return None


class _Upload:
    """One upload's body, bounded as it arrives: 413 past the size limit, 408 once its time is
    up (FastAPI re-raises an HTTPException from body parsing as it is).

    A reply that starts before the whole body is in closes the connection after those two, and
    after any error for a body of unknown length (chunked), so the rest is never read. A body
    of declared length is otherwise read to its end and dropped by the server, so the client,
    which often reads only once it has sent everything, gets the reply instead of a reset.
    """

    def __init__(self, receive: Receive, send: Send, gate: Gate, *, close_early: bool) -> None:
        self._receive = receive
        self._send = send
        self.gate = gate
        self.deadline = anyio.current_time() + gate.settings.body_timeout_s
        self.received = 0
        self.done = False
        self.close_early = close_early

    async def receive(self) -> Message:
        if self.done:  # the body is in: what follows (a disconnect) may take any time
            return await self._receive()
        try:
            with anyio.fail_after(max(0.0, self.deadline - anyio.current_time())):
                message = await self._receive()
        except TimeoutError:
            self.close_early = True
            raise HTTPException(408, self.gate.too_slow) from None
        self.received += len(message.get("body", b""))
        if self.received > self.gate.settings.max_upload_bytes:
            self.close_early = True
            raise HTTPException(413, self.gate.too_large)
        self.done = message["type"] != "http.request" or not message.get("more_body", False)
        return message

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start" and self.close_early and not self.done:
            headers = [*message.get("headers", []), (b"connection", b"close")]
            message = {**message, "headers": headers}
        await self._send(message)


def declared_pixels(data: bytes) -> int:
    """Width × height from the image's header; 0 when it has none that decoding would accept
    (decoding then refuses it with the reason)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
    except Exception:  # PIL's many errors for what is not an image; decoding names them
        return 0
    pixels = width * height
    return pixels if pixels <= MAX_PIXELS else 0


def request_bytes(data: bytes, classes: int, *, overlay: bool) -> tuple[int, int]:
    """(pixels, bytes): the image's size from its header and what its request holds at peak."""
    pixels = declared_pixels(data)
    per_pixel = BYTES_PER_PIXEL + BYTES_PER_PIXEL_PER_CLASS * classes
    if overlay:
        per_pixel = max(per_pixel, OVERLAY_BYTES_PER_PIXEL)
    return pixels, len(data) + pixels * per_pixel


class Admission:
    """The requests inside the upload endpoints and the memory reserved for their images."""

    def __init__(self, max_queue: int, budget_bytes: int) -> None:
        self.max_queue = max_queue
        self.budget = budget_bytes
        self.count = 0
        self.reserved = 0

    @contextmanager
    def admit(self, name: str, pixels: int, cost: int) -> Iterator[None]:
        """Hold a place and `cost` bytes of the budget: 413 when the image alone is over the
        budget, 503 with Retry-After when the line or the budget is full right now."""
        budget_mb = self.budget / MB
        if cost > self.budget:
            raise HTTPException(
                413,
                f"{name}: {pixels:,} pixels need about {cost / MB:.0f} MB to segment, over the "
                f"{budget_mb:g} MB memory budget (memory_budget_mb)",
            )
        if self.count >= self.max_queue:
            message = f"busy: {self.count} requests in line (max_queue {self.max_queue})"
            raise HTTPException(503, message, RETRY_AFTER)
        if self.reserved + cost > self.budget:
            message = (
                f"busy: the images in line hold {self.reserved / MB:.0f} of the {budget_mb:g} MB "
                f"memory budget and {name} needs {cost / MB:.0f} MB (memory_budget_mb)"
            )
            raise HTTPException(503, message, RETRY_AFTER)
        self.count += 1
        self.reserved += cost
        try:
            yield
        finally:
            self.count -= 1
            self.reserved -= cost
