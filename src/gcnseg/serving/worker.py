"""The work behind a request: decoding and encoding in codec threads, the model in one thread."""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import numpy as np
from starlette.exceptions import HTTPException

from gcnseg.data.images import EXTENSION_FORMATS, UnsupportedFormat, decode_image
from gcnseg.errors import GcnsegError
from gcnseg.inference.segmenter import Segmenter
from gcnseg.serving.limits import Admission, ServeSettings, request_bytes

FORMATS = frozenset(EXTENSION_FORMATS.values()) | {"MPO"}  # MPO: the JPEGs of many cameras
# Threads that decode uploads and encode replies, beside the inference thread: each may hold a
# decoded photo (up to 432 MB for 12000²), and the machines this runs on have 2-16 cores.
CODEC_THREADS = 2
T = TypeVar("T")


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


class Service:
    """The Segmenter, its admission, its inference thread and the codec threads; the worker
    and the codec threads start and stop with the app."""

    def __init__(self, segmenter: Segmenter, settings: ServeSettings) -> None:
        self.segmenter = segmenter
        self.settings = settings
        self.admission = Admission(settings.max_queue, settings.memory_budget_bytes)
        self._worker: InferenceWorker | None = None
        self._codec: anyio.CapacityLimiter | None = None

    def start(self) -> None:
        self._worker = InferenceWorker(self.segmenter, self.settings.max_batch)
        self._codec = anyio.CapacityLimiter(CODEC_THREADS)

    def stop(self) -> None:
        if self._worker is not None:
            self._worker.close()

    @contextmanager
    def admitted(self, data: bytes, name: str, *, overlay: bool) -> Iterator[None]:
        """A place in line and the memory for this upload, from before decoding to the reply."""
        pixels, cost = request_bytes(data, len(self.segmenter.classes.names), overlay=overlay)
        with self.admission.admit(name, pixels, cost):
            yield

    async def in_thread(self, func: Callable[..., T], *args: Any) -> tuple[T, float]:
        """`func(*args)` in a codec thread, and the seconds it took."""
        start = time.perf_counter()
        value = await anyio.to_thread.run_sync(func, *args, limiter=self._codec)
        return value, time.perf_counter() - start

    async def decode(self, data: bytes, name: str) -> tuple[np.ndarray, float]:
        try:
            return await self.in_thread(decode_image, data, name, FORMATS)
        except UnsupportedFormat as exc:
            raise HTTPException(415, str(exc)) from None
        except GcnsegError as exc:
            raise HTTPException(400, str(exc)) from None

    async def segment(self, image: np.ndarray) -> Result:
        assert self._worker is not None, "the app's lifespan starts the worker"
        return await asyncio.wrap_future(self._worker.submit(image))
