"""`gcnseg serve`: an HTTP API and a web page for a model."""

from __future__ import annotations

import argparse
import os

from gcnseg.cli.arguments import add_device, add_engine


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    serve = subparsers.add_parser("serve", help="an HTTP API and a web page for a model")
    serve.add_argument("--checkpoint", default="pets-default", help="file, run folder or name")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback)")
    serve.add_argument("--port", type=int, default=8000)
    add_engine(serve)
    add_device(serve)
    serve.add_argument("--max-upload-mb", type=float, default=20.0, help="larger uploads get 413")
    serve.add_argument(
        "--max-queue", type=int, default=16, help="requests waiting or running; more get 503"
    )
    serve.add_argument(
        "--max-batch", type=int, default=4, help="requests waiting together share a forward pass"
    )
    serve.add_argument(
        "--memory-budget-mb", type=float, default=6144.0, help="for the images in line; 503 past it"
    )
    serve.add_argument("--body-timeout-s", type=float, default=30.0, help="slower uploads get 408")
    serve.add_argument(
        "--api-key",
        default=os.environ.get("GCNSEG_API_KEY"),
        help="require this key in the X-API-Key header (default: $GCNSEG_API_KEY, else none)",
    )
    serve.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gcnseg.serving.server import serve

    options = ("host", "port", "engine", "device", "max_upload_mb", "max_queue", "max_batch")
    options += ("memory_budget_mb", "body_timeout_s", "cache_dir")
    serve(args.checkpoint, api_key=args.api_key, **{k: getattr(args, k) for k in options})
    return 0
