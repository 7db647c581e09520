"""Stop requests a training run honours like Ctrl-C: SIGTERM, what SLURM, ``timeout`` and ``kill`` send."""

from __future__ import annotations

import signal
import threading
from typing import Any, Optional

__all__ = ["Terminated", "deferred_stop", "sigterm_raises"]


class Terminated(Exception):
    """SIGTERM arrived (raised in the main thread by `sigterm_raises`' handler)."""


class sigterm_raises:
    """Within the block, SIGTERM raises `Terminated` in the main thread, so a run can save ``latest.pt`` as it
    does for Ctrl-C (KeyboardInterrupt). In another thread the process's handler is left alone."""

    def __enter__(self) -> None:
        self._old: Any = None
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGTERM, self._raise)

    @staticmethod
    def _raise(signum: int, frame: Any) -> None:
        raise Terminated()

    def __exit__(self, *exc: Any) -> None:
        if self._old is not None:
            signal.signal(signal.SIGTERM, self._old)


class deferred_stop:
    """Within the block, SIGTERM and Ctrl-C (SIGINT) only record a stop request (`requested`: "terminated" or
    "interrupted"); the caller stops at its next safe point. Distributed training uses it: the ranks agree on
    the request at the end of an iteration and all stop there, with a consistent ``latest.pt``. A second
    signal raises at once (`Terminated` / KeyboardInterrupt). Main thread only, as `sigterm_raises`."""

    def __init__(self) -> None:
        self.requested: Optional[str] = None

    def __enter__(self) -> deferred_stop:
        self._old: Any = None
        if threading.current_thread() is threading.main_thread():
            self._old = (signal.signal(signal.SIGTERM, self._on), signal.signal(signal.SIGINT, self._on))
        return self

    def _on(self, signum: int, frame: Any) -> None:
        if self.requested is not None:
            raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()
        self.requested = "terminated" if signum == signal.SIGTERM else "interrupted"

    def __exit__(self, *exc: Any) -> None:
        if self._old is not None:
            signal.signal(signal.SIGTERM, self._old[0])
            signal.signal(signal.SIGINT, self._old[1])
