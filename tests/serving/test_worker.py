"""The inference thread: waiting requests share a forward pass, failures stay with their batch."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from gcnseg.serving.worker import InferenceWorker, Result


class FakeSegmenter:
    """Masks filled with each image's first pixel value, so answers can be told apart; the
    first call waits for `release`, so later jobs queue up behind it."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.batches: list[int] = []

    def predict(self, images: list[np.ndarray]) -> list[np.ndarray]:
        assert self.release.wait(30)
        self.batches.append(len(images))
        if any(image[0, 0, 0] == 99 for image in images):
            raise RuntimeError("boom")
        return [np.full(image.shape[:2], image[0, 0, 0], np.uint8) for image in images]


def test_waiting_requests_share_a_forward_pass_and_keep_their_own_masks() -> None:
    fake = FakeSegmenter()
    worker = InferenceWorker(fake, max_batch=2)  # type: ignore[arg-type]
    images = [np.full((4, 5, 3), value, np.uint8) for value in (1, 2, 3, 4)]
    futures = [worker.submit(images[0])]
    time.sleep(0.1)  # the first batch (of one) is running and waiting for release
    futures += [worker.submit(image) for image in images[1:]]
    fake.release.set()
    results: list[Result] = [future.result(30) for future in futures]
    worker.close()
    assert fake.batches == [1, 2, 1]
    assert [int(r.mask[0, 0]) for r in results] == [1, 2, 3, 4]
    assert [r.batch for r in results] == [1, 2, 2, 1]


def test_a_failing_batch_fails_its_requests_and_the_worker_goes_on() -> None:
    fake = FakeSegmenter()
    fake.release.set()
    worker = InferenceWorker(fake, max_batch=1)  # type: ignore[arg-type]
    bad = worker.submit(np.full((2, 2, 3), 99, np.uint8))
    with pytest.raises(RuntimeError, match="boom"):
        bad.result(30)
    assert int(worker.submit(np.full((2, 2, 3), 7, np.uint8)).result(30).mask[0, 0]) == 7
    worker.close()
