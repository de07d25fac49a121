"""Decode raw Kafka values into validated events, with a reason for each reject.

A rejected event is an *outcome*, not an exception: :func:`decode_raw` returns
the valid events and a :class:`Reject` per failure, and the caller routes
rejects to the dead-letter topic. The common case costs one msgspec call for the
whole value (a 500-event envelope included); only when that call fails do we
re-read the value generically and validate event by event, so one bad event
costs only itself. Reject details never carry payload values (see
:mod:`pipeline.wire.detail`).

Hostile input never raises: a value is parsed generically only after
:func:`~pipeline.wire.depth.too_deep` has bounded its nesting, and the typed
fast path, which builds nothing deeper than the schema, turns the parser's own
recursion guard into the same ``too_deep`` reject. Numbers are bounded by the
field types; what one field's bound cannot express (``position_ms`` and
``watched_ms`` against ``duration_ms``, ``content_id`` against the configured
pattern, ``event_time`` against the clock) is checked per event in
:func:`_finish`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, TypeVar

import msgspec
from msgspec import Meta, Struct

from pipeline.errors import ValidationFailed
from pipeline.wire.depth import MAX_JSON_DEPTH, too_deep
from pipeline.wire.detail import safe_detail
from pipeline.wire.fields import CONTENT_ID_PATTERN, PLAYHEAD_TOLERANCE_MS
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
    "DEFAULT_CONTENT_ID_PATTERN",
    "ENVELOPE_MIXED_USERS",
    "FUTURE_EVENT_TIME",
    "INVALID_CONTENT_ID",
    "INVALID_JSON",
    "OUT_OF_RANGE",
    "OVERSIZE",
    "SCHEMA_VIOLATION",
    "TOO_DEEP",
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
TOO_DEEP = "too_deep"
"""Arrays/objects nest deeper than :data:`~pipeline.wire.depth.MAX_JSON_DEPTH` (whole value)."""
OUT_OF_RANGE = "out_of_range"
"""``position_ms`` or ``watched_ms`` exceeds ``duration_ms`` + ``PLAYHEAD_TOLERANCE_MS`` (60 s)."""
INVALID_CONTENT_ID = "invalid_content_id"
"""``content_id`` does not match ``stream.content_id_pattern`` (it may be free text: personal data)."""

DEFAULT_CONTENT_ID_PATTERN = re.compile(CONTENT_ID_PATTERN)
"""The compiled default of setting ``stream.content_id_pattern`` (applied with ``fullmatch``)."""


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


def decode_raw(
    value: bytes | None,
    *,
    max_bytes: int,
    now_ms: int,
    future_tolerance_ms: int,
    content_id_pattern: re.Pattern[str] = DEFAULT_CONTENT_ID_PATTERN,
) -> Decoded:
    """Decode one ``playback.raw`` value: a ``playback.v1`` event or an envelope.

    Args:
        value: the Kafka record value; ``None`` (a tombstone) is invalid here.
        max_bytes: larger values are rejected before any parsing.
        now_ms: the current time in epoch ms (passed in to keep this pure).
        future_tolerance_ms: clock skew allowed before an event counts as
            from the future.
        content_id_pattern: setting ``stream.content_id_pattern``, compiled;
            a ``content_id`` must match it as a whole (``fullmatch``).

    Returns:
        The valid events and the rejects. Nothing is raised for bad input.
    """
    if value is None:
        return _whole(INVALID_JSON, "null value")
    if len(value) > max_bytes:
        return _whole(OVERSIZE, f"value of {len(value)} bytes exceeds {max_bytes}")
    limit_ms = now_ms + future_tolerance_ms
    try:
        record = _fast.decode(value)
    except _ValidationError:
        return _slow(value, limit_ms, content_id_pattern)
    except _DecodeError as exc:
        return _whole(INVALID_JSON, safe_detail(str(exc)))
    except UnicodeDecodeError:
        return _whole(INVALID_JSON, "value is not valid UTF-8")
    except RecursionError:
        return _whole(TOO_DEEP, _DEEP)
    if record.__class__ is PlaybackBatch:
        return _finish(record.events, [], limit_ms, content_id_pattern, None)
    return _finish([record], [], limit_ms, content_id_pattern, [""])  # type: ignore[list-item]  # the batch returned above


def decode_consent(value: bytes | None) -> ConsentRecord | None:
    """Decode one ``consent`` value; ``None`` for a tombstone (consent withdrawn).

    Consent changes are rare, so this takes the simple two-step road (generic
    parse, then convert) that tells a wrong ``schema`` from a bad field.

    Raises:
        ValidationFailed: with ``reason`` one of ``invalid_json``,
            ``too_deep``, ``unknown_schema`` or ``schema_violation`` and a
            value-free detail.
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

    Nesting is bounded by the parser's recursion guard rather than a
    pre-scan: these are hot paths (redacted batches, interactions) and every
    type decoded here is shallow, so only a hostile value reaches the guard.

    Raises:
        ValidationFailed: ``invalid_json``, ``too_deep`` or
            ``schema_violation``; the detail is value-free.
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
    except RecursionError:
        raise ValidationFailed(TOO_DEEP, _DEEP) from None
    return record


