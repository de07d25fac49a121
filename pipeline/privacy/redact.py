"""Allow-list redaction of playback events: the one function the stream uses.

:func:`redact_event` projects a validated ``playback.v1`` event onto
``playback.redacted.v1``: it *builds* a :class:`~pipeline.wire.RedactedEvent`
from the allowed fields instead of deleting the forbidden ones, so a field
added to the raw schema later can never leak by default (the struct cannot
hold it). :func:`removed_field_count` counts what one event lost, for the
``privrec_redacted_fields_total`` metric.

Records that failed validation have no trustworthy shape and are never
redacted into a payload: :mod:`pipeline.privacy.deadletter` keeps only their
field names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import msgspec

from pipeline.privacy.consent import Decision, Purposes
from pipeline.privacy.consent_history import ConsentHistory, decide_at
from pipeline.wire import PlaybackEvent, RedactedEvent
from pipeline.wire import Purposes as WirePurposes
from pipeline.wire.inbound import Client

__all__ = [
    "ALLOWED_FIELDS",
    "REDACTED_SCHEMA",
    "Redaction",
    "redact_by_consent",
    "redact_event",
    "removed_field_count",
]

REDACTED_SCHEMA = "playback.redacted.v1"

ALLOWED_FIELDS: tuple[str, ...] = tuple(f.name for f in msgspec.structs.fields(RedactedEvent))
"""Every field of a redacted record (besides its ``schema`` tag); nothing else is ever emitted."""

_COPIED = frozenset(ALLOWED_FIELDS)
_EVENT_FIELDS = tuple(f.name for f in msgspec.structs.fields(PlaybackEvent) if f.name != "client")
_CLIENT_FIELDS = tuple(f.name for f in msgspec.structs.fields(Client))
_ALWAYS_REMOVED = sum(name not in _COPIED for name in (*_EVENT_FIELDS, *_CLIENT_FIELDS))
"""Raw fields never copied (``user_id`` included: the pseudonym replaces it), optional ones included."""
_OPTIONAL = tuple(f.name for f in msgspec.structs.fields(PlaybackEvent) if f.default is None)


def redact_event(event: PlaybackEvent, pseudonym: str, purposes: WirePurposes) -> RedactedEvent:
    """Project ``event`` onto the redacted record: the pseudonym, the allowed fields, the purposes.

    ``purposes`` is the consent in force (``Decision.purposes``: advertising is
    already off under GPC).
    """
    client = event.client
    return RedactedEvent(
        user=pseudonym,
        content_id=event.content_id,
        event_type=event.event_type,
        position_ms=event.position_ms,
        duration_ms=event.duration_ms,
        watched_ms=event.watched_ms,
        event_time=event.event_time,  # type: ignore[arg-type]  # epoch ms once decoded
        device_class=client.device_class,
        country=client.country,
        purposes=purposes,
    )


def removed_field_count(event: PlaybackEvent) -> int:
    """Fields of ``event`` that do not reach its redacted record (ids, client details, free text)."""
    return _ALWAYS_REMOVED - sum(1 for name in _OPTIONAL if getattr(event, name) is None)


@dataclass
class Redaction:
    """One user's events after consent and redaction: what passes, and what was dropped why."""

    redacted: list[RedactedEvent] = field(default_factory=list)
    #: input fields that did not reach the redacted records (a metric)
    removed_fields: int = 0
    #: events dropped, by the consent decision's reason
    dropped: dict[str, int] = field(default_factory=dict)


def redact_by_consent(
    events: Sequence[PlaybackEvent],
    pseudonym: str,
    history: ConsentHistory | None,
    *,
    default: Purposes | None,
) -> Redaction:
    """Judge each event by the consent in force at its time (and now), then redact or drop it.

    Pure: the stream's hot path. Decisions are made once per (GPC flag, consent
    epoch of the event's time), since events of one epoch get the same purposes.
    """
    out = Redaction()
    decisions: dict[tuple[bool, int], tuple[Decision, WirePurposes]] = {}
    for ev in events:
        t: int = ev.event_time  # type: ignore[assignment]  # epoch ms once decoded
        epoch = history.epoch(t) if history is not None else 0
        decided = decisions.get((ev.gpc, epoch))
        if decided is None:
            d = decide_at(history, t, gpc=ev.gpc, default=default)
            decided = decisions[ev.gpc, epoch] = (d, d.purposes.to_wire())
        if decided[0].action == "drop":
            out.dropped[decided[0].reason] = out.dropped.get(decided[0].reason, 0) + 1
            continue
        out.redacted.append(redact_event(ev, pseudonym, decided[1]))
        out.removed_fields += removed_field_count(ev)
    return out
