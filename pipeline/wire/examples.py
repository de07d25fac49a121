"""Example records, valid by construction, for tests, docs and load generation.

Each builder returns plain JSON-ready dicts so callers can break exactly one
field and see what the decoder makes of it. Values are obviously synthetic.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

from pipeline.wire.inbound import CONSENT, PLAYBACK, PLAYBACK_BATCH

__all__ = ["NOW_MS", "batch", "batch_bytes", "consent", "playback_event"]

NOW_MS = 1_714_564_800_000
"""2024-05-01T12:00:00Z: a fixed "now" that keeps examples deterministic."""


def playback_event(i: int = 0, **overrides: Any) -> dict[str, Any]:
    """Return a valid ``playback.v1`` dict; ``overrides`` replace top-level keys."""
    event: dict[str, Any] = {
        "schema": PLAYBACK,
        "event_id": str(uuid.UUID(int=i + 1)),
        "user_id": "user-0001",
        "session_id": "session-0001",
        "device_id": "device-0001",
        "content_id": f"content-{i % 50:04d}",
        "event_type": "heartbeat",
        "position_ms": i * 10_000,
        "duration_ms": 7_200_000,  # the playhead of event 499 is at 4,990,000
        "watched_ms": 10_000,
        "event_time": NOW_MS - 600_000 + i,
        "client": {
            "ip": "203.0.113.7",
            "user_agent": "ExampleTV/1.0",
            "app_version": "4.2.1",
            "device_class": "tv",
            "country": "DE",
        },
        "gpc": False,
    }
    event.update(overrides)
    return event


def batch(n: int = 500, **overrides: Any) -> dict[str, Any]:
    """Return a valid ``playback.batch.v1`` dict of ``n`` events of one user."""
    return {
        "schema": PLAYBACK_BATCH,
        "events": [playback_event(i, **overrides) for i in range(n)],
    }


def batch_bytes(n: int = 500, **overrides: Any) -> bytes:
    """Return :func:`batch` encoded as it would arrive from Kafka."""
    return msgspec.json.encode(batch(n, **overrides))


def consent(**overrides: Any) -> dict[str, Any]:
    """Return a valid ``consent.v1`` dict granting analytics and personalization."""
    record: dict[str, Any] = {
        "schema": CONSENT,
        "user_id": "user-0001",
        "purposes": {"analytics": True, "personalization": True, "advertising": False},
        "updated_at": "2024-05-01T10:00:00Z",
        "source": "cmp",
    }
    record.update(overrides)
    return record
