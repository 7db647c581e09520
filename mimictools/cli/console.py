"""The Rich consoles every command prints with (stdout for results, stderr for errors/progress)."""

from __future__ import annotations

from rich.console import Console
from rich.errors import MarkupError


class SafeConsole(Console):
    """A Console on which text that is not valid markup (a file named ``[/x].pkl`` in a message or a
    table cell) prints as plain text instead of raising ``MarkupError``."""

    def render_str(self, text, **kwargs):  # type: ignore[override]
        try:
            return super().render_str(text, **kwargs)
        except MarkupError:
            kwargs["markup"] = False
            return super().render_str(text, **kwargs)


console = SafeConsole(highlight=False)
err_console = SafeConsole(stderr=True, highlight=False)
