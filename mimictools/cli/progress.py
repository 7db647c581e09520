"""Rich progress display for `mimic train`: samples/s, returns, ETA. Fed by Runner's progress callback."""

from __future__ import annotations

from typing import Any, Optional

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from mimictools.cli.console import console


class TrainProgress:
    """Context manager; ``update`` is the ``progress`` callback of ``Runner.train``."""

    def __init__(self, max_samples: Optional[int], max_minutes: Optional[float], live: bool = True) -> None:
        self.max_samples = max_samples
        self.max_minutes = max_minutes
        self.live = live
        self._progress: Optional[Progress] = None
        self._task: Any = None

    def __enter__(self) -> TrainProgress:
        if self.live:
            self._progress = Progress(
                TextColumn("[bold]train"),
                BarColumn(),
                TextColumn("{task.fields[status]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=console,
                transient=False,
            )
            total = (
                self.max_samples
                if self.max_samples
                else (60.0 * self.max_minutes if self.max_minutes else None)
            )
            self._task = self._progress.add_task("train", total=total, status="starting...")
            self._progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.stop()

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
                console.print(status)
            return
        done = rep.samples if self.max_samples else rep.session_time_s
        self._progress.update(self._task, completed=done, status=status)
        if rep.is_output:
            self._progress.console.print(f"[dim]{status}[/]")
