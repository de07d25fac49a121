"""The Redis keys of process stats and diagnostics: one place that spells them.

Workers and the trainer each publish their stats (JSON, with a TTL) under
``privrec:stats:<kind>:<app_id>:<id>``; ``privrec status``, the metrics
exporter, the audit and the benches read them back by scanning
``privrec:stats:<kind>:<app_id>:*``. The serving cache has its own namespace
(:class:`pipeline.serving.layout.Layout`).
"""

from __future__ import annotations

from typing import Literal

__all__ = ["SMOKE_KEY", "StatsKind", "exports_key", "stats_key", "stats_pattern"]

StatsKind = Literal["worker", "trainer"]

_STATS = "privrec:stats:"

#: The throw-away key ``privrec smoke`` sets, reads back and deletes.
SMOKE_KEY = "privrec:smoke"


def stats_key(kind: StatsKind, process_id: str) -> str:
    """The key of one process's stats; ``process_id`` is ``<app_id>:<hex>``."""
    return f"{_STATS}{kind}:{process_id}"


def stats_pattern(kind: StatsKind, app_id: str) -> str:
    """A ``SCAN MATCH`` pattern for the stats of every ``kind`` process of ``app_id``."""
    return f"{_STATS}{kind}:{app_id}:*"


def exports_key(app_id: str) -> str:
    """The counter of exports served (``privrec export``), per deployment."""
    return f"{_STATS}exports:{app_id}"
