"""Run the app with uvicorn: one process, one model, SIGTERM / Ctrl-C finish what is in flight."""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path
from typing import Any

from gcnseg.errors import GcnsegError
from gcnseg.extras import install_hint
from gcnseg.io.cache import CacheDir

log = logging.getLogger(__name__)

# uvicorn's graceful shutdown waits for in-flight requests; past this it cancels them, so a
# stuck request cannot keep a stopped server alive. A 16-deep line of 500 ms passes fits.
SHUTDOWN_GRACE_S = 30


def serve(
    checkpoint: str | Path = "pets-default",
    *,
    engine: str = "auto",
    device: str = "auto",
    cache_dir: CacheDir = None,
    **settings: Any,
) -> None:
    """Load the model, then serve until SIGTERM or SIGINT (both finish in-flight requests).

    `settings`: the fields of `ServeSettings` (host, port, max_upload_mb, max_queue, max_batch,
    memory_budget_mb, body_timeout_s, api_key), checked before the model loads. `cache_dir`: see
    `gcnseg.io.cache`.
    """
    try:
        import uvicorn

        from gcnseg.serving.app import create_app
        from gcnseg.serving.limits import ServeSettings
    except ImportError as exc:
        raise GcnsegError(
            f"gcnseg serve needs the serve extra ({exc.name} is missing): {install_hint('serve')}"
        ) from None
    from gcnseg.inference.segmenter import load

    limits = ServeSettings(**settings)
    host, port = limits.host, limits.port
    segmenter = load(checkpoint, engine=engine, device=device, cache_dir=cache_dir)
    if limits.api_key is None and not _is_loopback(host):
        log.warning("serving on %s without --api-key: anyone who can reach it can use it", host)
    config = uvicorn.Config(
        create_app(segmenter, limits),
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
