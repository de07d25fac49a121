"""What the rights routes read and write in Kafka and Redis (blocking; the routes run it in threads).

Consent is read the way ``privrec consent --show`` reads it: the viewer's
partition of the compacted ``consent`` topic, keeping the last record under
their key (a tombstone: no record). An erasure request's status comes from
the ``erasure.stages`` partition of its request id and the ``receipts``
partition of the viewer's pseudonym; whose request it is comes from the
pseudonym those records carry, or, before any stage has finished, from the
``erasure`` partition of the viewer's key (the request is keyed by it).
Every read is one partition, up to its true end, under a deadline.

Nothing here logs an id or a value: only topics, partitions and counts.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import msgspec

from agents.compat import KafkaPartitioner
from pipeline.errors import ServiceUnavailable
from pipeline.kafka.end_offsets import probe_end_offsets
from pipeline.kafka.offsets import send_acked
from pipeline.kafka.topics import Topic
from pipeline.keys import pseudonymizer
from pipeline.privacy.consent import Purposes
from pipeline.privacy.identity import canonical_user_id, user_key
from pipeline.rights.requests import send_erasure
from pipeline.services.connect import Endpoints, kafka_consumer, kafka_producer, redis_client
from pipeline.serving.controls import Controls, get_controls, set_controls
from pipeline.serving.layout import Layout
from pipeline.settings import Settings
from pipeline.sources import consent_record
from pipeline.wire import decode_as, decode_consent
from pipeline.wire.rights import ErasureRequest, ErasureStage, Receipt

__all__ = ["RightsStore"]

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 10.0
"""Deadline of one partition read (a compacted consent partition, one stage partition)."""
_CACHE = 4096  # request ids remembered per process (owner pseudonym, final receipts)


def _decoder(kind: type[Any]) -> Callable[[bytes], Any]:
    return lambda value: decode_as(value, kind)


class RightsStore:
    """A viewer's consent, controls, erasure requests and export, by canonical user id.

    Clients are made from ``endpoints`` on first use and closed by :meth:`close`.
    Methods are thread-safe (the Kafka consumer is shared under a lock).
    """

    def __init__(self, settings: Settings, endpoints: Endpoints, *, clock: Callable[[], float] = time.time):
        self.settings = settings
        self.endpoints = endpoints
        self.layout = Layout.from_settings(settings)
        self.pz = pseudonymizer(settings)
        self.clock = clock
        self._casefold = settings.pseudonym.casefold_user_ids
        self._lock = threading.Lock()
        self._producer: Any = None
        self._consumer: Any = None
        self._redis: Any = None
        self._owner: OrderedDict[str, str] = OrderedDict()  # request id -> newest pseudonym
        self._receipts: OrderedDict[str, dict[str, Any]] = OrderedDict()

    # -- clients -------------------------------------------------------------------------

    def _kafka_producer(self) -> Any:
        with self._lock:
            if self._producer is None:
                self._producer = kafka_producer(self.endpoints, client_id="privrec-gateway-rights")
            return self._producer

    def redis(self) -> Any:
        if self._redis is None:
            self._redis = redis_client(self.endpoints)
        return self._redis

    def close(self) -> None:
        for client in (self._producer, self._consumer, self._redis):
            if client is not None:
                try:
                    client.close()
                except Exception:  # closing is best effort
                    log.warning("rights store: a client did not close cleanly")
        self._producer = self._consumer = self._redis = None

    def canonical(self, user_id: str) -> str:
        return canonical_user_id(user_id, casefold=self._casefold)

    def _partition(self, key: bytes) -> int:
        every = list(range(self.settings.partitions))
        return KafkaPartitioner()(key, every, every)

    def _read(self, topic: str, key: bytes, timeout_s: float = READ_TIMEOUT_S) -> list[Any]:
        """Every record under ``key`` in its partition of ``topic``, in log order."""
        from kafka import TopicPartition

        tp = TopicPartition(topic, self._partition(key))
        out: list[Any] = []
        with self._lock:
            if self._consumer is None:
                self._consumer = kafka_consumer(self.endpoints, "gateway", unique=True)
            consumer = self._consumer
            consumer.assign([tp])
            consumer.seek_to_beginning(tp)
            ends = consumer.end_offsets([tp])
            end = probe_end_offsets(self.endpoints.kafka_bootstrap, ends, **self.endpoints.kafka_options)[tp]
            deadline = time.monotonic() + timeout_s
            while consumer.position(tp) < end:
                if time.monotonic() > deadline:
                    log.warning("rights store: %s[%d] not read to its end in time", topic, tp.partition)
                    raise ServiceUnavailable(f"kafka: {topic} not read within {timeout_s:g} s")
                for records in consumer.poll(timeout_ms=200).values():
                    out.extend(r for r in records if r.key == key)
        return out

    def _values(self, topic: str, key: bytes, decode: Callable[[bytes], Any]) -> list[Any]:
        """Decoded values under ``key`` (None: a tombstone); unreadable ones are skipped."""
        out = []
        for r in self._read(topic, key):
            if r.value is None:
                out.append(None)
                continue
            try:
                out.append(decode(r.value))
            except Exception:  # not ours to judge: the workers dead-letter it, it changed nothing
                log.info(
                    "rights store: unreadable record at %s[%d]@%d skipped", r.topic, r.partition, r.offset
                )
        return out

    # -- consent -------------------------------------------------------------------------

    def consent(self, user_id: str) -> tuple[Purposes | None, int | None]:
        """The viewer's current consent and when it was set; ``(None, None)``: no record."""
        key = user_key(user_id, casefold=self._casefold)
        values = self._values(self.settings.topic(Topic.CONSENT), key, decode_consent)
        current = values[-1] if values else None  # a tombstone last (an erasure): no record
        if current is None:
            return None, None
        return Purposes.from_wire(current.purposes), current.updated_at_ms

    def set_consent(self, user_id: str, purposes: Purposes) -> int:
        """Write a ``consent.v1`` record (acknowledged); returns its ``updated_at``."""
        user = self.canonical(user_id)
        now = int(self.clock() * 1000)
        value = json.dumps(
            consent_record(user, purposes.as_dict(), updated_at_ms=now, source="privacy-centre")
        ).encode()
        send_acked(self._kafka_producer(), self.settings.topic(Topic.CONSENT), [(user.encode(), value)])
        return now

    # -- controls ------------------------------------------------------------------------

    def controls(self, user_id: str) -> Controls:
        return get_controls(self.redis(), self.layout, self.pz.candidates(self.canonical(user_id)))

    def set_controls(
        self, user_id: str, personalization: Any, hide: tuple[str, ...], unhide: tuple[str, ...]
    ) -> Controls:
        names = self.pz.candidates(self.canonical(user_id))
        return set_controls(
            self.redis(), self.layout, names, personalization=personalization, hide=hide, unhide=unhide
        )

    # -- erasure -------------------------------------------------------------------------

    def erase(self, user_id: str) -> tuple[str, int]:
        """Send an erasure request (acknowledged); returns ``(request_id, requested_at)``."""
        user = self.canonical(user_id)
        request_id, requested_at = send_erasure(self._kafka_producer(), self.settings, user)
        self._remember(self._owner, request_id, self.pz.pseudonym(user))
        return request_id, requested_at

    def erasure_status(
        self, user_id: str, request_id: str
    ) -> tuple[dict[str, int], dict[str, Any] | None] | None:
        """``(stages, receipt)`` of the viewer's request; None when unknown or someone else's."""
        user = self.canonical(user_id)
        names = self.pz.candidates(user)
        cached = self._receipts.get(request_id)
        if cached is not None:
            return ({}, cached) if cached["pseudonym"] in names else None
        owner = self._owner.get(request_id)
        if owner is not None and owner not in names:
            return None
        rid = request_id.encode()
        stages: dict[str, int] = {}
        for stage in self._values(self.settings.topic(Topic.ERASURE_STAGES), rid, _decoder(ErasureStage)):
            if stage is None or stage.request_id != request_id:
                continue
            if stage.pseudonym not in names:
                return None
            owner = stage.pseudonym
            stages[stage.stage] = stage.finished_at
        receipt = self._receipt(request_id, names) if owner is not None or stages else None
        if receipt is not None:
            return stages, receipt
        if owner is None and not self._requested(user, request_id):
            return None
        self._remember(self._owner, request_id, owner or names[0])
        return stages, None

    def _receipt(self, request_id: str, names: list[str]) -> dict[str, Any] | None:
        for name in names:
            for receipt in self._values(
                self.settings.topic(Topic.RECEIPTS), name.encode(), _decoder(Receipt)
            ):
                if receipt is not None and receipt.request_id == request_id:
                    found = msgspec.to_builtins(receipt)
                    self._remember(self._receipts, request_id, found)
                    return found
        return None

    def _requested(self, user: str, request_id: str) -> bool:
        """Whether the viewer's key carries this request on the ``erasure`` topic."""
        requests = self._values(self.settings.topic(Topic.ERASURE), user.encode(), _decoder(ErasureRequest))
        return any(r is not None and r.request_id == request_id for r in requests)

    @staticmethod
    def _remember(cache: OrderedDict[str, Any], key: str, value: Any) -> None:
        cache[key] = value
        cache.move_to_end(key)
        while len(cache) > _CACHE:
            cache.popitem(last=False)

    # -- export --------------------------------------------------------------------------

    def export(self, user_id: str, timeout_s: float) -> dict[str, Any]:
        """The ``export.v1`` document (reads every topic: seconds, not milliseconds)."""
        from agents.export import collect_export

        return collect_export(self.settings, self.endpoints, user_id, timeout_s=timeout_s)
