"""The trainer's consent rules (its core), no Kafka or Redis: the stream's order, the window's time, now."""

from __future__ import annotations

import pytest

from pipeline.privacy.pseudonym import Pseudonymizer, PseudonymKey
from pipeline.trainer import Admission
from pipeline.wire import encode
from pipeline.wire.outbound import Interaction
from tests.support.records import Rec
from tests.support.trainer_records import TrainerRecords

HOUR = 3_600_000
T0 = 1_700_000_000_000 - 1_700_000_000_000 % HOUR
FULL = {"analytics": True, "personalization": True, "advertising": False}
ANALYTICS = {"analytics": True, "personalization": False, "advertising": False}


TOPICS = {k: f"t.{k}" for k in ("consent", "erasure", "stages", "receipts", "interactions")}


@pytest.fixture
def trainer() -> Admission:
    """The trainer's core: the rules and the matrix (a withdrawal drops the rows itself)."""
    return Admission(TOPICS, Pseudonymizer([PseudonymKey("k1", b"0123456789abcdef0123")]))


class Log:
    """Feeds alice's records to the trainer's core, one second apart on their topics."""

    def __init__(self, t: Admission) -> None:
        self.t, self.records, self.clock = t, TrainerRecords(t.topics, t.pz), 1_000

    def _at(self) -> int:
        self.clock += 1_000
        return self.clock

    def consent(self, purposes, at: int) -> None:
        self.t.apply([self.records.consent("alice", purposes, updated=at, at=self._at())])

    def withdraw(self) -> None:
        self.t.apply([self.records.consent("alice", None, updated=0, at=self._at())])

    def window(self, start: int, content: str = "c1") -> None:
        self.t.apply([self.records.window("alice", start, at=self._at(), content=content)])


def held(t: Admission) -> list[str]:
    return sorted(r["content_id"] for r in t.store.records(t.pz.pseudonym("alice")))


def test_a_stale_grant_read_after_a_newer_revoke_keeps_interactions_out(trainer):
    log = Log(trainer)
    log.consent(FULL, at=T0)
    log.consent(ANALYTICS, at=T0 + 2 * HOUR)
    log.consent(FULL, at=T0 + HOUR)  # older than the revoke: never in force
    log.window(T0 + 3 * HOUR)
    assert held(trainer) == []
    assert trainer.counters["interactions_refused_no_personalization"] == 1
    assert trainer.counters["consent_stale"] == 1


def test_a_stale_revoke_neither_forgets_nor_moves_the_withdrawal_cutoff(trainer):
    log = Log(trainer)
    log.consent(FULL, at=T0 + HOUR)
    log.window(T0 + 2 * HOUR)
    log.consent(ANALYTICS, at=T0)  # older than the grant in force
    assert held(trainer) == ["c1"] and not trainer.withdrawn_at


def test_a_window_from_before_the_grant_is_refused(trainer):
    log = Log(trainer)
    log.consent(FULL, at=T0 + 5 * HOUR)
    log.window(T0, "before")
    log.window(T0 + 5 * HOUR, "after")
    assert held(trainer) == ["after"]
    assert trainer.counters["interactions_refused_not_granted_in_window"] == 1


def test_a_window_from_a_revoked_period_is_refused_after_a_regrant(trainer):
    log = Log(trainer)
    log.consent(FULL, at=T0)
    log.consent(ANALYTICS, at=T0 + HOUR)
    log.consent(FULL, at=T0 + 3 * HOUR)
    log.window(T0 + HOUR, "revoked")  # [T0+1h, T0+2h): personalisation off throughout
    log.window(T0 + 3 * HOUR, "regranted")
    assert held(trainer) == ["regranted"]


def test_a_window_straddling_the_grant_is_admitted(trainer):
    """Its events after the grant are legitimate; the stream judged each at its own time."""
    log = Log(trainer)
    log.consent(FULL, at=T0 + HOUR // 2)
    log.window(T0)
    assert held(trainer) == ["c1"]


def test_a_revoke_in_force_forgets_and_refuses_rows_created_before_it(trainer):
    log = Log(trainer)
    log.consent(FULL, at=T0)
    log.window(T0)
    log.consent(ANALYTICS, at=T0 + HOUR)
    assert held(trainer) == [] and trainer.withdrawn_at
    log.consent(FULL, at=T0 + 2 * HOUR)
    # a re-read copy of the old row, created before the withdrawal was read: refused
    user = trainer.pz.pseudonym("alice")
    row = Interaction(
        user=user,
        content_id="c1",
        window_start=T0,
        window_end=T0 + HOUR,
        watched_ms=60_000,
        plays=1,
        completed=False,
        events=2,
    )
    trainer.apply([Rec(trainer.topics["interactions"], 0, 0, 1_500, user.encode(), encode(row))])
    assert held(trainer) == []
    assert trainer.counters["interactions_refused_withdrawn"] == 1


def test_a_tombstone_withdraws_everything(trainer):
    log = Log(trainer)
    log.consent(FULL, at=T0)
    log.window(T0)
    log.withdraw()
    assert held(trainer) == [] and trainer.pz.pseudonym("alice") not in trainer.consent
