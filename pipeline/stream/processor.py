"""The privacy stream as pure functions of messages: consent, redaction, windows, dead letters.

The Faust agent hands every message of ``playback.raw``, ``consent`` and
``erasure`` (co-partitioned by raw user id) to :class:`StreamProcessor` and
performs the returned :class:`Effects`: produce, wait for acknowledgement of
the interactions, then write state. Nothing here touches Kafka, so every rule
is tested without a broker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import msgspec

from pipeline.errors import ValidationFailed
from pipeline.privacy.consent import Purposes
from pipeline.privacy.consent_history import (
    Change,
    ConsentHistory,
    decode_history,
    encode_history,
    record_change,
)
from pipeline.privacy.deadletter import dead_letter, quarantine_key
from pipeline.privacy.identity import INVALID_USER_ID
from pipeline.privacy.pseudonym import Pseudonymizer
from pipeline.privacy.redact import redact_by_consent
from pipeline.stream.control import decode_control
from pipeline.stream.counters import StreamCounters
from pipeline.stream.effects import Effects, StreamConfig
from pipeline.stream.partition import PartitionState, split_key
from pipeline.wire import (
    DlqSource,
    Interaction,
    RedactedBatch,
    RedactedEvent,
    decode_as,
    decode_consent,
    decode_raw,
    encode,
)
from pipeline.wire.decode import Decoded
from pipeline.wire.inbound import ConsentRecord, PlaybackEvent
from pipeline.wire.rights import ErasureRequest, ErasureStage

__all__ = ["Effects", "StreamConfig", "StreamProcessor"]

log = logging.getLogger(__name__)

KEY_MISMATCH = "key_mismatch"
INVALID_CONSENT = "invalid_consent"
INVALID_CONTROL = "invalid_control"
INVALID_ERASURE = "invalid_erasure"


class StreamProcessor:
    """Consent + redaction + windows for the partitions this worker holds."""

    def __init__(
        self,
        config: StreamConfig,
        pseudonymizer: Pseudonymizer,
        *,
        clock: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        counters: StreamCounters | None = None,
    ) -> None:
        self.config = config
        self.pz = pseudonymizer
        self.clock = clock
        self.counters = counters if counters is not None else StreamCounters()
        self.partitions: dict[int, PartitionState] = {}

    # -- partitions ------------------------------------------------------------

    def load(self, partition: int, items: Iterable[tuple[str, bytes]]) -> PartitionState:
        """(Re)build a partition's state from table items ``(key, value)`` of that partition."""
        mine = []
        for key, value in items:
            p, user = split_key(key)
            if p == partition:
                mine.append((user, value))
        state = PartitionState.restore(partition, self.config.window, mine)
        self.partitions[partition] = state
        log.info(
            "partition %d: window state restored (%d users, %d open windows)",
            partition,
            state.users,
            state.engine.open_count,
        )
        return state

    def drop(self, partitions: Iterable[int]) -> None:
        for p in partitions:
            self.partitions.pop(p, None)

    # -- playback.raw ------------------------------------------------------------

    def on_playback(
        self,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        consent_of: Callable[[str], bytes | None],
    ) -> Effects:
        """One message of ``playback.raw``: an event or a one-user envelope.

        Decode (rejects dead-lettered), check the key, judge each event's consent
        and redact, then window what personalisation covers.
        """
        fx = Effects()
        source = DlqSource(topic=self.config.raw_topic, partition=partition, offset=offset)
        now = self.clock()
        decoded = decode_raw(
            value,
            max_bytes=self.config.max_message_bytes,
            now_ms=now,
            future_tolerance_ms=self.config.future_tolerance_ms,
            content_id_pattern=self.config.content_id_pattern,
        )
        if decoded.rejects:
            self._reject(fx, source, decoded, value, now)
        events = decoded.events
        if not events:
            return fx
        user_id = self._keyed_user(fx, source, key, events, value, now)
        if user_id is None:
            return fx
        self.counters["received"] += len(events)
        pseudonym = self.pz.pseudonym(user_id)
        redacted = self._redact(events, pseudonym, decode_history(consent_of(pseudonym)))
        if redacted:
            self._publish_redacted(fx, pseudonym, redacted)
            self._window(fx, partition, offset, pseudonym, redacted)
        return fx

    def _reject(
        self, fx: Effects, source: DlqSource, decoded: Decoded, value: bytes | None, now: int
    ) -> None:
        """Dead-letter every reject of a message (its raw bytes quarantined once, when enabled)."""
        parsed = len(decoded.events) + sum(r.event is not None for r in decoded.rejects)
        quarantined = self._quarantine(fx, value)
        for reject in decoded.rejects:
            self._dead_letter(
                fx,
                source,
                reject.reason,
                reject.detail,
                event=reject.event,
                value=value,
                events=parsed,
                quarantined=quarantined,
                now=now,
            )

    def _keyed_user(
        self,
        fx: Effects,
        source: DlqSource,
        key: bytes | None,
        events: list[PlaybackEvent],
        value: bytes | None,
        now: int,
    ) -> str | None:
        """The canonical user of the message, or None after dead-lettering a blank id or a key mismatch.

        The partition (and so the consent lookup) is decided by the key: a mismatch is refused.
        """
        user_id = self.pz.canonical(events[0].user_id)
        if user_id and (key is None or key == user_id.encode("utf-8", "surrogatepass")):
            return user_id
        for ev in events:
            self._dead_letter(
                fx,
                source,
                KEY_MISMATCH if user_id else INVALID_USER_ID,
                "",
                event=ev,
                value=value,
                events=len(events),
                now=now,
            )
        return None

    def _redact(
        self, events: list[PlaybackEvent], pseudonym: str, history: ConsentHistory | None
    ) -> list[RedactedEvent]:
        """:func:`~pipeline.privacy.redact.redact_by_consent`, counted."""
        out = redact_by_consent(events, pseudonym, history, default=self.config.consent_default)
        c = self.counters
        for reason, n in out.dropped.items():
            c["dropped:" + reason] += n
        if out.redacted:
            c["redacted"] += len(out.redacted)
            c["redacted_fields"] += out.removed_fields
        return out.redacted

    @staticmethod
    def _publish_redacted(fx: Effects, pseudonym: str, redacted: list[RedactedEvent]) -> None:
        """One ``playback.redacted`` message per input message, keyed by the pseudonym."""
        key_out = pseudonym.encode()
        if len(redacted) == 1:
            fx.redacted.append((key_out, encode(redacted[0])))
        else:
            fx.redacted.append((key_out, encode(RedactedBatch(redacted))))

    def _window(
        self, fx: Effects, partition: int, offset: int, pseudonym: str, redacted: list[RedactedEvent]
    ) -> None:
        """Window the events personalisation covers (once per offset); emit what closes."""
        c = self.counters
        windowed = [r for r in redacted if r.purposes.personalization]
        c["analytics_only"] += len(redacted) - len(windowed)
        if not windowed:
            return
        state = self._state(partition)
        if state.already_applied(pseudonym, offset):
            c["replayed"] += len(windowed)
            return
        closed, writes, late = state.add(pseudonym, offset, windowed)
        c["windowed"] += len(windowed) - late
        if late:
            c["late"] += late
        self._emit(fx, closed)
        fx.state.extend(writes)

    def on_control(self, partition: int, offset: int, value: bytes) -> Effects:
        """A ``close_windows`` or ``idle`` marker for this partition."""
        fx = Effects()
        source = DlqSource(topic=self.config.raw_topic, partition=partition, offset=offset)
        try:
            control = decode_control(value)
        except msgspec.ValidationError:
            self._dead_letter(fx, source, INVALID_CONTROL, "", value=value, now=self.clock())
            return fx
        state = self._state(partition)
        if control.command == "close_windows":
            closed, writes = state.close_all()
        else:
            closed, writes = state.on_idle(self.clock(), self.config.idle_close_ms)
        if closed:
            log.info("partition %d: %s closed %d windows", partition, control.command, len(closed))
        self._emit(fx, closed)
        fx.state.extend(writes)
        return fx

    # -- consent ---------------------------------------------------------------------

    def on_consent(
        self,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        consent_of: Callable[[str], bytes | None] = lambda _: None,
    ) -> Effects:
        """A consent update (or tombstone) keyed by raw user id.

        A record joins the user's consent history (``consent_of`` gives the
        table's value) ordered by ``updated_at``, ties by ``offset``: only one
        ordered after the held latest is in force now, so a stale grant never
        undoes a newer revoke. A tombstone withdraws everything and deletes the
        history (see :mod:`pipeline.privacy.consent_history`).
        """
        fx = Effects()
        source = DlqSource(topic=self.config.consent_topic, partition=partition, offset=offset)
        now = self.clock()
        try:
            record = decode_consent(value)
        except Exception as exc:  # ValidationFailed: the reason is safe to keep
            self._dead_letter(
                fx,
                source,
                INVALID_CONSENT,
                getattr(exc, "detail", ""),
                user_id=_key_text(key),
                value=value,
                quarantined=self._quarantine(fx, value),
                now=now,
            )
            return fx
        user_id = self._consent_user(fx, source, key, record, value, now)
        if user_id is None:
            return fx
        pseudonym = self.pz.pseudonym(user_id)
        if record is None:
            fx.consent.append((pseudonym, None))
            self.counters["consent:withdrawn"] += 1
            personalize = False
        else:
            change = Change(record.updated_at_ms, offset, Purposes.from_wire(record.purposes))
            held = decode_history(consent_of(pseudonym))
            history, in_force = record_change(held, change)
            if history is held:  # a redelivery, or older than a history's known past
                self.counters["consent:ignored"] += 1
            else:
                fx.consent.append((pseudonym, encode_history(history)))
                self.counters["consent:updated" if in_force else "consent:stale"] += 1
            personalize = history.current.analytics and history.current.personalization
        if not personalize:
            # Art. 21: without personalisation consent, nothing of the user's profile stays open.
            dropped, writes = self._state(partition).purge_user(pseudonym)
            if dropped:
                self.counters["windows_purged"] += dropped
                fx.state.extend(writes)
        return fx

    def _consent_user(
        self,
        fx: Effects,
        source: DlqSource,
        key: bytes | None,
        record: ConsentRecord | None,
        value: bytes | None,
        now: int,
    ) -> str | None:
        """The canonical user a consent record is for, or None after dead-lettering a bad key.

        A tombstone names its user by the key alone; a record by its ``user_id``,
        which must match the key (the key decides the partition and so the table).
        """
        if record is None:
            if not key:
                self._dead_letter(fx, source, INVALID_CONSENT, "", now=now)
                return None
            user_id = self.pz.canonical(key.decode("utf-8", "replace"))
            if key != user_id.encode("utf-8", "surrogatepass"):
                self._dead_letter(fx, source, KEY_MISMATCH, "", user_id=user_id or None, now=now)
                return None
            return user_id
        user_id = self.pz.canonical(record.user_id)
        if user_id and (key is None or key == user_id.encode("utf-8", "surrogatepass")):
            return user_id
        self._dead_letter(
            fx,
            source,
            KEY_MISMATCH if user_id else INVALID_USER_ID,
            "",
            user_id=user_id or None,
            value=value,
            events=0,
            now=now,
        )
        return None

    # -- erasure -----------------------------------------------------------------------

    def on_erasure(self, partition: int, offset: int, key: bytes | None, value: bytes | None) -> Effects:
        """An erasure request keyed by raw user id (Art. 17): the stream's part of it.

        From this message on the user's events are treated as having no
        consent (their consent entry is removed here and tombstoned on the
        consent topic), and every per-user entry of this partition's window
        state goes: open windows without emitting, replay offsets, the entry
        itself, under every configured key's pseudonym. The ``stream`` stage
        confirmation is produced after the state writes.
        """
        fx = Effects()
        source = DlqSource(topic=self.config.erasure_topic, partition=partition, offset=offset)
        now = self.clock()
        try:
            if not key:
                raise ValidationFailed(INVALID_ERASURE, "erasure request without a key")
            request = decode_as(value or b"", ErasureRequest)
        except ValidationFailed as exc:
            self._dead_letter(
                fx,
                source,
                INVALID_ERASURE,
                exc.detail,
                user_id=_key_text(key),
                value=value,
                quarantined=self._quarantine(fx, value),
                now=now,
            )
            return fx
        user_id = self.pz.canonical(key.decode("utf-8", "replace"))
        if key != user_id.encode("utf-8", "surrogatepass"):
            # Keyed elsewhere than the viewer's partition: confirming here would be a false receipt.
            self._dead_letter(fx, source, KEY_MISMATCH, "", user_id=user_id or None, value=value, now=now)
            return fx
        state = self._state(partition)
        purged = 0
        names = self.pz.candidates(user_id)
        self.pz.forget(user_id)
        for pseudonym in names:
            purged += len(list(state.open_windows_of(pseudonym)))
            fx.state.extend(state.forget_user(pseudonym))
            fx.consent.append((pseudonym, None))
        self.counters["erasures"] += 1
        if purged:
            self.counters["windows_purged"] += purged
        stage = ErasureStage(
            request_id=request.request_id,
            pseudonym=names[0],
            stage="stream",
            requested_at=request.requested_at,
            finished_at=now,
            detail={"windows_purged": purged},
        )
        fx.after.append(("consent", key, None))
        fx.after.append(("stages", request.request_id.encode(), encode(stage)))
        return fx

    def internal_error(self, topic: str, partition: int, offset: int, kind: str) -> Effects:
        """A message that raised unexpectedly: dead-letter its coordinates, keep going."""
        fx = Effects()
        self._dead_letter(
            fx,
            DlqSource(topic=topic, partition=partition, offset=offset),
            "internal_error",
            "",
            now=self.clock(),
        )
        return fx

    # -- helpers -----------------------------------------------------------------------

    def _state(self, partition: int) -> PartitionState:
        state = self.partitions.get(partition)
        if state is None:
            state = self.partitions[partition] = PartitionState(partition, self.config.window)
        return state

    def _emit(self, fx: Effects, closed: list[Interaction]) -> None:
        for w in closed:
            fx.interactions.append((w.user.encode(), encode(w)))
        if closed:
            self.counters["windows_emitted"] += len(closed)

    def _quarantine(self, fx: Effects, value: bytes | None) -> str | None:
        """With ``dlq_include_raw``: queue the raw value for the quarantine topic; its key, else None."""
        if not self.config.dlq_include_raw or value is None:
            return None
        key = quarantine_key()
        fx.quarantine.append((key.encode(), value))
        return key

    def _dead_letter(
        self,
        fx: Effects,
        source: DlqSource,
        reason: str,
        detail: str,
        *,
        event: Any = None,
        user_id: str | None = None,
        value: bytes | None = None,
        events: int | None = None,
        quarantined: str | None = None,
        now: int,
    ) -> None:
        """Queue a ``dlq.v2`` record: an allow-list of reason, path, field names and coordinates."""
        record = dead_letter(
            reason=reason,
            source=source,
            at=now,
            detail=detail,
            event=event,
            user_id=user_id,
            pseudonymizer=self.pz,
            value_bytes=len(value) if value is not None else 0,
            events=events,
            quarantine=quarantined,
        )
        self.counters["dlq:" + record.reason] += 1
        fx.dlq.append((None, encode(record)))


def _key_text(key: bytes | None) -> str | None:
    """A record key as the raw user id it should be, or None when it is not UTF-8 text."""
    if not key:
        return None
    try:
        return key.decode("utf-8")
    except UnicodeDecodeError:
        return None
