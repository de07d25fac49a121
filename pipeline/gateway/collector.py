"""``POST /v1/events``'s pure core: a request body and a viewer → events to produce, errors by index.

The body is a ``playback.batch.v1`` envelope (``{"events": [...]}``; its
``schema`` tag may be left out). The viewer comes from the token, never from the
body: an event may leave ``user_id`` out (the token's subject is filled in) or
name the same viewer in any form that canonicalises to the subject; an event
naming anyone else is refused at its index (``other_user``). Everything else is
the wire contract's own per-event validation (:func:`pipeline.wire.decode_raw`),
not a second validator: the whole batch is decoded in one call, and only when
something was rejected is each event decoded on its own, so every refusal gets
its index.

Nothing here raises for bad input; every refusal has a reason and a JSON path,
never a value.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

import msgspec

from pipeline.privacy.identity import canonical_form
from pipeline.wire import (
    DEFAULT_CONTENT_ID_PATTERN,
    FUTURE_EVENT_TIME,
    INVALID_JSON,
    MAX_JSON_DEPTH,
    SCHEMA_VIOLATION,
    TOO_DEEP,
    UNKNOWN_SCHEMA,
    PlaybackBatch,
    PlaybackEvent,
    decode_raw,
    encode,
)
from pipeline.wire.depth import too_deep
from pipeline.wire.inbound import PLAYBACK, PLAYBACK_BATCH

__all__ = [
    "EMPTY_BATCH",
    "OTHER_USER",
    "TOO_MANY_EVENTS",
    "Collected",
    "EventError",
    "collect",
    "envelopes",
]

OTHER_USER = "other_user"
"""An event's ``user_id`` names someone other than the token's viewer."""
TOO_MANY_EVENTS = "too_many_events"
"""More events than ``gateway.max_events`` (HTTP 413)."""
EMPTY_BATCH = "empty_batch"
"""``events`` is an empty array (HTTP 400)."""

_generic = msgspec.json.Decoder()
_encode_json = msgspec.json.Encoder().encode
_AT = re.compile(r"at `\$([^`]*)`")


@dataclass(frozen=True, slots=True)
class EventError:
    """One refused event (``index``) or the whole body (``index`` None); ``path`` is a JSON path."""

    index: int | None
    reason: str
    path: str


@dataclass(frozen=True, slots=True)
class Collected:
    """The outcome of :func:`collect`.

    ``status`` is what the HTTP reply should say: 202 when at least one event
    is accepted, 422 when the body was a well-formed batch and none was, 400
    when the body is not a batch at all, 413 for too many events.
    """

    status: int
    events: list[PlaybackEvent] = field(default_factory=list)
    errors: list[EventError] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return len(self.events)


def _whole(status: int, reason: str, path: str = "$") -> Collected:
    return Collected(status, [], [EventError(None, reason, path)])


def collect(
    body: bytes,
    *,
    subject: str,
    casefold: bool,
    max_events: int,
    now_ms: int,
    future_tolerance_ms: int,
    content_id_pattern: re.Pattern[str] = DEFAULT_CONTENT_ID_PATTERN,
) -> Collected:
    """Validate a request body for viewer ``subject`` (already canonical); see the module docstring."""
    if too_deep(body, MAX_JSON_DEPTH):
        return _whole(400, TOO_DEEP)
    try:
        raw = _generic.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return _whole(400, INVALID_JSON)
    if raw.__class__ is not dict:
        return _whole(400, SCHEMA_VIOLATION)
    if raw.get("schema", PLAYBACK_BATCH) != PLAYBACK_BATCH:
        return _whole(400, UNKNOWN_SCHEMA, "$.schema")
    items = raw.get("events")
    if items.__class__ is not list:
        return _whole(400, SCHEMA_VIOLATION, "$.events")
    if not items:
        return _whole(400, EMPTY_BATCH, "$.events")
    if len(items) > max_events:
        return _whole(413, TOO_MANY_EVENTS, "$.events")

    errors: list[EventError] = []
    indices: list[int] = []
    candidates: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        at = f"$.events[{i}]"
        if item.__class__ is not dict:
            errors.append(EventError(i, SCHEMA_VIOLATION, at))
            continue
        if item.setdefault("schema", PLAYBACK) != PLAYBACK:
            errors.append(EventError(i, UNKNOWN_SCHEMA, at + ".schema"))
            continue
        named = item.get("user_id")
        if named is not None:
            if named.__class__ is not str:
                errors.append(EventError(i, SCHEMA_VIOLATION, at + ".user_id"))
                continue
            if named != subject and canonical_form(named, casefold=casefold) != subject:
                errors.append(EventError(i, OTHER_USER, at + ".user_id"))
                continue
        item["user_id"] = subject
        indices.append(i)
        candidates.append(item)

    events: list[PlaybackEvent] = []
    if candidates:
        checks = functools.partial(
            decode_raw,
            now_ms=now_ms,
            future_tolerance_ms=future_tolerance_ms,
            content_id_pattern=content_id_pattern,
        )
        envelope = _encode_json({"schema": PLAYBACK_BATCH, "events": candidates})
        decoded = checks(envelope, max_bytes=len(envelope))
        if not decoded.rejects:
            events = decoded.events
        else:  # find which: each event on its own
            for i, item in zip(indices, candidates, strict=True):
                one = _encode_json(item)
                single = checks(one, max_bytes=len(one))
                if single.events:
                    events.extend(single.events)
                else:
                    reject = single.rejects[0]
                    errors.append(EventError(i, reject.reason, _path(i, reject.reason, reject.detail)))
    errors.sort(key=lambda e: e.index if e.index is not None else -1)
    return Collected(202 if events else 422, events, errors)


def _path(index: int, reason: str, detail: str) -> str:
    if reason == FUTURE_EVENT_TIME:
        suffix = ".event_time"
    else:
        match = _AT.search(detail)
        suffix = match.group(1) if match else ""
    return f"$.events[{index}]{suffix}"


def envelopes(events: list[PlaybackEvent], max_bytes: int) -> list[bytes]:
    """``events`` as ``playback.batch.v1`` values no larger than ``max_bytes`` each.

    One envelope in practice; a batch whose encoding outgrows the worker's
    ``stream.max_message_bytes`` (filled-in ``user_id``s add bytes) is split in
    halves rather than dead-lettered as oversize downstream.
    """
    if not events:
        return []
    value = encode(PlaybackBatch(events=events))
    if len(value) <= max_bytes or len(events) == 1:
        return [value]
    half = len(events) // 2
    return envelopes(events[:half], max_bytes) + envelopes(events[half:], max_bytes)
