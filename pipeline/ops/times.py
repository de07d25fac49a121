"""Times as people and programs read them: RFC 3339 in UTC with an explicit offset (``Z``).

Every time the CLI prints, in text and in JSON, goes through :func:`rfc3339`, so a reader never
guesses the machine's timezone (local ``%H:%M:%S`` did) and one parser reads them all. Epoch
milliseconds stay beside them in JSON under ``*_ms`` names for arithmetic.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Literal

__all__ = ["now_rfc3339", "rfc3339"]

Timespec = Literal["seconds", "milliseconds"]


def rfc3339(ms: int | float | None, timespec: Timespec = "seconds") -> str | None:
    """Epoch milliseconds as ``2024-05-01T12:00:00Z`` (``.123Z`` with milliseconds); ``None`` stays."""
    if ms is None:
        return None
    at = datetime.fromtimestamp(ms / 1000, UTC)
    return at.isoformat(timespec=timespec).replace("+00:00", "Z")


def now_rfc3339(timespec: Timespec = "seconds") -> str:
    """The current time, as :func:`rfc3339` writes it."""
    return rfc3339(time.time() * 1000, timespec) or ""
