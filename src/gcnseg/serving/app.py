"""The HTTP API and the web page, over one Segmenter (the same masks as `gcnseg predict`).

FastAPI rather than bare Starlette: a 100 kB multipart upload round trip measured 1.6-2.3 ms with
FastAPI and 1.8-3.2 ms with Starlette (uvicorn, loopback, a shared 2-core AMD EPYC: the noise is
larger than the difference), under 5% of one forward pass, and FastAPI writes the OpenAPI schema
and /docs from the handlers; fastapi-offline serves /docs without a CDN.

A request's way: `Gate` (415, 413 and 503 from the headers, before the body is read; 413 as it
arrives) -> the API key (401) -> decode in a codec thread (400, 415) -> the one inference thread
(`InferenceWorker`) -> encode in a codec thread. Errors are JSON `{"detail": "one line"}`.
"""

import asyncio
import base64
import hmac
import logging
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import anyio
import numpy as np
from fastapi import APIRouter, FastAPI, File, Query, Request, Security, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import APIKeyHeader
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gcnseg.data.images import EXTENSION_FORMATS, UnsupportedFormat, decode_image
from gcnseg.errors import GcnsegError
from gcnseg.inference.segmenter import Segmenter
from gcnseg.viz.draw import jpeg_bytes, mask_png_bytes, overlay

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
MB = 1024 * 1024
FORMATS = frozenset(EXTENSION_FORMATS.values()) | {"MPO"}  # MPO: the JPEGs of many cameras
UPLOAD_PATHS = ("/v1/segment", "/v1/overlay")
API_KEY_HEADER = "X-API-Key"
# Threads that decode uploads and encode replies, beside the inference thread: each holds a
# decoded photo (up to 432 MB for 12000²), and the machines this runs on have 2-16 cores.
CODEC_THREADS = 2
T = TypeVar("T")


@dataclass(frozen=True)
class Settings:
    """What `gcnseg serve` lets its user set; checked when built."""

    max_upload_mb: float = 20.0
    max_queue: int = 16  # requests waiting or running at once; more get 503
    max_batch: int = 4  # requests that wait together share one forward pass, up to this many
    api_key: str | None = None

    def __post_init__(self) -> None:
        if not self.max_upload_mb > 0:
            raise GcnsegError(f"--max-upload-mb must be positive, got {self.max_upload_mb}")
        for name in ("max_queue", "max_batch"):
            if getattr(self, name) < 1:
                raise GcnsegError(f"--{name.replace('_', '-')} must be at least 1")
        if self.api_key == "":
            raise GcnsegError("--api-key is empty; leave it out to serve without a key")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * MB)


@dataclass
class Result:
    """One request's mask and what it cost in the inference thread."""

    mask: np.ndarray
    queued_s: float
    inference_s: float  # the whole forward pass of the batch it was part of
    batch: int


class InferenceWorker:
    """The one thread that runs the model, so forward passes never overlap; requests waiting
    together run as one batch of up to `max_batch` (it never waits for a batch to fill, so a
    lone request costs the same as without batching)."""

    def __init__(self, segmenter: Segmenter, max_batch: int) -> None:
        self.segmenter = segmenter
        self.max_batch = max_batch
        self._jobs: queue.SimpleQueue[tuple[np.ndarray, float, Future[Result]] | None]
        self._jobs = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="gcnseg-inference", daemon=True)
        self._thread.start()

    def submit(self, image: np.ndarray) -> Future[Result]:
        future: Future[Result] = Future()
        self._jobs.put((image, time.perf_counter(), future))
        return future

    def close(self) -> None:
        """Finish the jobs already submitted, then stop the thread."""
        self._jobs.put(None)
        self._thread.join()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            batch = [job]
            while len(batch) < self.max_batch:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    self._jobs.put(None)  # stop after this batch
                    break
                batch.append(job)
            # A request whose client went away was cancelled: skip it, never set its result.
            self._predict([job for job in batch if job[2].set_running_or_notify_cancel()])

    def _predict(self, batch: list[tuple[np.ndarray, float, Future[Result]]]) -> None:
        if not batch:
            return
        start = time.perf_counter()
        try:
            masks = self.segmenter.predict([image for image, _, _ in batch])
        except Exception as exc:  # handed to every request of the batch; the thread stays up
            for _, _, future in batch:
                future.set_exception(exc)
            return
        took = time.perf_counter() - start
        for (_, queued, future), mask in zip(batch, masks, strict=True):
            future.set_result(Result(mask, start - queued, took, len(batch)))


