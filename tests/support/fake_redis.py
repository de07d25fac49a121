"""A tiny in-memory Redis: the few commands `privrec status` and the ops exporter read."""

from __future__ import annotations

import fnmatch
import json

from pipeline.serving.layout import Layout

__all__ = ["FakeRedis", "published"]


class FakeRedis:
    """The few commands the summary uses: GET, SCAN, ZSCORE."""

    def __init__(self, data: dict[str, object], scores: dict[tuple[str, str], float] | None = None) -> None:
        self.data = data
        self.scores = scores or {}

    def get(self, key: str | bytes):
        value = self.data.get(key.decode() if isinstance(key, bytes) else key)
        return value.encode() if isinstance(value, str) else value

    def scan_iter(self, pattern: str):
        return [k.encode() for k in self.data if fnmatch.fnmatchcase(k, pattern)]

    def zscore(self, key: str, member: str):
        return self.scores.get((key, member))


def published(layout: Layout, version: str, *, ndcg: float, switched_ms: int) -> FakeRedis:
    """A Redis holding one live model version, switched to at ``switched_ms``."""
    meta = {"version": version, "trained_at": switched_ms - 60_000, "metrics": {"ndcg_at_10": ndcg}}
    return FakeRedis(
        {layout.live: version, layout.meta(version): json.dumps(meta)},
        {(layout.versions, version): float(switched_ms)},
    )
