"""The stream's consent rules without Kafka: ordered by ``updated_at``, applied at event time and now."""

from __future__ import annotations

import json

from pipeline.privacy.consent import Purposes
from pipeline.privacy.consent_history import decode_history
from pipeline.sources import consent_record
from pipeline.stream import StreamProcessor
from tests.support.stream import enc, event, make

T = 1_700_000_000_000
FULL = {"analytics": True, "personalization": True, "advertising": False}
ANALYTICS = {"analytics": True, "personalization": False, "advertising": False}


class Table(dict):
    """The workers' consent table: what ``on_consent`` writes, what ``consent_of`` reads."""

    def consent(self, proc: StreamProcessor, offset: int, purposes, at: int, user: str = "alice"):
        record = enc(consent_record(user, purposes, updated_at_ms=at))
        fx = proc.on_consent(0, offset, user.encode(), record, self.get)
        for pseudonym, value in fx.consent:
            if value is None:
                self.pop(pseudonym, None)
            else:
                self[pseudonym] = value
        return fx


def personalised(fx) -> list[bool]:
    """Per redacted event, whether it carries personalization (the envelope may be a batch)."""
    out = []
    for _key, value in fx.redacted:
        doc = json.loads(value)
        for e in doc.get("events", [doc]):
            out.append(e["purposes"]["personalization"])
    return out


def test_a_stale_grant_after_a_newer_revoke_does_not_turn_personalisation_back_on():
    proc, table = make(), Table()
    table.consent(proc, 0, ANALYTICS, at=T + 10_000)
    fx = table.consent(proc, 1, FULL, at=T)  # arrives later, decided earlier
    assert proc.counters["consent:stale"] == 1
    assert decode_history(fx.consent[0][1]).current == Purposes(True, False, False)
    fx = proc.on_playback(0, 2, b"alice", enc(event(t=T + 20_000)), table.get)
    assert personalised(fx) == [False] and not fx.state


def test_equal_updated_at_the_later_offset_wins():
    proc, table = make(), Table()
    table.consent(proc, 0, ANALYTICS, at=T)
    table.consent(proc, 1, FULL, at=T)
    fx = proc.on_playback(0, 2, b"alice", enc(event(t=T + 1)), table.get)
    assert personalised(fx) == [True]


def test_a_redelivered_consent_record_changes_nothing():
    proc, table = make(), Table()
    table.consent(proc, 0, FULL, at=T)
    fx = table.consent(proc, 0, FULL, at=T)
    assert not fx.consent and proc.counters["consent:ignored"] == 1


def test_an_event_before_the_grant_is_not_used_even_when_processed_after_it():
    proc, table = make(), Table()
    table.consent(proc, 0, FULL, at=T)
    fx = proc.on_playback(0, 1, b"alice", enc(event(t=T - 1)), table.get)
    assert not fx.redacted and not fx.state
    assert proc.counters["dropped:not_granted_at_event_time"] == 1


def test_an_event_from_a_revoked_period_is_not_personalised_after_a_regrant():
    proc, table = make(), Table()
    table.consent(proc, 0, FULL, at=T)
    table.consent(proc, 1, ANALYTICS, at=T + 100_000)
    table.consent(proc, 2, FULL, at=T + 200_000)
    batch = {
        "schema": "playback.batch.v1",
        "events": [event(t=T + 50_000), event(t=T + 150_000), event(t=T + 250_000)],
    }
    fx = proc.on_playback(0, 3, b"alice", enc(batch), table.get)
    assert personalised(fx) == [True, False, True]
    assert proc.counters["windowed"] == 2 and proc.counters["analytics_only"] == 1


def test_an_event_granted_then_but_revoked_now_is_not_personalised():
    proc, table = make(), Table()
    table.consent(proc, 0, FULL, at=T)
    table.consent(proc, 1, ANALYTICS, at=T + 100_000)
    fx = proc.on_playback(0, 2, b"alice", enc(event(t=T + 50_000)), table.get)
    assert personalised(fx) == [False]


def test_a_tombstone_still_deletes_the_history():
    proc, table = make(), Table()
    table.consent(proc, 0, FULL, at=T)
    fx = proc.on_consent(0, 1, b"alice", None, table.get)
    assert fx.consent == [(proc.pz.pseudonym("alice"), None)]
