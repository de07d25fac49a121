"""Emitter SDK for playback clients and replays: validate, key by user, batch, send.

    emitter = Emitter(producer, topic="privrec.playback.raw")
    emitter.emit(event_dict)        # validated now; batched per user
    emitter.flush()                 # sends envelopes, waits for acknowledgements
    emitter.close()

Events of one user are buffered and sent as ``playback.batch.v1`` envelopes of
at most ``max_batch`` events (a single event is sent bare). Envelopes are keyed
by the canonical form of the user id (:func:`pipeline.privacy.identity.user_key`;
pass ``casefold_user_ids`` as configured in ``pseudonym.casefold_user_ids``), so
a user's events stay in order on the partition of their consent. A buffer
is flushed when full, when it is older than ``linger_ms``, or on ``flush()``.
Delivery errors surface as :class:`~pipeline.errors.DeliveryError` from
``flush()``/``close()``; invalid events raise
:class:`~pipeline.errors.ValidationFailed` from ``emit()`` and are never sent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from pipeline.errors import DeliveryError, ValidationFailed
from pipeline.privacy.identity import DEFAULT_CASEFOLD_USER_IDS, user_key
from pipeline.wire import MAX_BATCH_EVENTS, PlaybackEvent, safe_detail

__all__ = ["Emitter"]

log = logging.getLogger(__name__)

_json = msgspec.json.Encoder()


class Emitter:
    """Batches validated playback events per user onto ``playback.raw``.

    ``producer`` is a ``kafka.KafkaProducer`` (passed in, not created here).
    """

    def __init__(
        self,
        producer: Any,
        topic: str,
        *,
        max_batch: int = MAX_BATCH_EVENTS,
        linger_ms: int = 2_000,
        validate: bool = True,
        casefold_user_ids: bool = DEFAULT_CASEFOLD_USER_IDS,
    ) -> None:
        if not 1 <= max_batch <= MAX_BATCH_EVENTS:
            raise ValueError(f"max_batch must be within 1..{MAX_BATCH_EVENTS}")
        self._producer = producer
        self._topic = topic
        self._max_batch = max_batch
        self._linger_ms = linger_ms
        self._validate = validate
        self._casefold = casefold_user_ids
        self._buffers: dict[str, list[Mapping[str, Any]]] = {}
        self._first_at: dict[str, float] = {}
        self._pending: list[Any] = []
        self.sent_events = 0
        self.sent_messages = 0

    def emit(self, event: Mapping[str, Any]) -> None:
        """Validate one ``playback.v1`` event (a dict) and buffer it for its user."""
        if self._validate:
            try:
                msgspec.convert(event, PlaybackEvent)
            except msgspec.ValidationError as exc:
                raise ValidationFailed("schema_violation", safe_detail(str(exc))) from None
        user = event["user_id"]
        user_key(user, casefold=self._casefold)  # a blank id raises ValidationFailed here
        buf = self._buffers.get(user)
        if buf is None:
            buf = self._buffers[user] = []
            self._first_at[user] = time.monotonic()
        buf.append(event)
        if len(buf) >= self._max_batch or (time.monotonic() - self._first_at[user]) * 1000 >= self._linger_ms:
            self._send_user(user)

    def emit_batch(self, user_id: str, events: Iterable[Mapping[str, Any]]) -> None:
        """Buffer several events of one user (e.g. a player's flushed buffer)."""
        events = list(events)
        if any(event.get("user_id") != user_id for event in events):
            raise ValidationFailed("envelope_mixed_users", "every event must belong to user_id")
        for event in events:
            self.emit(event)

    def send_user(self, user_id: str) -> None:
        """Send what is buffered for ``user_id`` now (keeps per-user order)."""
        if user_id in self._buffers:
            self._send_user(user_id)

    def flush(self, timeout_s: float = 30.0) -> None:
        """Send every buffer and wait until the broker acknowledged everything."""
        for user in list(self._buffers):
            self._send_user(user)
        self._producer.flush(timeout=timeout_s)
        errors = 0
        for future in self._pending:
            try:
                future.get(timeout=timeout_s)
            except Exception as exc:  # kafka-python raises its own KafkaError subclasses
                errors += 1
                last = type(exc).__name__
        self._pending.clear()
        if errors:
            raise DeliveryError(f"{errors} message(s) to {self._topic} were not acknowledged ({last})")

    def close(self, timeout_s: float = 30.0) -> None:
        try:
            self.flush(timeout_s)
        finally:
            self._producer.close(timeout=timeout_s)

    def _send_user(self, user: str) -> None:
        events = self._buffers.pop(user)
        self._first_at.pop(user, None)
        key = user_key(user, casefold=self._casefold)
        for start in range(0, len(events), self._max_batch):
            chunk = events[start : start + self._max_batch]
            if len(chunk) == 1:
                value = _json.encode(chunk[0])
            else:
                value = _json.encode({"schema": "playback.batch.v1", "events": chunk})
            self._pending.append(self._producer.send(self._topic, key=key, value=value))
            self.sent_messages += 1
            self.sent_events += len(chunk)
        if len(self._pending) > 10_000:  # bound memory: resolve what is already done
            self._pending = [f for f in self._pending if not f.is_done]
