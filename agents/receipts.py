"""Read every erasure request, stage record and receipt, and the proof ledger (``privrec receipts``).

The ``erasure`` topic is keyed by the raw user id; it is turned into the
pseudonym under the newest key here and never kept or printed.
"""

from __future__ import annotations

import argparse
import logging
import re
import time
from datetime import UTC, datetime
from typing import Any

from pipeline.errors import PrivrecError
from pipeline.kafka.topics import Topic
from pipeline.rights.proofs import ProofLedger
from pipeline.rights.standing import Standings
from pipeline.services.connect import Endpoints, kafka_consumer, topic_tail
from pipeline.settings import Settings
from pipeline.wire import decode_as
from pipeline.wire.rights import ErasureRequest, ErasureStage, Receipt

__all__ = ["collect_standings", "since_ms"]

log = logging.getLogger(__name__)


def collect_standings(
    settings: Settings, endpoints: Endpoints | None, timeout_s: float = 60.0
) -> tuple[Standings, int]:
    """Every request known to the topics (when ``endpoints``) and to the ledger; and how many
    records or lines could not be read (skipped)."""
    standings = Standings()
    bad = standings.ledger(ProofLedger(settings.state_dir).entries())
    if endpoints is not None:
        bad += _read_topics(settings, endpoints, standings, timeout_s)
    return standings, bad


def _read_topics(settings: Settings, endpoints: Endpoints, standings: Standings, timeout_s: float) -> int:
    try:
        from pipeline.keys import pseudonymizer

        pz: Any = pseudonymizer(settings)
    except PrivrecError:  # no key configured: requests without a stage record show no pseudonym
        pz = None
    topics = {
        "erasure": settings.topic(Topic.ERASURE),
        "stages": settings.topic(Topic.ERASURE_STAGES),
        "receipts": settings.topic(Topic.RECEIPTS),
    }
    consumer = kafka_consumer(endpoints, "receipts", unique=True)
    bad = 0

    def handle(r: Any) -> None:
        nonlocal bad
        try:
            if r.topic == topics["erasure"]:
                req = decode_as(r.value or b"", ErasureRequest)
                name = pz.pseudonym(r.key.decode()) if pz is not None and r.key else None
                standings.request(req.request_id, req.requested_at, name, "broker")
            elif r.topic == topics["stages"]:
                standings.stage(decode_as(r.value or b"", ErasureStage))
            else:
                standings.receipt(decode_as(r.value or b"", Receipt))
        except Exception:  # a record privrec cannot read: count it, never stop the listing
            bad += 1
            log.warning("receipts: unreadable record at %s[%d]@%d", r.topic, r.partition, r.offset)

    try:
        existing = consumer.topics()
        present = [t for t in topics.values() if t in existing]
        if present:
            tail = topic_tail(endpoints, consumer, present, settings.partitions)
            tail.read_to_end(handle, timeout_s)
    finally:
        consumer.close()
    return bad


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def since_ms(text: str, now: float | None = None) -> int:
    """argparse type of ``--since``: RFC 3339 (``2025-01-31T12:00:00Z``; a date alone is midnight
    UTC; no offset means UTC) or an age (``90m``, ``24h``, ``7d``); epoch ms."""
    m = re.fullmatch(r"(\d+)([smhd])", text.strip())
    if m:
        return int(((now if now is not None else time.time()) - int(m[1]) * _UNITS[m[2]]) * 1000)
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an RFC 3339 time or an age like 24h: {text!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)
