"""Decode raw Kafka values into validated events, with a reason for each reject.

A rejected event is an *outcome*, not an exception: :func:`decode_raw` returns
the valid events and a :class:`Reject` per failure, and the caller routes
rejects to the dead-letter topic. The common case costs one msgspec call for the
whole value (a 500-event envelope included); only when that call fails do we
re-read the value generically and validate event by event, so one bad event
costs only itself. Reject details never carry payload values (see
:mod:`pipeline.wire.detail`).
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

import msgspec
from msgspec import Meta, Struct

from pipeline.errors import ValidationFailed
from pipeline.wire.detail import safe_detail
from pipeline.wire.inbound import (
    CONSENT,
    MAX_BATCH_EVENTS,
    PLAYBACK,
    PLAYBACK_BATCH,
    ConsentRecord,
    PlaybackBatch,
    PlaybackEvent,
)

__all__ = [
    "ENVELOPE_MIXED_USERS",
    "FUTURE_EVENT_TIME",
    "INVALID_JSON",
    "OVERSIZE",
    "SCHEMA_VIOLATION",
    "UNKNOWN_SCHEMA",
    "Decoded",
    "Reject",
    "decode_as",
    "decode_consent",
    "decode_raw",
]

OVERSIZE = "oversize"
INVALID_JSON = "invalid_json"
UNKNOWN_SCHEMA = "unknown_schema"
SCHEMA_VIOLATION = "schema_violation"
ENVELOPE_MIXED_USERS = "envelope_mixed_users"
FUTURE_EVENT_TIME = "future_event_time"


class Reject(Struct, frozen=True):
    """One event (or a whole value) that will not be processed.

    Attributes:
        reason: one of the reason constants of this module.
        detail: where and what was expected; never a payload value.
        event: the validated event, the raw decoded object when it failed
            validation (unvalidated, may hold personal data: redact before
            dead-lettering, never log), or ``None`` when nothing parsed.
    """

    reason: str
    detail: str
    event: PlaybackEvent | dict[str, Any] | None = None


class Decoded(Struct, frozen=True):
    """Result of :func:`decode_raw`.

    ``events`` are valid, of one user, in envelope order, with ``event_time``
    normalised to integer epoch ms. ``rejects`` has one entry per rejected
    event, or a single entry when the value as a whole was unusable.
    """

    events: list[PlaybackEvent]
    rejects: list[Reject]


class _BatchShape(Struct, tag_field="schema", tag=PLAYBACK_BATCH):
    """The envelope without its events, to validate it on the slow path."""

    events: Annotated[list[Any], Meta(min_length=1, max_length=MAX_BATCH_EVENTS)]


_fast = msgspec.json.Decoder(PlaybackEvent | PlaybackBatch)
_generic = msgspec.json.Decoder()
_convert = msgspec.convert
_ValidationError = msgspec.ValidationError
_DecodeError = msgspec.DecodeError
_T = TypeVar("_T")
_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}
_JSON_TYPES = {list: "array", str: "str", int: "int", float: "float", bool: "bool"}


def decode_raw(value: bytes | None, *, max_bytes: int, now_ms: int, future_tolerance_ms: int) -> Decoded:
    """Decode one ``playback.raw`` value: a ``playback.v1`` event or an envelope.

    Args:
        value: the Kafka record value; ``None`` (a tombstone) is invalid here.
        max_bytes: larger values are rejected before any parsing.
        now_ms: the current time in epoch ms (passed in to keep this pure).
        future_tolerance_ms: clock skew allowed before an event counts as
            from the future.

    Returns:
        The valid events and the rejects. Nothing is raised for bad input.
    """
    if value is None:
        return _whole(INVALID_JSON, "null value")
    if len(value) > max_bytes:
        return _whole(OVERSIZE, f"value of {len(value)} bytes exceeds {max_bytes}")
    try:
        record = _fast.decode(value)
    except _ValidationError:
        return _slow(value, now_ms + future_tolerance_ms)
    except _DecodeError as exc:
        return _whole(INVALID_JSON, safe_detail(str(exc)))
    except UnicodeDecodeError:
        return _whole(INVALID_JSON, "value is not valid UTF-8")
    events = record.events if record.__class__ is PlaybackBatch else [record]
    return _finish(events, [], now_ms + future_tolerance_ms)


def decode_consent(value: bytes | None) -> ConsentRecord | None:
    """Decode one ``consent`` value; ``None`` for a tombstone (consent withdrawn).

    Consent changes are rare, so this takes the simple two-step road (generic
    parse, then convert) that tells a wrong ``schema`` from a bad field.

    Raises:
        ValidationFailed: with ``reason`` one of ``invalid_json``,
            ``unknown_schema`` or ``schema_violation`` and a value-free detail.
    """
    if value is None:
        return None
    raw = _parse(value)
    if isinstance(raw, Reject):
        raise ValidationFailed(raw.reason, raw.detail)
    if raw.__class__ is not dict:
        raise ValidationFailed(SCHEMA_VIOLATION, _not_object(raw))
    if raw.get("schema") != CONSENT:
        raise ValidationFailed(UNKNOWN_SCHEMA, _tag_problem(raw, CONSENT))
    try:
        return _convert(raw, ConsentRecord)
    except _ValidationError as exc:
        raise ValidationFailed(SCHEMA_VIOLATION, safe_detail(str(exc))) from None


def decode_as(value: bytes, kind: type[_T]) -> _T:
    """Decode a record privrec wrote itself (redacted, interaction, dlq).

    Our own topics should never hold bad records, so here a bad one is an
    exception rather than an outcome.

    Raises:
        ValidationFailed: ``invalid_json`` or ``schema_violation``; the
            detail is value-free.
    """
    decoder = _decoders.get(kind)
    if decoder is None:
        decoder = _decoders.setdefault(kind, msgspec.json.Decoder(kind))
    try:
        record: _T = decoder.decode(value)
    except _ValidationError as exc:
        raise ValidationFailed(SCHEMA_VIOLATION, safe_detail(str(exc))) from None
    except _DecodeError as exc:
        raise ValidationFailed(INVALID_JSON, safe_detail(str(exc))) from None
    except UnicodeDecodeError:
        raise ValidationFailed(INVALID_JSON, "value is not valid UTF-8") from None
    return record


def _whole(reason: str, detail: str) -> Decoded:
    return Decoded([], [Reject(reason, detail)])


def _parse(value: bytes) -> Any:
    """Parse JSON generically; a :class:`Reject` stands for failure."""
    try:
        raw = _generic.decode(value)
    except _DecodeError as exc:
        return Reject(INVALID_JSON, safe_detail(str(exc)))
    except UnicodeDecodeError:
        return Reject(INVALID_JSON, "value is not valid UTF-8")
    if raw is None:
        return Reject(INVALID_JSON, "value is JSON null")
    return raw


def _not_object(raw: Any, at: str = "") -> str:
    got = _JSON_TYPES.get(raw.__class__, "value")
    return f"Expected `object`, got `{got}` - at `${at}`"


def _tag_problem(raw: dict[str, Any], expected: str) -> str:
    if "schema" not in raw:
        return "missing `schema` - at `$`"
    return f"unsupported `schema`, expected {expected} - at `$.schema`"


def _slow(value: bytes, limit_ms: int) -> Decoded:
    """Validate event by event after the one-shot decode failed."""
    raw = _parse(value)
    if isinstance(raw, Reject):
        return Decoded([], [raw])
    if raw.__class__ is not dict:
        return _whole(SCHEMA_VIOLATION, _not_object(raw))
    tag = raw.get("schema")
    if tag == PLAYBACK:
        items, prefix = [raw], ""
    elif tag == PLAYBACK_BATCH:
        try:
            items = _convert(raw, _BatchShape).events
        except _ValidationError as exc:
            return _whole(SCHEMA_VIOLATION, safe_detail(str(exc)))
        prefix = ".events"
    else:
        return _whole(UNKNOWN_SCHEMA, _tag_problem(raw, f"{PLAYBACK} or {PLAYBACK_BATCH}"))
    events: list[PlaybackEvent] = []
    rejects: list[Reject] = []
    for i, item in enumerate(items):
        at = f"{prefix}[{i}]" if prefix else ""
        if item.__class__ is not dict:
            rejects.append(Reject(SCHEMA_VIOLATION, _not_object(item, at)))
            continue
        if item.get("schema", PLAYBACK) != PLAYBACK:  # a missing inner tag is fine
            rejects.append(Reject(UNKNOWN_SCHEMA, f"unsupported `schema` - at `${at}.schema`", item))
            continue
        try:
            events.append(_convert(item, PlaybackEvent))
        except _ValidationError as exc:
            rejects.append(Reject(SCHEMA_VIOLATION, safe_detail(str(exc), at), item))
    return _finish(events, rejects, limit_ms)


def _finish(events: list[PlaybackEvent], rejects: list[Reject], limit_ms: int) -> Decoded:
    """Apply the checks that span events or need the clock."""
    if len(events) > 1:
        user = events[0].user_id
        for event in events:
            if event.user_id != user:
                n = len({e.user_id for e in events})
                detail = f"envelope holds {n} distinct user ids - at `$.events`"
                rejects.extend(Reject(ENVELOPE_MIXED_USERS, detail, e) for e in events)
                return Decoded([], rejects)
    for event in events:
        if event.event_time > limit_ms:  # type: ignore[operator]
            break
    else:
        return Decoded(events, rejects)
    kept = [e for e in events if e.event_time <= limit_ms]  # type: ignore[operator]
    rejects.extend(
        Reject(FUTURE_EVENT_TIME, "event_time is later than now + tolerance", e)
        for e in events
        if e.event_time > limit_ms  # type: ignore[operator]
    )
    return Decoded(kept, rejects)
