"""Progress bars of long commands (replay, train, eval) through rich, on stderr.

A bar is drawn only when both stdout and stderr are terminals: with output redirected (a script,
``--json`` piped to a file, CI logs) nothing but the command's own output is written, so it stays
parseable. Updates are cheap when disabled, so loops call :meth:`Progress.update` unconditionally.
"""

from __future__ import annotations

import atexit
import sys
from types import TracebackType
from typing import Any

__all__ = ["Progress", "interactive"]


def interactive() -> bool:
    """Whether live terminal output (bars, redrawn tables) is wanted: stdout and stderr are terminals."""
    return sys.stdout.isatty() and sys.stderr.isatty()


class Progress:
    """One labelled bar of ``total`` units, drawn when ``enabled`` is not False and :func:`interactive`.

    A context manager; :meth:`close` (or leaving the block) stops the bar and leaves its last state
    on the screen; a bar left open by an exception is closed at exit, so the cursor comes back.
    """

    def __init__(self, total: int, label: str, enabled: bool | None = None, unit: str = "events") -> None:
        self.total, self.label, self.unit = total, label, unit
        self.enabled = enabled is not False and interactive()
        self._bar: Any = None
        self._task: Any = None
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TaskProgressColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn(unit),
                TaskProgressColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
            )
            self._task = self._bar.add_task(label, total=max(total, 1))
            self._bar.start()
            atexit.register(self.close)

    def update(self, done: int, total: int | None = None, label: str | None = None) -> None:
        """``done`` units of ``total`` (the last one if not given) are finished; ``label`` renames the bar."""
        if total is not None:
            self.total = total
        if self._bar is not None:
            fields: dict[str, Any] = {"completed": done, "total": max(self.total, 1)}
            if label is not None:
                fields["description"] = label
            self._bar.update(self._task, **fields)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