class Line:
    """How many requests are inside the upload endpoints (waiting or running), and the limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0


class Gate:
    """ASGI middleware for the upload endpoints: refuses what is not multipart (415), what says
    it is over the upload limit (413) and what would overfill the line (503) from the headers,
    before the body is read; a body without a length is counted as it arrives (413)."""

    def __init__(self, app: ASGIApp, line: Line, max_bytes: int, max_mb: float) -> None:
        self.app = app
        self.line = line
        self.max_bytes = max_bytes
        self.too_large = f"upload over the {max_mb:g} MB limit (--max-upload-mb)"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"] not in UPLOAD_PATHS
        ):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        content_type = headers.get("content-type", "")
        length = headers.get("content-length", "")
        if not content_type.startswith("multipart/form-data"):
            sent = content_type.split(";")[0] or "no content type"
            message = f"send the image as multipart/form-data in a field named 'image', not {sent}"
            response = error(415, message)
        elif length.isdigit() and int(length) > self.max_bytes:
            response = error(413, self.too_large)
        elif self.line.count >= self.line.limit:
            message = f"busy: {self.line.count} requests in line (--max-queue {self.line.limit})"
            response = error(503, message, {"Retry-After": "1"})
        else:
            self.line.count += 1
            try:
                await self.app(scope, self._counted(receive), send)
            finally:
                self.line.count -= 1
            return
        await response(scope, receive, send)

    def _counted(self, receive: Receive) -> Receive:
        """`receive` that raises 413 once the body passes the limit (FastAPI re-raises an
        HTTPException from body parsing as it is)."""
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise HTTPException(413, self.too_large)
            return message

        return counted


def error(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


class ClassShare(BaseModel):
    index: int
    name: str
    color: list[int]
    share: float  # of the image's pixels, 0-1
    background: bool = False  # the page leaves it unpainted


class Segmentation(BaseModel):
    width: int
    height: int
    model: str
    engine: str
    classes: list[ClassShare]
    timings_ms: dict[str, float]  # decode, queue, inference (of the whole batch), encode, total
    batch: int  # requests that shared the forward pass
    mask_png: str  # base64 palette PNG: pixel values are class indices


class Error(BaseModel):
    detail: str


ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": Error, "description": text}
    for status, text in [
        (400, "not an image, corrupt, truncated, or too many pixels (a decompression bomb)"),
        (401, f"missing or wrong {API_KEY_HEADER} (when the server has --api-key)"),
        (413, "upload over the limit (--max-upload-mb)"),
        (415, "not multipart/form-data, or an image format that is not accepted"),
        (503, "the line is full (--max-queue); retry after Retry-After seconds"),
    ]
}


class Service:
    """The Segmenter, its inference thread and the codec threads, started with the app."""

    def __init__(self, segmenter: Segmenter, settings: Settings) -> None:
        self.segmenter = segmenter
        self.settings = settings
        self.line = Line(settings.max_queue)
        self._worker: InferenceWorker | None = None
        self._codec: anyio.CapacityLimiter | None = None

    def start(self) -> None:
        self._worker = InferenceWorker(self.segmenter, self.settings.max_batch)
        self._codec = anyio.CapacityLimiter(CODEC_THREADS)

    def stop(self) -> None:
        if self._worker is not None:
            self._worker.close()

    async def in_thread(self, func: Callable[..., T], *args: Any) -> tuple[T, float]:
        """`func(*args)` in a codec thread, and the seconds it took."""
        start = time.perf_counter()
        value = await anyio.to_thread.run_sync(func, *args, limiter=self._codec)
        return value, time.perf_counter() - start

    async def decode(self, upload: UploadFile) -> tuple[np.ndarray, float]:
        data = await upload.read()
        try:
            return await self.in_thread(decode_image, data, upload.filename or "upload", FORMATS)
        except UnsupportedFormat as exc:
            raise HTTPException(415, str(exc)) from None
        except GcnsegError as exc:
            raise HTTPException(400, str(exc)) from None

    async def segment(self, image: np.ndarray) -> Result:
        assert self._worker is not None, "the app's lifespan starts the worker"
        return await asyncio.wrap_future(self._worker.submit(image))


def timings(started: float, decode_s: float, result: Result, encode_s: float) -> dict[str, float]:
    parts = {
        "decode": decode_s,
        "queue": result.queued_s,
        "inference": result.inference_s,
        "encode": encode_s,
        "total": time.perf_counter() - started,
    }
    return {name: round(seconds * 1000, 1) for name, seconds in parts.items()}


def server_timing(values: dict[str, float]) -> dict[str, str]:
    """The standard Server-Timing header, which browsers' developer tools show."""
    return {"Server-Timing": ", ".join(f"{name};dur={ms}" for name, ms in values.items())}


def class_shares(mask: np.ndarray, segmenter: Segmenter) -> list[ClassShare]:
    names = segmenter.classes.names
    counts = np.bincount(mask.ravel(), minlength=len(names))[: len(names)]
    return [
        ClassShare(
            index=i,
            name=name,
            color=list(color),
            share=round(int(n) / mask.size, 6),
            background=i == segmenter.classes.background,
        )
        for i, (name, color, n) in enumerate(zip(names, segmenter.colors, counts, strict=True))
    ]


