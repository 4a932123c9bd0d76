"""A loopback HTTP server for the download tests: Range support, a request log, injected failures."""

from __future__ import annotations

import http.server
import re
import threading
from pathlib import Path


class LoopbackServer(http.server.ThreadingHTTPServer):
    """Serves the files under `root` on 127.0.0.1 and records (path, Range, status) per request.

    Knobs for the download tests: `honour_range` (answer `Range: bytes=N-` with 206, else 200),
    `cut_after` (send that many body bytes, then hang up) and `fail_with` (statuses to answer the
    next requests with, one each, before serving normally again).
    """

    def __init__(self, root: Path) -> None:
        super().__init__(("127.0.0.1", 0), _LoopbackHandler)
        self.root = root
        self.seen: list[tuple[str, str | None, int]] = []
        self.honour_range = True
        self.cut_after: int | None = None
        self.fail_with: list[int] = []
        self._thread = threading.Thread(target=self.serve_forever, args=(0.01,), daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    @property
    def paths(self) -> list[str]:
        return [path for path, _, _ in self.seen]

    def close(self) -> None:
        """Stop serving and free the port; safe to call twice (a test may close it early)."""
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=5)


class _LoopbackHandler(http.server.BaseHTTPRequestHandler):
    server: LoopbackServer
    timeout = 10  # seconds a stalled client may hold a handler thread

    def do_GET(self) -> None:
        if self.server.fail_with:
            return self._reply(self.server.fail_with.pop(0), b"", {})
        file = self.server.root / self.path.lstrip("/")
        if not file.is_file():
            return self._reply(404, b"", {})
        data = file.read_bytes()
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if match is None or not self.server.honour_range:
            return self._reply(200, data, {"Content-Length": str(len(data))})
        start = int(match.group(1))
        if start >= len(data):
            return self._reply(416, b"", {"Content-Range": f"bytes */{len(data)}"})
        content_range = f"bytes {start}-{len(data) - 1}/{len(data)}"
        headers = {"Content-Range": content_range, "Content-Length": str(len(data) - start)}
        return self._reply(206, data[start:], headers)

    def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.server.seen.append((self.path, self.headers.get("Range"), status))
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body[: self.server.cut_after])

    def log_message(self, format: str, *args: object) -> None:
        """Keep pytest output clean."""
