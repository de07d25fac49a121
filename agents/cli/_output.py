"""Small output and argument helpers shared by the commands.

Tables go through rich (:func:`table`, :func:`print_table`): on a terminal with a styled header;
redirected, as plain columns two spaces apart with no styling, no wrapping and no trailing spaces,
so scripts and tests can split them. Times go through :func:`pipeline.ops.times.rfc3339`.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Sequence
from typing import Any

from pipeline.ops.progress import Progress, interactive
from pipeline.ops.times import now_rfc3339, rfc3339

__all__ = [
    "Progress",
    "interactive",
    "now_rfc3339",
    "positive_number",
    "positive_seconds",
    "print_json",
    "print_table",
    "rfc3339",
    "sparkline",
    "table",
    "user_id",
]

_SPARKS = "▁▂▃▄▅▆▇█"


def positive_number(text: str, unit: str = "") -> float:
    """argparse type: a number more than zero (``unit`` names it in the error)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0{unit}")
    return value


def positive_seconds(text: str) -> float:
    """argparse type of a ``--timeout``: seconds, more than zero."""
    return positive_number(text, " seconds")


def user_id(text: str) -> str:
    """argparse type of a USER argument: an empty (or blank) id is refused here, at the CLI,
    rather than erased, exported or consented for a viewer nobody is."""
    if not text.strip():
        raise argparse.ArgumentTypeError("a user id must not be empty")
    return text


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=False, default=str)
    sys.stdout.write("\n")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, styled: bool = False) -> Any:
    """A rich ``Table`` of ``rows`` under ``headers``; cells are text, never rich markup."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    t = Table(
        box=box.SIMPLE_HEAD if styled else None,
        show_edge=False,
        pad_edge=False,
        padding=(0, 1),
        header_style="bold" if styled else "",
    )
    for h in headers:
        t.add_column(str(h), no_wrap=not styled, overflow="fold")
    for row in rows:
        t.add_row(*(Text(str(c)) for c in row))
    return t


def render_plain(renderable: Any) -> str:
    """``renderable`` as plain text without width limit, styling or trailing spaces."""
    from rich.console import Console

    buffer = io.StringIO()
    Console(file=buffer, width=100_000, color_system=None, highlight=False, soft_wrap=False).print(renderable)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines())


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A table on stdout: styled on a terminal, plain columns otherwise (module docstring)."""
    if sys.stdout.isatty():
        from rich.console import Console

        Console().print(table(headers, rows, styled=True))
    else:
        print(render_plain(table(headers, rows)))


def sparkline(values: Sequence[float | int | None], width: int = 20) -> str:
    """The last ``width`` values as block characters scaled to their maximum (``·`` for unknown)."""
    recent = list(values)[-width:]
    known = [v for v in recent if v is not None]
    top = max(known, default=0)
    out = []
    for v in recent:
        if v is None:
            out.append("·")
        elif top <= 0:
            out.append(_SPARKS[0])
        else:
            out.append(_SPARKS[min(len(_SPARKS) - 1, int(v / top * (len(_SPARKS) - 1) + 0.5))])
    return "".join(out)
