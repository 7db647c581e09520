"""The Rich consoles every command prints with (stdout for results, stderr for errors/progress)."""

from __future__ import annotations

from rich.console import Console

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)
