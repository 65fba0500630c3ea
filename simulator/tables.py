"""Terminal tables: rich tables, wrapped to the terminal's width, rendered as plain text."""
from __future__ import annotations

import io
import os
import shutil
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

#: Narrowest width a table is wrapped to.
MIN_WIDTH = 40
#: Width of output to a file or a pipe when ``COLUMNS`` is unset: wide enough for one line per row
#: of the plan and summary tables, which a reader of a saved report would otherwise see folded.
PIPE_WIDTH = 160


def terminal_width() -> int:
    """``COLUMNS`` when set, else the terminal's width, else (a file or a pipe) :data:`PIPE_WIDTH`."""
    cols = os.environ.get("COLUMNS", "")
    if cols.isdigit():
        return max(MIN_WIDTH, int(cols))
    if sys.stdout.isatty():
        return max(MIN_WIDTH, shutil.get_terminal_size((80, 24)).columns)
    return PIPE_WIDTH


def table(columns: Sequence[str], *, title: str | None = None, caption: str | None = None,
          left: Iterable[str] = (), lines: bool = False) -> Table:
    """A table with ``columns``; numbers right-aligned except the ``left`` (and the first) column;
    long cells fold onto further lines instead of widening the table."""
    t = Table(title=title, caption=caption, show_lines=lines, title_justify="left", caption_justify="left")
    keep_left = {columns[0], *left} if columns else set(left)
    for c in columns:
        t.add_column(c, justify="left" if c in keep_left else "right", overflow="fold")
    return t


def grid(rows: Iterable[tuple[str, str]]) -> Table:
    """Label / value lines as a two-column grid; values wrap under themselves."""
    g = Table.grid(padding=(0, 2))
    g.add_column(no_wrap=True)
    g.add_column(overflow="fold")
    for label, value in rows:
        g.add_row(label, value)
    return g


def render(*items: Any, width: int | None = None) -> str:
    """``items`` (tables, grids, strings) as plain text of at most ``width`` columns (the terminal's)."""
    buf = io.StringIO()
    console = Console(file=buf, width=width or terminal_width(), color_system=None, highlight=False,
                      emoji=False, markup=False, soft_wrap=False)
    for item in items:
        console.print(item)
    return "\n".join(line.rstrip() for line in buf.getvalue().rstrip("\n").split("\n"))
