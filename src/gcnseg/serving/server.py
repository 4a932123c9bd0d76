"""Run the app with uvicorn: one process, one model, SIGTERM / Ctrl-C finish what is in flight."""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path

from gcnseg.errors import GcnsegError
from gcnseg.extras import install_hint

log = logging.getLogger(__name__)

# uvicorn's graceful shutdown waits for in-flight requests; past this it cancels them, so a
# stuck request cannot keep a stopped server alive. A 16-deep line of 500 ms passes fits.
SHUTDOWN_GRACE_S = 30


def serve(
    checkpoint: str | Path = "pets-default",
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    engine: str = "auto",
    device: str = "auto",
    max_upload_mb: float = 20.0,
    max_queue: int = 16,
    max_batch: int = 4,
    api_key: str | None = None,
) -> None:
    """Load the model, then serve until SIGTERM or SIGINT (both finish in-flight requests)."""
    try:
        import uvicorn

        from gcnseg.serving.app import Settings, create_app
    except ImportError as exc:
        raise GcnsegError(
            f"gcnseg serve needs the serve extra ({exc.name} is missing): {install_hint('serve')}"
        ) from None
    from gcnseg.inference.segmenter import load

    settings = Settings(
        max_upload_mb=max_upload_mb, max_queue=max_queue, max_batch=max_batch, api_key=api_key
    )
    segmenter = load(checkpoint, engine=engine, device=device)
    if api_key is None and not _is_loopback(host):
        log.warning("serving on %s without --api-key: anyone who can reach it can use it", host)
    config = uvicorn.Config(
        create_app(segmenter, settings),
        host=host,
        port=port,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
        log_config=None,  # keep gcnseg's logging set-up; uvicorn's loggers propagate to it
    )
    # Its start-up, access and shutdown lines at gcnseg's verbosity (-q: warnings only).
    logging.getLogger("uvicorn").setLevel(logging.getLogger("gcnseg").getEffectiveLevel())
    shown = f"[{host}]" if ":" in host else host
    log.info(
        "serving %s (engine %s) on http://%s:%d",
        segmenter.model_name,
        segmenter.engine_name,
        shown,
        port,
    )
    uvicorn.Server(config).run()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name
        return False
