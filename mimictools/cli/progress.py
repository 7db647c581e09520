"""Rich progress display for `mimic train`: samples/s, returns, ETA. Fed by Runner's progress callback."""

from __future__ import annotations

from typing import Any, Optional

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from mimictools.cli.console import console


class TrainProgress:
    """Context manager; ``update`` is the ``progress`` callback of ``Runner.train``."""

    def __init__(self, max_samples: Optional[int], max_minutes: Optional[float], live: bool = True) -> None:
        self.max_samples = max_samples
        self.max_minutes = max_minutes
        self.live = live
        self._progress: Optional[Progress] = None
        self._task: Any = None
        self._first: Optional[tuple] = None  # (samples, session s) at the first report

    def __enter__(self) -> TrainProgress:
        if self.live:
            self._progress = Progress(
                TextColumn("[bold]train"),
                BarColumn(),
                TextColumn("{task.fields[status]}"),
                TimeElapsedColumn(),
                TextColumn("{task.fields[eta]}"),
                console=console,
                transient=False,
            )
            total = (
                self.max_samples
                if self.max_samples
                else (60.0 * self.max_minutes if self.max_minutes else None)
            )
            self._task = self._progress.add_task(
                "train", total=total, status="starting...", eta="eta -:--:--"
            )
            self._progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.stop()

    def eta_s(self, rep: Any) -> Optional[float]:
        """Seconds left. A time limit: exactly what is left of it (Rich's estimate from the first seconds, which
        hold the stability probe and iteration 0's test episodes, was far off). A sample limit: the samples left
        at the rate since the first iteration (None until there is one)."""
        left_t = None if not self.max_minutes else max(0.0, 60.0 * self.max_minutes - rep.session_time_s)
        left_s = None
        if self.max_samples:
            if self._first is None:
                self._first = (rep.samples, rep.session_time_s)
            s0, t0 = self._first
            if rep.samples > s0 and rep.session_time_s > t0:
                rate = (rep.samples - s0) / (rep.session_time_s - t0)
                left_s = max(0.0, self.max_samples - rep.samples) / rate
        known = [x for x in (left_t, left_s) if x is not None]
        return min(known) if known else None

    def update(self, rep: Any) -> None:
        test = ""
        if rep.test is not None:
            test = f" · test {rep.test.mean_return:.2f}"
            if rep.test.success_rate is not None and rep.test.success_rate == rep.test.success_rate:
                test += f", success {100 * rep.test.success_rate:.0f} %"
        status = (
            f"it {rep.iteration} · {rep.samples:,} samples · {rep.samples_per_s:,.0f}/s · "
            f"train return {rep.train_return:.2f} (len {rep.train_episode_length:.0f}){test}"
        )
        if self._progress is None:
            if rep.is_output:
                console.print(status, soft_wrap=True)
            return
        done = rep.samples if self.max_samples else rep.session_time_s
        eta = self.eta_s(rep)
        label = (
            "eta -:--:--"
            if eta is None
            else f"eta {int(eta) // 3600}:{int(eta) % 3600 // 60:02d}:{int(eta) % 60:02d}"
        )
        self._progress.update(self._task, completed=done, status=status, eta=label)
        if rep.is_output:
            self._progress.console.print(f"[dim]{status}[/]")
