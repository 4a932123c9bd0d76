"""Ctrl-C and SIGTERM that stop a run only between steps, so the state saved is a state reached.

A Ctrl-C arriving in the middle of a step used to stop it after the forward pass had already
updated the BatchNorm running statistics but before the step was counted: last.pt then held
statistics one batch ahead of its step counter, and the resumed run differed from the
uninterrupted one (84 BatchNorm buffers of GCN-EfficientNet-Lite0). Now a signal that arrives
during a step (or while the end of an epoch writes its checkpoints) is held until that block ends,
then raised as KeyboardInterrupt; outside such a block (waiting for data, validating) it is raised
at once, since nothing is half-done there. A second signal during the same block stops at once
and marks the state torn, so nothing is saved from it.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from types import FrameType

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupts:
    def __init__(self) -> None:
        self.busy = False  # inside a block that must not be cut
        self.pending: int | None = None  # a signal held until the block ends
        self.torn = False  # a block was cut: the in-memory state is no state the run reached

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.busy and self.pending is None:
            self.pending = signum
            log.warning("stopping after this step (press Ctrl-C again to stop at once, unsaved)")
            return
        raise KeyboardInterrupt

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """SIGINT and SIGTERM go through `_handle` inside the block; the old handlers come back."""
        if threading.current_thread() is not threading.main_thread():
            yield  # signal handlers can only be set from the main thread
            return
        previous = {sig: signal.signal(sig, self._handle) for sig in SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """A block that a signal does not cut; a held signal is raised when it ends."""
        self.busy = True
        try:
            yield
        except BaseException:
            self.torn = True
            raise
        finally:
            self.busy = False
        if self.pending is not None:
            self.pending = None
            raise KeyboardInterrupt
