"""Where a rollout step's time goes: record / act / physics / post / storage (``mimic bench --train``'s breakdown).

A `StepClock` is handed to `mimictools.rl.runner.Runner.time_rollout_phases`, which runs one rollout and marks
the boundaries of each step's phases (`mimictools.rl.step.PolicyStep.step` marks the ends of act, physics and
post; the runner the rest)::

    mark -> record (normalizer statistics, copy of the observation) -> mark -> act (policy, PD targets) -> mark
    -> physics (engine) -> mark -> post (observe, episode statistics, resets) -> mark -> storage (rollout
    storage writes) -> mark

On a GPU the marks are CUDA events on the current stream: recording one costs no host sync, the GPU time between
two events is what the stream spent on that phase (graph replays included), and the host syncs once, in
``phase_ms``. On the CPU the marks are ``time.perf_counter`` readings (CPU work is synchronous).
"""

from __future__ import annotations

import time
from typing import Any, Dict, List, Tuple

import torch

__all__ = ["PHASES", "StepClock"]

PHASES: Tuple[str, ...] = ("record", "act", "physics", "post", "storage")
"""The phases of one rollout step, in order."""


class StepClock:
    """Marks of rollout steps on ``device``; ``phase_ms`` gives each phase's mean milliseconds per step."""

    def __init__(self, device: Any) -> None:
        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        self._steps: List[List[Any]] = []

    def start_step(self) -> None:
        """Begin a step (its first mark)."""
        self._steps.append([])
        self.mark()

    def mark(self) -> None:
        """The end of the current phase (and the start of the next)."""
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record(torch.cuda.current_stream(self.device))
            self._steps[-1].append(event)
        else:
            self._steps[-1].append(time.perf_counter())

    def phase_ms(self) -> Dict[str, float]:
        """Mean milliseconds per step of each phase in `PHASES`, over the complete steps marked (a step needs
        ``len(PHASES) + 1`` marks); empty when none is complete. Syncs with the GPU once."""
        steps = [s for s in self._steps if len(s) == len(PHASES) + 1]
        if not steps:
            return {}
        if self.cuda:
            torch.cuda.synchronize(self.device)
            spans = [[a.elapsed_time(b) for a, b in zip(s, s[1:])] for s in steps]
        else:
            spans = [[1e3 * (b - a) for a, b in zip(s, s[1:])] for s in steps]
        return {name: sum(span[i] for span in spans) / len(spans) for i, name in enumerate(PHASES)}
