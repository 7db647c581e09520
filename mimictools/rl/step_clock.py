"""Where a rollout step's time goes: record / act / physics / post / storage (``mimic bench --train``'s breakdown).

A `StepClock` is handed to `mimictools.rl.runner.Runner.time_rollout_phases`, which runs one rollout; a mark
before the first step, then one at the end of each phase of every step (`mimictools.rl.step.PolicyStep.step`
marks the ends of act, physics and post, the runner the ends of record and storage)::

    mark | record (normalizer statistics, copy of the observation) | mark | act (policy, PD targets) | mark |
    physics (engine) | mark | post (observe, episode statistics, resets) | mark | storage (rollout storage writes)
    | mark | record of the next step | ...

On a GPU the marks are CUDA events on the current stream: recording one costs no host sync, the GPU time between
two events is what the stream spent on that phase (graph replays included), and the host syncs once, in
``phase_ms``. On the CPU the marks are ``time.perf_counter`` readings (CPU work is synchronous).
"""

from __future__ import annotations

import time
from typing import Any, Dict, List, Optional, Tuple

import torch

__all__ = ["PHASES", "StepClock", "mark"]

PHASES: Tuple[str, ...] = ("record", "act", "physics", "post", "storage")
"""The phases of one rollout step, in order."""


class StepClock:
    """Marks of rollout steps on ``device``; ``phase_ms`` gives each phase's mean milliseconds per step."""

    def __init__(self, device: Any) -> None:
        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        self._marks: List[Any] = []

    def mark(self) -> None:
        """The end of the current phase (and the start of the next); the first mark starts the first step."""
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record(torch.cuda.current_stream(self.device))
            self._marks.append(event)
        else:
            self._marks.append(time.perf_counter())

    def phase_ms(self) -> Dict[str, float]:
        """Mean milliseconds per step of each phase in `PHASES`, over the complete steps marked (the gaps between
        consecutive marks, ``len(PHASES)`` to a step; the gaps of an unfinished last step are left out); empty
        when no step is complete. Syncs with the GPU once."""
        if self.cuda and self._marks:
            torch.cuda.synchronize(self.device)
        pairs = zip(self._marks, self._marks[1:])
        gaps = [a.elapsed_time(b) if self.cuda else 1e3 * (b - a) for a, b in pairs]
        n = len(gaps) // len(PHASES)
        if n == 0:
            return {}
        return {name: sum(gaps[s * len(PHASES) + i] for s in range(n)) / n for i, name in enumerate(PHASES)}


def mark(clock: Optional[StepClock]) -> None:
    """``clock.mark()`` when a clock is given (the step path is timed only by benchmarks)."""
    if clock is not None:
        clock.mark()
