"""Example records, valid by construction: the one playback-event factory of the tests.

Each builder returns plain JSON-ready dicts so callers can break exactly one
field and see what the decoder makes of it. Values are obviously synthetic.
Tests that need other defaults bind them once (``functools.partial``) rather
than writing another factory, so a new required field is added here only.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

from pipeline.wire.inbound import CONSENT, PLAYBACK, PLAYBACK_BATCH

__all__ = ["NOW_MS", "batch", "batch_bytes", "consent", "playback_event"]

NOW_MS = 1_714_564_800_000
"""2024-05-01T12:00:00Z: a fixed "now" that keeps examples deterministic."""


def playback_event(
    i: int = 0,
    *,
    user: str | None = None,
    content: str | None = None,
    t: int | None = None,
    kind: str | None = None,
    watched: int | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Return the ``i``-th event of a valid ``playback.v1`` session as a dict.

    The short keywords name the fields tests vary most (``user`` is
    ``user_id``, ``content`` is ``content_id``, ``t`` is ``event_time``,
    ``kind`` is ``event_type``, ``watched`` is ``watched_ms``); any other
    keyword replaces the top-level field of that name.
    """
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
    short = {"user_id": user, "content_id": content, "event_time": t, "event_type": kind}
    short["watched_ms"] = watched
    event.update({name: value for name, value in short.items() if value is not None})
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