def create_app(segmenter: Segmenter, settings: Settings | None = None) -> FastAPI:
    """The ASGI app: the API under /v1, the page at /, /healthz, and the docs at /docs."""
    settings = settings or Settings()
    service = Service(segmenter, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.start()
        try:
            yield
        finally:
            service.stop()

    from gcnseg import __version__

    app = FastAPIOffline(
        title="gcnseg",
        version=__version__,
        description="Semantic segmentation with Global Convolutional Networks: upload a photo, "
        "get its mask, the share of each class, or an overlay.",
        lifespan=lifespan,
    )
    limit = settings.max_upload_bytes
    app.add_middleware(Gate, line=service.line, max_bytes=limit, max_mb=settings.max_upload_mb)
    api_key = APIKeyHeader(
        name=API_KEY_HEADER, auto_error=False, description="needed when serve has --api-key"
    )

    async def check_key(key: Annotated[str | None, Security(api_key)]) -> None:
        expected = settings.api_key
        if expected is not None and not hmac.compare_digest(
            (key or "").encode(), expected.encode()
        ):
            raise HTTPException(
                401, f"missing or wrong API key (send it in the {API_KEY_HEADER} header)"
            )

    api = APIRouter(prefix="/v1", dependencies=[Security(check_key)], responses=ERRORS)
    upload = File(description="the photo: JPEG, PNG, GIF, BMP, TIFF or WebP")

    @api.post(
        "/segment", response_model=Segmentation, responses={200: {"content": {"image/png": {}}}}
    )
    async def segment(
        image: Annotated[UploadFile, upload],
        response: Response,
        format: Annotated[
            Literal["json", "png"], Query(description="png: the mask PNG itself, not JSON")
        ] = "json",
    ) -> Segmentation | Response:
        """The mask of one photo: JSON with the share of each class, or the palette PNG."""
        started = time.perf_counter()
        decoded, decode_s = await service.decode(image)
        result = await service.segment(decoded)
        png, encode_s = await service.in_thread(mask_png_bytes, result.mask, segmenter.classes)
        spent = timings(started, decode_s, result, encode_s)
        if format == "png":
            return Response(png, media_type="image/png", headers=server_timing(spent))
        response.headers.update(server_timing(spent))
        height, width = result.mask.shape
        return Segmentation(
            width=width,
            height=height,
            model=segmenter.model_name,
            engine=segmenter.engine_name,
            classes=class_shares(result.mask, segmenter),
            timings_ms=spent,
            batch=result.batch,
            mask_png=base64.b64encode(png).decode("ascii"),
        )

    @api.post("/overlay", response_class=Response, responses={200: {"content": {"image/jpeg": {}}}})
    async def overlay_jpeg(
        image: Annotated[UploadFile, upload],
        alpha: Annotated[
            float, Query(ge=0, le=1, description="opacity of the class colours")
        ] = 0.5,
        legend: Annotated[bool, Query(description="draw a colour key in the corner")] = True,
    ) -> Response:
        """The photo with its classes painted over it, as a JPEG."""
        started = time.perf_counter()
        decoded, decode_s = await service.decode(image)
        result = await service.segment(decoded)

        def draw() -> bytes:
            painted = overlay(decoded, result.mask, segmenter.classes, alpha=alpha, legend=legend)
            return jpeg_bytes(painted)

        jpeg, encode_s = await service.in_thread(draw)
        spent = timings(started, decode_s, result, encode_s)
        return Response(jpeg, media_type="image/jpeg", headers=server_timing(spent))

    @api.get("/model")
    async def model() -> dict[str, Any]:
        """The model: name, classes, colours, eval size, engine (and why), version; the limits."""
        limits = {
            "max_upload_mb": settings.max_upload_mb,
            "max_queue": settings.max_queue,
            "max_batch": settings.max_batch,
            "formats": sorted(FORMATS),
        }
        return {**segmenter.describe(), "limits": limits}

    app.include_router(api)

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        """Liveness, and how full the line is (no API key needed)."""
        return {"status": "ok", "in_line": service.line.count, "max_queue": settings.max_queue}

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail), exc.headers)

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> JSONResponse:
        # A bug, not the upload's fault: JSON like every error; uvicorn logs the traceback.
        return error(500, f"internal error ({type(exc).__name__}); the server log has the details")

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for item in exc.errors():
            where = ".".join(str(part) for part in item["loc"][1:]) or str(item["loc"][0])
            problems.append(f"{where}: {item['msg']}")
        detail = "; ".join(problems)
        if any(item["loc"][-1] == "image" for item in exc.errors()):
            detail += " (send the photo as a multipart file field named 'image')"
        return error(400, detail)

    return app
