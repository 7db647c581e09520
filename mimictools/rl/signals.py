"""Stop requests a training run honours like Ctrl-C: SIGTERM, what SLURM, ``timeout`` and ``kill`` send."""

from __future__ import annotations

import signal
import threading
from typing import Any

__all__ = ["Terminated", "sigterm_raises"]


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
