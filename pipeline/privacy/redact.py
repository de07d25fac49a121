"""Allow-list redaction of playback events, and best-effort redaction for the DLQ.

:func:`redact` projects a raw ``playback.v1`` event onto ``playback.redacted.v1``:
it *builds* a new record from the allowed fields instead of deleting the
forbidden ones, so a field added to the raw schema later can never leak by
default. It runs once per event and copies nothing but the allowed values.

:func:`redact_for_dlq` is for records that failed validation and so have no
trustworthy shape: it walks any parsed JSON value, pseudonymizes ``user_id``,
drops identifiers, and scrubs every string.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.privacy.consent import Purposes
from pipeline.privacy.pseudonym import Pseudonymizer
from pipeline.privacy.scrub import scrub

__all__ = [
    "ALLOWED_FIELDS",
    "DLQ_DROPPED_KEYS",
    "DLQ_MAX_DEPTH",
    "REDACTED_SCHEMA",
    "redact",
    "redact_for_dlq",
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


# Keys compared lower-cased without "_"/"-", so "sessionId" and "user-agent" match.
DLQ_DROPPED_KEYS = frozenset(
    {"sessionid", "deviceid", "ip", "ipaddress", "clientip", "remoteaddr", "useragent"}
)
_USER_KEYS = frozenset({"userid"})
DLQ_MAX_DEPTH = 16
_TRUNCATED = "[truncated]"
_REDACTED = "[redacted]"
_MIN_KNOWN_LEN = 4  # shorter known values are not searched for inside strings


def _norm(key: object) -> str:
    return key.lower().replace("_", "").replace("-", "") if isinstance(key, str) else ""


def redact_for_dlq(obj: Any, pseudonymizer: Pseudonymizer) -> Any:
    """Best-effort redaction of any parsed JSON value for the dead-letter topic.

    * ``user_id`` values (any nesting, any spelling like ``userId``) become the
      pseudonym; other ``user_id`` shapes are dropped.
    * ``session_id``, ``device_id``, ``ip``, ``user_agent`` and their spelling
      variants (:data:`DLQ_DROPPED_KEYS`) are dropped.
    * Every other string, keys included, is scrubbed with
      :func:`~pipeline.privacy.scrub.scrub`; values of the replaced and dropped
      fields are also replaced where they reappear inside other strings (e.g.
      an error message quoting the user id). ``event_id`` is kept: a random
      UUID, useful for tracing, which ``scrub`` leaves intact.
    * Containers deeper than :data:`DLQ_MAX_DEPTH` become ``"[truncated]"``;
      values that are not JSON types become ``"[<type name>]"``.

    Numbers are kept as they are. The input is not modified.
    """
    known: dict[str, str] = {}
    _collect(obj, pseudonymizer, known, 0)
    # Longest first, so a value containing another is replaced whole.
    replacements = sorted(known.items(), key=lambda kv: len(kv[0]), reverse=True)
    return _walk(obj, pseudonymizer, replacements, 0)


def _collect(obj: Any, pseudonymizer: Pseudonymizer, known: dict[str, str], depth: int) -> None:
    """Gather raw identifier values so they can be replaced inside strings too."""
    if depth > DLQ_MAX_DEPTH:
        return
    if isinstance(obj, Mapping):
        for key, value in obj.items():
            norm = _norm(key)
            if norm in _USER_KEYS and isinstance(value, (str, int)) and not isinstance(value, bool):
                raw = str(value)
                if len(raw) >= _MIN_KNOWN_LEN:
                    known[raw] = pseudonymizer.pseudonym(raw)
            elif norm in DLQ_DROPPED_KEYS and isinstance(value, str) and len(value) >= _MIN_KNOWN_LEN:
                known.setdefault(value, _REDACTED)
            else:
                _collect(value, pseudonymizer, known, depth + 1)
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            _collect(item, pseudonymizer, known, depth + 1)


def _clean(text: str, replacements: list[tuple[str, str]]) -> str:
    # Scrub first: scrubbing after would run over the inserted pseudonyms.
    text = scrub(text)
    for raw, replacement in replacements:
        if raw in text:
            text = text.replace(raw, replacement)
    return text


def _walk(obj: Any, pseudonymizer: Pseudonymizer, replacements: list[tuple[str, str]], depth: int) -> Any:
    if obj is None or isinstance(obj, (bool, int, float)):
        return obj
    if isinstance(obj, str):
        return _clean(obj, replacements)
    if isinstance(obj, (Mapping, list, tuple)) and depth >= DLQ_MAX_DEPTH:
        return _TRUNCATED
    if isinstance(obj, Mapping):
        out: dict[Any, Any] = {}
        for key, value in obj.items():
            norm = _norm(key)
            if norm in DLQ_DROPPED_KEYS:
                continue
            if norm in _USER_KEYS:
                if value is None:
                    out[key] = None
                elif isinstance(value, (str, int)) and not isinstance(value, bool):
                    out[key] = pseudonymizer.pseudonym(str(value))
                continue
            out[_clean(key, replacements) if isinstance(key, str) else key] = _walk(
                value, pseudonymizer, replacements, depth + 1
            )
        return out
    if isinstance(obj, (list, tuple)):
        return [_walk(item, pseudonymizer, replacements, depth + 1) for item in obj]
    return f"[{type(obj).__name__}]"
