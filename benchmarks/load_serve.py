"""Load test of `gcnseg serve`: loopback only, bounded in count and time, stops by itself.

    .venv/bin/python benchmarks/load_serve.py                # 500 requests at concurrency 16
    .venv/bin/python benchmarks/load_serve.py --requests 40  # a quick check that it works

1. Single stream: `Segmenter.predict` on the same photos, one at a time, in this process (img/s).
2. `gcnseg serve` on a free 127.0.0.1 port (a subprocess), warmed up at full concurrency.
3. Clean: N uploads at concurrency C: errors, p50/p95 latency, img/s, RSS after.
4. Hostile: N requests of which a share (default 20%) are hostile, in turn a truncated JPEG, a
   text file, a PNG claiming 30000² pixels and an upload 1 MB over the limit: each must get its
   4xx, every photo its 200, and the server must still answer /healthz; RSS after.
5. Slow clients: 16 connections that send an upload's headers and a few body bytes, then wait
   or drip a byte a second (half without the API key), reconnecting when the server closes
   them, beside 200 good uploads that must all get 200; what the slow ones got back.
6. SIGTERM; a markdown table, and JSON with --json. Exits 1 when a check of correctness fails
   (the speed and memory targets are reported, not enforced: they need an idle machine).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import secrets
import signal
import socket
import struct
import subprocess
import sys
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx2 as httpx
import numpy as np
from PIL import Image

from gcnseg.data.images import decode_image
from gcnseg.errors import GcnsegError
from gcnseg.inference.segmenter import load
from gcnseg.io.atomic import write_json
from gcnseg.tools.bench.tables import describe_cpu

SAMPLE = Path(__file__).resolve().parents[1].parent / "shared/data/oxford-pets-sample/images"
MB = 1024 * 1024
HOSTILE_STATUS = {"truncated": 400, "text": 400, "bomb": 400, "oversized": 413}


@dataclass
class Phase:
    name: str
    latencies_s: list[float] = field(default_factory=list)  # of the photos that got 200
    wrong: list[str] = field(default_factory=list)  # what did not get its expected status
    statuses: dict[str, dict[int, int]] = field(default_factory=dict)  # kind -> status -> count
    wall_s: float = 0.0
    rss_before_mb: float = 0.0
    rss_after_mb: float = 0.0
    slow_clients: dict[str, int] = field(default_factory=dict)  # what they got -> count
    in_line_slow_only: int | None = None  # /healthz's in_line with only the slow clients on

    def record(self, kind: str, status: int, expected: int, took_s: float, detail: str) -> None:
        counts = self.statuses.setdefault(kind, {})
        counts[status] = counts.get(status, 0) + 1
        if status != expected:
            self.wrong.append(f"{kind}: {status} instead of {expected} ({detail[:120]})")
        elif kind == "photo":
            self.latencies_s.append(took_s)

    def percentile_ms(self, q: float) -> float:
        lat = sorted(self.latencies_s)
        return 1000 * lat[min(len(lat) - 1, int(q * len(lat)))] if lat else float("nan")

    def summary(self) -> dict:
        return {
            "phase": self.name,
            "photos_ok": len(self.latencies_s),
            "wrong": len(self.wrong),
            "wrong_examples": self.wrong[:5],
            "statuses": {k: {str(s): n for s, n in v.items()} for k, v in self.statuses.items()},
            "p50_ms": round(self.percentile_ms(0.5), 1),
            "p95_ms": round(self.percentile_ms(0.95), 1),
            "img_per_s": round(len(self.latencies_s) / self.wall_s, 3) if self.wall_s else 0.0,
            "rss_before_mb": round(self.rss_before_mb, 1),
            "rss_after_mb": round(self.rss_after_mb, 1),
            "slow_clients": self.slow_clients,
            "in_line_slow_only": self.in_line_slow_only,
        }


def png_claiming(width: int, height: int) -> bytes:
    """A PNG of a few hundred bytes whose header claims width × height: a decompression bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    body = chunk(b"IDAT", zlib.compress(b"\0" * 4096))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + body + chunk(b"IEND", b"")


