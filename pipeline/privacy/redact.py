"""Allow-list redaction of playback events.

:func:`redact` projects a raw ``playback.v1`` event onto ``playback.redacted.v1``:
it *builds* a new record from the allowed fields instead of deleting the
forbidden ones, so a field added to the raw schema later can never leak by
default. It runs once per event and copies nothing but the allowed values.

Records that failed validation have no trustworthy shape and are never
redacted into a payload: :mod:`pipeline.privacy.deadletter` keeps only their
field names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.privacy.consent import Purposes

__all__ = [
    "ALLOWED_FIELDS",
    "REDACTED_SCHEMA",
    "redact",
    "redacted_field_count",
]

REDACTED_SCHEMA = "playback.redacted.v1"

_COPIED = ("content_id", "event_type", "position_ms", "duration_ms", "watched_ms", "event_time")
_CLIENT_COPIED = ("device_class", "country")

ALLOWED_FIELDS: tuple[str, ...] = ("schema", "user", *_COPIED, *_CLIENT_COPIED, "purposes")
"""Every key of a redacted record, in output order; nothing else is ever emitted."""

_SCALARS = frozenset({str, int, float, bool})
_EMPTY: Mapping[str, Any] = {}


def _scalar(value: Any) -> Any:
    """Pass JSON scalars; anything nested (a malformed field) becomes ``None``."""
    return value if type(value) in _SCALARS else None


def redact(event: Mapping[str, Any], *, pseudonym: str, purposes: Purposes) -> dict[str, Any]:
    """Project a raw playback event onto a ``playback.redacted.v1`` record.

    Args:
        event: the decoded raw event; validated upstream, with ``event_time``
            already epoch milliseconds. Missing or non-scalar allowed fields
            come out as ``None`` (the redacted schema validator rejects them).
        pseudonym: the user's pseudonym (``Pseudonymizer.pseudonym``).
        purposes: the consent in force (``Decision.purposes``). Advertising is
            forced off again if the event carries ``gpc: true``.

    Use :func:`redacted_field_count` for the "fields removed" metric.
    """
    client = event.get("client")
    if not isinstance(client, Mapping):
        client = _EMPTY
    return {
        "schema": REDACTED_SCHEMA,
        "user": pseudonym,
        "content_id": _scalar(event.get("content_id")),
        "event_type": _scalar(event.get("event_type")),
        "position_ms": _scalar(event.get("position_ms")),
        "duration_ms": _scalar(event.get("duration_ms")),
        "watched_ms": _scalar(event.get("watched_ms")),
        "event_time": _scalar(event.get("event_time")),
        "device_class": _scalar(client.get("device_class")),
        "country": _scalar(client.get("country")),
        "purposes": {
            "analytics": purposes.analytics,
            "personalization": purposes.personalization,
            "advertising": purposes.advertising and event.get("gpc") is not True,
        },
    }


def redacted_field_count(event: Mapping[str, Any]) -> int:
    """How many input fields :func:`redact` removes (for a metric).

    Counts leaf fields: top-level keys other than the copied ones, plus keys
    of ``client`` other than ``device_class``/``country``. ``user_id`` counts
    (it is replaced by the pseudonym); an input ``schema`` key does not.
    """
    removed = len(event) - sum(1 for key in _COPIED if key in event) - ("schema" in event)
    client = event.get("client")
    if isinstance(client, Mapping):
        removed += len(client) - 1 - sum(1 for key in _CLIENT_COPIED if key in client)
    return removed
