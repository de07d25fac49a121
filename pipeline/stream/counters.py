"""Counters per stage and reason, kept by the stream for metrics and summaries.

Counts only: never user ids, never payloads. Keys are ``stage`` or
``stage:reason`` strings such as ``dropped:no_consent_record``.
"""

from __future__ import annotations

from collections import Counter

__all__ = ["StreamCounters"]


class StreamCounters(Counter[str]):
    """A ``Counter`` with a helper for nested views."""

    def by_stage(self) -> dict[str, dict[str, int] | int]:
        """``{"dropped": {"no_consent_record": 3}, "accepted": 10, ...}``."""
        out: dict[str, dict[str, int] | int] = {}
        for key, value in sorted(self.items()):
            stage, _, reason = key.partition(":")
            if reason:
                bucket = out.setdefault(stage, {})
                if isinstance(bucket, dict):
                    bucket[reason] = value
            else:
                out[stage] = value
        return out