def photos(folder: Path, count: int) -> list[tuple[str, bytes]]:
    """`count` readable JPEGs from the sample, or generated ones on a clone without it."""
    found = []
    for path in sorted(folder.glob("*.jpg")) if folder.is_dir() else []:
        try:
            decode_image(path.read_bytes(), path.name)
        except GcnsegError:  # the sample has a few broken files on purpose
            continue
        found.append((path.name, path.read_bytes()))
        if len(found) == count:
            return found
    rng = np.random.default_rng(0)
    while len(found) < count:
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (375, 500, 3), dtype=np.uint8)).save(buffer, "JPEG")
        found.append((f"generated_{len(found)}.jpg", buffer.getvalue()))
    return found


def hostile(kind: str, photo: bytes, limit_mb: float) -> tuple[str, bytes]:
    if kind == "truncated":
        return "truncated.jpg", photo[: len(photo) // 2]
    if kind == "text":
        return "notes.txt", b"not a photo\n" * 100
    if kind == "bomb":
        return "bomb.png", png_claiming(30_000, 30_000)
    return "oversized.jpg", b"\xff\xd8" + bytes(int((limit_mb + 1) * MB))


def single_stream(checkpoint: str, engine: str, images: list[np.ndarray], rounds: int) -> dict:
    segmenter = load(checkpoint, engine=engine, device="cpu")
    segmenter.predict(images[0])  # warm-up
    start = time.perf_counter()
    for _ in range(rounds):
        for image in images:
            segmenter.predict(image)
    seconds = time.perf_counter() - start
    return {"engine": segmenter.engine_name, "img_per_s": rounds * len(images) / seconds}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def run_phase(
    phase: Phase,
    client: httpx.AsyncClient,
    url: str,
    pictures: list[tuple[str, bytes]],
    requests: int,
    concurrency: int,
    hostile_share: float,
    limit_mb: float,
) -> None:
    every = round(1 / hostile_share) if hostile_share > 0 else 0
    kinds = list(HOSTILE_STATUS)
    jobs: asyncio.Queue[int] = asyncio.Queue()
    for i in range(requests):
        jobs.put_nowait(i)

    async def worker() -> None:
        while not jobs.empty():
            i = jobs.get_nowait()
            name, data = pictures[i % len(pictures)]
            kind, expected = "photo", 200
            if every and i % every == every - 1:
                kind = kinds[(i // every) % len(kinds)]
                name, data = hostile(kind, data, limit_mb)
                expected = HOSTILE_STATUS[kind]
            start = time.perf_counter()
            try:
                reply = await client.post(url, files={"image": (name, data, "image/jpeg")})
                status, detail = reply.status_code, reply.text
            except httpx.TransportError as exc:
                status, detail = 0, f"{type(exc).__name__}: {exc}"
            phase.record(kind, status, expected, time.perf_counter() - start, detail)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    phase.wall_s = time.perf_counter() - start


async def slow_client(
    port: int, key: str | None, drip: bool, stop: asyncio.Event, got: Counter
) -> None:
    """Headers and a few body bytes, then wait (or drip a byte a second) until the server
    answers and closes; reconnect, until `stop`."""
    head = (
        f"POST /v1/segment HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 1000000\r\n"
        "Content-Type: multipart/form-data; boundary=slow\r\n"
    )
    if key is not None:
        head += f"X-API-Key: {key}\r\n"
    while not stop.is_set():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(head.encode() + b"\r\n--slow\r\nContent-Dis")
        outcome = "still open at the end"
        try:
            await writer.drain()
            while not stop.is_set():
                try:
                    reply = await asyncio.wait_for(reader.read(4096), 1.0)
                except TimeoutError:  # not TimeoutError itself before Python 3.11
                    if drip:
                        writer.write(b"x")
                        await writer.drain()
                    continue
                outcome = reply.split(b"\r\n")[0].decode(errors="replace") or "closed"
                break
        except OSError as exc:
            outcome = type(exc).__name__
        writer.close()
        got[outcome] += 1
        if not stop.is_set():
            await asyncio.sleep(1.0)  # refused at once (no key): not a tight reconnect loop


async def slow_phase(
    args: argparse.Namespace,
    server: subprocess.Popen,
    client: httpx.AsyncClient,
    base: str,
    pictures: list[tuple[str, bytes]],
) -> Phase:
    phase = Phase("slow clients", rss_before_mb=rss_mb(server.pid))
    port = int(base.rsplit(":", 1)[1])
    stop, got = asyncio.Event(), Counter()
    slow = [
        asyncio.create_task(slow_client(port, args.key if i % 2 else None, i % 4 >= 2, stop, got))
        for i in range(args.slow_clients)
    ]
    await asyncio.sleep(3)  # all connected and waiting
    phase.in_line_slow_only = (await client.get(f"{base}/healthz")).json()["in_line"]
    try:
        await run_phase(
            phase,
            client,
            f"{base}/v1/segment",
            pictures,
            args.slow_requests,
            args.concurrency,
            0.0,
            args.max_upload_mb,
        )
    finally:
        stop.set()
        await asyncio.gather(*slow)
    phase.rss_after_mb = rss_mb(server.pid)
    phase.slow_clients = dict(got)
    if phase.in_line_slow_only:
        phase.wrong.append(f"{phase.in_line_slow_only} slow clients held places in line")
    return phase


async def load_test(
    args: argparse.Namespace,
    server: subprocess.Popen,
    base: str,
    pictures: list[tuple[str, bytes]],
) -> list[Phase]:
    limits = httpx.Limits(
        max_connections=args.concurrency, max_keepalive_connections=args.concurrency
    )
    headers = {"X-API-Key": args.key}
    async with httpx.AsyncClient(
        timeout=args.request_timeout, limits=limits, headers=headers
    ) as client:
        url = f"{base}/v1/segment"
        # At full concurrency, so every batch size has run (ONNX Runtime's arena grows per
        # shape) before the RSS that the phases are measured from.
        warm = Phase("warm-up")
        await run_phase(
            warm,
            client,
            url,
            pictures,
            2 * args.concurrency,
            args.concurrency,
            0.0,
            args.max_upload_mb,
        )
        phases = []
        for name, share in (("clean", 0.0), ("hostile", args.hostile)):
            phase = Phase(name, rss_before_mb=rss_mb(server.pid))
            await run_phase(
                phase,
                client,
                url,
                pictures,
                args.requests,
                args.concurrency,
                share,
                args.max_upload_mb,
            )
            phase.rss_after_mb = rss_mb(server.pid)
            health = await client.get(f"{base}/healthz")
            if health.status_code != 200:
                phase.wrong.append(f"/healthz answered {health.status_code} after the phase")
            phases.append(phase)
        if args.slow_clients:
            phases.append(await slow_phase(args, server, client, base, pictures))
        return phases


def start_server(args: argparse.Namespace, port: int, log: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "gcnseg", "-q", "serve", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--checkpoint", args.checkpoint, "--engine", args.engine]
    command += ["--max-upload-mb", str(args.max_upload_mb), "--max-batch", str(args.max_batch)]
    command += ["--max-queue", str(args.concurrency), "--api-key", args.key]
    if args.body_timeout_s is not None:
        command += ["--body-timeout-s", str(args.body_timeout_s)]
    with log.open("w") as sink:
        return subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)


def wait_ready(
    server: subprocess.Popen, base: str, log: Path, key: str, seconds: float = 300
) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"gcnseg serve exited with {server.returncode}:\n{log.read_text()}")
        try:
            return httpx.get(f"{base}/v1/model", headers={"X-API-Key": key}, timeout=2).json()
        except httpx.TransportError:
            time.sleep(0.3)
    sys.exit(f"gcnseg serve not ready after {seconds:.0f} s:\n{log.read_text()}")


def table(phases: list[Phase], single: dict, model: dict) -> str:
    rows = [
        "| phase | photos ok | wrong status | p50 ms | p95 ms | served img/s | single-stream img/s "
        "| served / single | RSS before → after (MB) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for phase in phases:
        s = phase.summary()
        ratio = s["img_per_s"] / single["img_per_s"] if s["img_per_s"] else 0
        rows.append(
            f"| {phase.name} | {s['photos_ok']} | {s['wrong']} | {s['p50_ms']:.0f} | "
            f"{s['p95_ms']:.0f} | {s['img_per_s']:.2f} | {single['img_per_s']:.2f} | "
            f"{ratio:.2f} | {s['rss_before_mb']:.0f} → {s['rss_after_mb']:.0f} |"
        )
    for phase in phases:
        if phase.slow_clients:
            got = ", ".join(f"{n}× {what}" for what, n in sorted(phase.slow_clients.items()))
            rows.append(
                f"\n{phase.name}: in line with only them connected {phase.in_line_slow_only}; "
                f"they got {got}"
            )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    rows.append(
        f"\n{model['name']}, engine {model['engine']}, max batch {model['limits']['max_batch']}; "
        f"{describe_cpu()}, {os.cpu_count()} logical CPUs; load average {load} (after the run)"
    )
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=500, help="per phase")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--hostile", type=float, default=0.2, help="share in the second phase")
    parser.add_argument("--checkpoint", default="pets-default")
    parser.add_argument("--engine", default="auto")
    parser.add_argument("--max-batch", type=int, default=4, help="passed to gcnseg serve")
    parser.add_argument("--max-upload-mb", type=float, default=20.0)
    parser.add_argument("--slow-clients", type=int, default=16, help="0: no slow-client phase")
    parser.add_argument("--slow-requests", type=int, default=200, help="good ones beside them")
    parser.add_argument("--body-timeout-s", type=float, help="passed to gcnseg serve")
    parser.add_argument("--images", type=Path, default=SAMPLE)
    parser.add_argument("--photos", type=int, default=16, help="distinct photos, sent in turn")
    parser.add_argument("--single-rounds", type=int, default=3, help="passes over the photos")
    parser.add_argument("--request-timeout", type=float, default=120.0)
    parser.add_argument("--time-limit", type=float, default=1200.0, help="stop after (seconds)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    if not 0 <= args.hostile < 1:
        parser.error("--hostile must be in [0, 1)")
    args.key = secrets.token_urlsafe(16)  # the server asks for it: keyless slow clients get 401

    pictures = photos(args.images, args.photos)
    decoded = [decode_image(data, name) for name, data in pictures]
    single = single_stream(args.checkpoint, args.engine, decoded, args.single_rounds)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"gcnseg_load_serve_{port}.log"
    server = start_server(args, port, log)
    try:
        model = wait_ready(server, base, log, args.key)
        try:
            phases = asyncio.run(
                asyncio.wait_for(load_test(args, server, base, pictures), args.time_limit)
            )
        except TimeoutError:
            print(f"stopped after --time-limit {args.time_limit:.0f} s", file=sys.stderr)
            return 1
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
    print(table(phases, single, model))
    summaries = [p.summary() for p in phases]
    clean = summaries[0]
    targets = {
        "served >= 0.9 x single-stream (clean)": clean["img_per_s"] >= 0.9 * single["img_per_s"],
        "RSS growth < 50 MB (every phase)": all(
            p.rss_after_mb - phases[0].rss_before_mb < 50 for p in phases
        ),
    }
    for name, met in targets.items():
        print(f"target {name}: {'met' if met else 'NOT met'}")
    wrong = [w for p in phases for w in p.wrong]
    for line in wrong[:10]:
        print(f"wrong: {line}", file=sys.stderr)
    if args.json:
        report = {
            "command": " ".join(sys.argv),
            "single_stream": single,
            "model": model,
            "phases": summaries,
            "targets": targets,
            "cpu": describe_cpu(),
            "load_average": os.getloadavg(),
        }
        write_json(args.json, report)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
