"""The Rich consoles every command prints with (stdout for results, stderr for errors/progress)."""

from __future__ import annotations

from typing import List

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


def print_table(
    out: Console, title: str, columns: List[str], rows: List[List[str]], caption: str = ""
) -> None:
    """A table when it fits ``out``'s width; else one block of ``column  value`` lines per row (readable in a
    narrow terminal and in a pipe, where Rich would squeeze every cell into a sliver)."""
    from rich.table import Table

    widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(columns)]
    if sum(widths) + 3 * len(columns) + 1 <= out.width:
        table = Table(title=title, title_justify="left", caption=caption or None, caption_justify="left")
        for c in columns:
            table.add_column(c, justify="right", no_wrap=True)
        for r in rows:
            table.add_row(*r)
        out.print(table)
        return
    out.print(title, style="italic")
    key_w = max(len(c) for c in columns)
    for r in rows:
        out.print()
        for c, v in zip(columns, r):
            out.print(f"  {c.ljust(key_w)}  {v}", no_wrap=True, overflow="ignore", crop=False)
    if caption:
        out.print()
        out.print(caption, style="dim")