def _whole(reason: str, detail: str) -> Decoded:
    return Decoded([], [Reject(reason, detail)])


_DEEP = f"arrays/objects nest deeper than {MAX_JSON_DEPTH} levels - at `$`"


def _parse(value: bytes) -> Any:
    """Parse JSON generically, depth first bounded; a :class:`Reject` stands for failure."""
    if too_deep(value):
        return Reject(TOO_DEEP, _DEEP)
    try:
        raw = _generic.decode(value)
    except _DecodeError as exc:
        return Reject(INVALID_JSON, safe_detail(str(exc)))
    except UnicodeDecodeError:
        return Reject(INVALID_JSON, "value is not valid UTF-8")
    except RecursionError:  # unreachable after too_deep(); kept so nothing can raise
        return Reject(TOO_DEEP, _DEEP)
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


def _slow(value: bytes, limit_ms: int, content_id_pattern: re.Pattern[str]) -> Decoded:
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
    where: list[str] = []
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
            continue
        where.append(at)
    return _finish(events, rejects, limit_ms, content_id_pattern, where)


def _finish(
    events: list[PlaybackEvent],
    rejects: list[Reject],
    limit_ms: int,
    content_id_pattern: re.Pattern[str],
    where: list[str] | None,
) -> Decoded:
    """Apply the checks that span events, span fields or need the clock or settings.

    ``where`` holds each event's path (``""`` for a lone event, ``.events[i]``
    inside an envelope); ``None`` means the events are a whole envelope in order.
    The common case is one pass with no allocation per event.
    """
    if len(events) > 1:
        user = events[0].user_id
        for event in events:
            if event.user_id != user:
                n = len({e.user_id for e in events})
                detail = f"envelope holds {n} distinct user ids - at `$.events`"
                rejects.extend(Reject(ENVELOPE_MIXED_USERS, detail, e) for e in events)
                return Decoded([], rejects)
    match = content_id_pattern.fullmatch
    bad_ids = {c for c in {e.content_id for e in events} if match(c) is None}
    if not bad_ids:
        for event in events:
            slack = event.duration_ms + PLAYHEAD_TOLERANCE_MS
            if event.watched_ms > slack or event.position_ms > slack:
                break
            if event.event_time > limit_ms:  # type: ignore[operator]
                break
        else:
            return Decoded(events, rejects)
    kept: list[PlaybackEvent] = []
    for i, event in enumerate(events):
        at = f".events[{i}]" if where is None else where[i]
        slack = event.duration_ms + PLAYHEAD_TOLERANCE_MS
        if event.content_id in bad_ids:
            detail = f"content_id does not match stream.content_id_pattern - at `${at}.content_id`"
            rejects.append(Reject(INVALID_CONTENT_ID, detail, event))
        elif event.position_ms > slack:
            rejects.append(Reject(OUT_OF_RANGE, _beyond("position_ms", at), event))
        elif event.watched_ms > slack:
            rejects.append(Reject(OUT_OF_RANGE, _beyond("watched_ms", at), event))
        elif event.event_time > limit_ms:  # type: ignore[operator]
            rejects.append(Reject(FUTURE_EVENT_TIME, "event_time is later than now + tolerance", event))
        else:
            kept.append(event)
    return Decoded(kept, rejects)


def _beyond(field: str, at: str) -> str:
    return f"Expected `int` <= duration_ms + {PLAYHEAD_TOLERANCE_MS} - at `${at}.{field}`"
