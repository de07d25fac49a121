"""The data export of one viewer (GDPR Art. 15 access, Art. 20 portability): pure parts.

``privrec export USER`` reads what privrec holds about a viewer from Kafka and
Redis (in :mod:`agents.export`) and hands the records to the functions here,
which

* decide which records belong to the viewer (:class:`Selector`: consent and
  erasure requests by raw user id, receipts and interactions by pseudonym,
  stage records by the pseudonym they carry, changelog entries by their key);
* decode and order them (consent history in log order, the latest value per
  key of a changelog, the open windows of a window-state entry);
* assemble the ``export.v1`` document and write it privately (mode 0600).

Nothing here imports Kafka or Redis clients; records are anything with the
attributes of a kafka-python ``ConsumerRecord`` (:class:`LogRecord`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import msgspec

from pipeline.kafka.topics import Table
from pipeline.privacy.consent_history import decode_history
from pipeline.stream.partition import META_KEY, UserEntry, split_key
from pipeline.windows.state import WindowStateError
from pipeline.wire import decode_as, decode_consent
from pipeline.wire.rights import STAGES, ErasureRequest, ErasureStage, Receipt

__all__ = [
    "COMPACTION_NOTE",
    "DENIED_BY_DEFAULT",
    "NOT_EXPORTED",
    "SCHEMA",
    "LogRecord",
    "Selector",
    "assemble",
    "changelog_topics",
    "consent_section",
    "erasure_section",
    "interactions_section",
    "latest_by_key",
    "open_windows",
    "render",
    "stream_consent",
]

SCHEMA = "export.v1"
DENIED_BY_DEFAULT = "no consent record: every purpose is denied by default"
COMPACTION_NOTE = (
    "the consent topic is log-compacted: this is every record still on it for this user, in the "
    "order written; compaction may already have removed older ones (a tombstone removes them all)"
)
NOT_EXPORTED = [
    {
        "what": "records in the Kafka topics playback.raw, playback.redacted, playback.dlq, trainer.dlq and "
        "playback.quarantine (only if enabled)",
        "why": "the event log, kept until each topic's retention deletes it; never read back into state "
        "(the erasure receipt lists them under 'remains')",
    },
    {
        "what": "the live model's user factors for the pseudonyms above",
        "why": "numbers derived from the interactions exported here; they yield the recommendations below",
    },
]

_entry = msgspec.json.Decoder(UserEntry)


class LogRecord(Protocol):
    """What is read of a Kafka record (kafka-python's ``ConsumerRecord`` has these)."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None


def changelog_topics(app_id: str) -> dict[str, str]:
    """The Faust changelog topics of the workers' tables that hold per-viewer state."""
    return {str(table): f"{app_id}-{table}-changelog" for table in (Table.WINDOWS, Table.CONSENT)}


# -- which records are the viewer's ------------------------------------------------------------


class Selector:
    """Decides, per record, whether it is about the viewer (before anything is decoded in full).

    ``pseudonyms``: the viewer's pseudonyms under every configured key, newest first.
    """

    def __init__(self, user_id: str, pseudonyms: Sequence[str]) -> None:
        self.raw_key = user_id.encode("utf-8", "surrogatepass")
        self.pseudonyms = list(pseudonyms)
        self._names = frozenset(self.pseudonyms)
        self._name_keys = frozenset(p.encode() for p in self.pseudonyms)

    def by_user_id(self, key: bytes | None) -> bool:
        """``consent`` and ``erasure`` records: keyed by the raw user id."""
        return key == self.raw_key

    def by_pseudonym(self, key: bytes | None) -> bool:
        """``receipts`` records and the workers' consent table: keyed by pseudonym."""
        return key in self._name_keys

    def interaction(self, key: bytes | None, value: bytes | None) -> bool:
        """``interactions`` records: keyed by pseudonym; a value naming one is kept too.

        A prefilter only: the trainer's rules decide what is held, and the value's
        ``user`` field (not the key) is what they judge.
        """
        if key in self._name_keys:
            return True
        return value is not None and any(k in value for k in self._name_keys)

    def stage(self, value: bytes | None) -> ErasureStage | None:
        """An ``erasure.stages`` record of the viewer (by the pseudonym it carries), else None."""
        try:
            stage = decode_as(value or b"", ErasureStage)
        except Exception:  # not a valid stage record: the trainer ignores it too
            return None
        return stage if stage.pseudonym in self._names else None

    def changelog_key(self, key: bytes | None) -> tuple[int, str] | None:
        """``(partition, pseudonym)`` of a window-state key ``"<partition>/<pseudonym>"`` of the viewer."""
        if not key:
            return None
        try:
            partition, user = split_key(key.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None
        return (partition, user) if user in self._names and user != META_KEY else None


def latest_by_key(
    records: Iterable[LogRecord], keep: Callable[[bytes | None], bool]
) -> dict[bytes, bytes | None]:
    """The latest value per key (None: tombstone) of the records ``keep`` accepts, in log order.

    Records of one key share a partition, so the order within a partition is enough.
    """
    latest: dict[bytes, bytes | None] = {}
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        if r.key is not None and keep(r.key):
            latest[r.key] = r.value
    return latest


# -- sections ----------------------------------------------------------------------------------


def _iso(ms: int | None) -> str | None:
    """ISO time of epoch ms; None when unknown or beyond what a date can say (a producer sets it)."""
    if ms is None or ms < 0:
        return None
    try:
        moment = datetime.fromtimestamp(ms / 1000, UTC)
    except (OverflowError, ValueError, OSError):
        return None
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _consent_entry(r: LogRecord) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "partition": r.partition,
        "offset": r.offset,
        "timestamp": r.timestamp,
        "time": _iso(r.timestamp),
    }
    if r.value is None:
        return entry | {"record": None, "tombstone": True}
    try:
        record = decode_consent(r.value)
    except Exception as exc:  # the workers dead-letter it; it changed nothing
        reason = getattr(exc, "reason", "invalid")
        text = r.value.decode("utf-8", "replace")
        return entry | {"record": None, "invalid": reason, "raw": text, "tombstone": False}
    return entry | {"record": msgspec.to_builtins(record), "tombstone": False}


def consent_section(records: Iterable[LogRecord]) -> dict[str, Any]:
    """Current consent and its history (the viewer's ``consent`` records, any order in)."""
    history = [_consent_entry(r) for r in sorted(records, key=lambda r: (r.partition, r.offset))]
    effective = [h for h in history if "invalid" not in h]  # invalid records change nothing
    current = effective[-1]["record"] if effective else None
    return {
        "current": current,
        "purposes": current["purposes"] if current else None,
        "status": "recorded" if current else DENIED_BY_DEFAULT,
        "history": history,
        "note": COMPACTION_NOTE,
    }


def stream_consent(latest: Mapping[bytes, bytes | None]) -> list[dict[str, Any]]:
    """The workers' consent table entries (key: pseudonym; value: a consent history).

    Decoded by :func:`pipeline.privacy.consent_history.decode_history`, the
    stream's own decoder: ``purposes``/``updated_at`` are the consent in force,
    ``history`` every change kept, ``complete`` whether older ones were dropped.
    """
    out = []
    for key, value in latest.items():
        try:
            history = decode_history(value)
        except ValueError:
            continue
        if history is None:
            continue
        changes = [
            {"updated_at": c.at_ms, "time": _iso(c.at_ms), "purposes": c.purposes.as_dict()}
            for c in history.changes
        ]
        out.append(
            {
                "pseudonym": key.decode(),
                "purposes": history.current.as_dict(),
                "updated_at": history.latest.at_ms,
                "history": changes,
                "complete": history.complete,
            }
        )
    return sorted(out, key=lambda e: e["pseudonym"])


def open_windows(
    latest: Mapping[bytes, bytes | None], selector: Selector, window_size_ms: int | None = None
) -> list[dict[str, Any]]:
    """Open (not yet emitted) windows in the viewer's window-state entries (null: deleted)."""
    out = []
    for key, value in latest.items():
        where = selector.changelog_key(key)
        if where is None or value is None:
            continue
        try:
            windows = list(_entry.decode(value).open_windows())
        except (msgspec.DecodeError, msgspec.ValidationError, WindowStateError):
            continue
        partition, pseudonym = where
        for content_id, start, watched, plays, completed, events, first_ms in windows:
            window: dict[str, Any] = {
                "pseudonym": pseudonym,
                "partition": partition,
                "content_id": content_id,
                "window_start": start,
            }
            if window_size_ms is not None:
                window["window_end"] = start + window_size_ms
            window |= {"watched_ms": watched, "plays": plays, "completed": completed, "events": events}
            if first_ms is not None:  # the time of the window's first event: the viewer's, so theirs to see
                window["first_event_ms"] = first_ms
            out.append(window)
    return sorted(out, key=lambda w: (w["window_start"], w["content_id"], w["pseudonym"]))


def interactions_section(
    held: Iterable[Mapping[str, Any]], read: int, counters: Mapping[str, int]
) -> dict[str, Any]:
    """What the trainer holds (``held``), with how many of the viewer's records it did not admit."""
    records = sorted((dict(r) for r in held), key=lambda r: (r["window_start"], r["content_id"], r["user"]))
    prefix = "interactions_refused_"
    refused = {k[len(prefix) :]: n for k, n in sorted(counters.items()) if k.startswith(prefix) and n}
    return {
        "held": records,
        "records_on_topic": read,
        "refused": refused,
        "rule": "what the trainer holds: personalisation consent at the time, nothing created up to a "
        "withdrawal or an erasure, a re-emitted window replaces its earlier copy",
    }


def _decoded(r: LogRecord, kind: type[Any]) -> dict[str, Any] | None:
    try:
        record = decode_as(r.value or b"", kind)
    except Exception:
        return None
    data: dict[str, Any] = msgspec.to_builtins(record)
    return data | {"timestamp": r.timestamp}


def erasure_section(
    requests: Iterable[LogRecord], stages: Iterable[LogRecord], receipts: Iterable[LogRecord]
) -> dict[str, Any]:
    """The viewer's erasure requests, their stage records and receipts, and where each stands."""
    order = lambda r: (r.timestamp, r.partition, r.offset)  # noqa: E731
    reqs = [d for d in (_decoded(r, ErasureRequest) for r in sorted(requests, key=order)) if d]
    stage_rows = [d for d in (_decoded(r, ErasureStage) for r in sorted(stages, key=order)) if d]
    receipt_rows = [d for d in (_decoded(r, Receipt) for r in sorted(receipts, key=order)) if d]
    status = []
    for request in reqs:
        rid = request["request_id"]
        done = {s["stage"]: s["finished_at"] for s in stage_rows if s["request_id"] == rid}
        receipt = next((r for r in receipt_rows if r["request_id"] == rid), None)
        if receipt is not None:
            done = {**receipt["stages"], **done}
        waiting = [s for s in STAGES if s not in done]
        state = "complete" if receipt else ("awaiting receipt" if not waiting else "in progress")
        status.append({"request_id": rid, "state": state, "finished": done, "waiting_for": waiting})
    return {"requests": reqs, "stages": stage_rows, "receipts": receipt_rows, "status": status}


# -- the document ------------------------------------------------------------------------------


def assemble(
    *,
    user_id: str,
    pseudonyms: Sequence[str],
    generated_at_ms: int,
    consent: dict[str, Any],
    erasure: dict[str, Any],
    interactions: dict[str, Any],
    windows: list[dict[str, Any]],
    recommendations: dict[str, Any],
    controls: dict[str, Any],
    sources: dict[str, Any],
) -> dict[str, Any]:
    """The ``export.v1`` document (plain JSON types, sections in a fixed order)."""
    return {
        "schema": SCHEMA,
        "generated_at": _iso(generated_at_ms),
        "generated_at_ms": generated_at_ms,
        "user_id": user_id,
        "pseudonyms": list(pseudonyms),
        "consent": consent,
        "erasure": erasure,
        "interactions": interactions,
        "open_windows": windows,
        "recommendations": recommendations,
        "controls": controls,
        "sources": sources,
        "not_exported": NOT_EXPORTED,
    }


def render(document: Mapping[str, Any]) -> str:
    """The document as JSON text (UTF-8 safe, indented, one trailing newline)."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
