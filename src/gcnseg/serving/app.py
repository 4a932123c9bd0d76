"""The ASGI app over one Segmenter (the same masks as `gcnseg predict`): wiring only.

FastAPI rather than bare Starlette: it writes the OpenAPI schema and /docs from the handlers,
at a cost within the noise of one forward pass; fastapi-offline serves /docs without a CDN.

A request's way: `limits.Gate` (401, 415 and 413 from the headers, closing the connection;
413 and 408 as the body arrives) -> `limits.Admission` once the body is in (413 for an image
over the memory budget, 503 when the line or the budget is full) -> decode in a codec thread
(400, 415) -> the one inference thread (`worker.InferenceWorker`) -> encode in a codec thread.
Errors are JSON `{"detail": "one line"}`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException

from gcnseg._version import __version__
from gcnseg.inference.segmenter import Segmenter
from gcnseg.serving import routes
from gcnseg.serving.limits import Gate, ServeSettings
from gcnseg.serving.schemas import error
from gcnseg.serving.worker import Service


def create_app(segmenter: Segmenter, settings: ServeSettings | None = None) -> FastAPI:
    """The ASGI app: the API under /v1, the page at /, /healthz, and the docs at /docs."""
    settings = settings or ServeSettings()
    app = FastAPIOffline(
        title="gcnseg",
        version=__version__,
        description="Semantic segmentation with Global Convolutional Networks: upload a photo, "
        "get its mask, the share of each class, or an overlay.",
        lifespan=_lifespan,
    )
    app.state.service = Service(segmenter, settings)
    app.add_middleware(Gate, settings=settings)
    app.include_router(routes.api)
    app.include_router(routes.pages)
    app.mount("/static", StaticFiles(directory=routes.STATIC), name="static")
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(Exception, _crashed)
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    service: Service = app.state.service
    service.start()
    try:
        yield
    finally:
        service.stop()


async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    return error(exc.status_code, str(exc.detail), exc.headers)


async def _crashed(request: Request, exc: Exception) -> JSONResponse:
    # A bug, not the upload's fault: JSON like every error; uvicorn logs the traceback.
    return error(500, f"internal error ({type(exc).__name__}); the server log has the details")


async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    problems = []
    for item in exc.errors():
        where = ".".join(str(part) for part in item["loc"][1:]) or str(item["loc"][0])
        problems.append(f"{where}: {item['msg']}")
    detail = "; ".join(problems)
    if any(item["loc"][-1] == "image" for item in exc.errors()):
        detail += " (send the photo as a multipart file field named 'image')"
    return error(400, detail)
