"""The trainer's core (``pipeline.trainer.Admission``) without Kafka or Redis.

Records go in as plain objects, :class:`pipeline.trainer.Effects` come out:
which rows enter the matrix, which users the shell must drop, what it must
dead-letter, and the stage records and receipts of erasures.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.privacy.pseudonym import Pseudonymizer, PseudonymKey
from pipeline.trainer import Admission, Dropped, Effects
from pipeline.wire import encode
from pipeline.wire.outbound import Interaction
from tests.support.records import Rec
from tests.support.trainer_records import TrainerRecords

MINUTE = 60_000
HOUR = 60 * MINUTE
T0 = 1_700_000_000_000 - 1_700_000_000_000 % HOUR
FULL = {"analytics": True, "personalization": True, "advertising": False}
ANALYTICS = {"analytics": True, "personalization": False, "advertising": False}
NONE = {"analytics": False, "personalization": False, "advertising": False}
TOPICS = {k: f"t.{k}" for k in ("consent", "erasure", "stages", "receipts", "interactions")}
PZ = Pseudonymizer([PseudonymKey("k1", b"0123456789abcdef0123")])
RID = "0123456789abcdef0123456789abcdef"


def Log() -> TrainerRecords:
    return TrainerRecords(TOPICS, PZ, RID)


@pytest.fixture
def core() -> Admission:
    return Admission(TOPICS, PZ)


def held(core: Admission, user: str = "alice") -> list[str]:
    return sorted(r["content_id"] for r in core.store.records(PZ.pseudonym(user)))


# -- consent --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("purposes", "admitted", "refusal"),
    [
        (FULL, True, None),
        (ANALYTICS, False, "no_personalization"),
        ({"analytics": False, "personalization": True, "advertising": True}, False, "no_personalization"),
        (NONE, False, "no_personalization"),
        ("no record", False, "no_personalization"),
        ("tombstone", False, "no_personalization"),
    ],
)
def test_only_personalisation_consent_admits_a_row(core, purposes, admitted, refusal):
    log = Log()
    records = []
    if purposes == "tombstone":
        records.append(log.consent("alice", FULL, T0, at=1_000))
        records.append(log.consent("alice", None, T0, at=2_000))
    elif purposes != "no record":
        records.append(log.consent("alice", purposes, T0, at=1_000))
    records.append(log.window("alice", T0, at=5_000))
    fx = core.apply(records)
    assert held(core) == (["c1"] if admitted else [])
    assert fx.admitted == ([PZ.pseudonym("alice")] if admitted else [])
    assert fx.rejected == []  # a refusal is an outcome, not a dead letter
    if refusal:
        assert core.counters["interactions_refused_" + refusal] == 1
    else:
        assert core.counters["interactions"] == 1


def test_a_withdrawal_drops_the_rows_and_asks_the_shell_to_drop_factors_and_cache(core):
    log = Log()
    core.apply([log.consent("alice", FULL, T0, at=1_000), log.window("alice", T0, at=2_000)])
    fx = core.apply([log.consent("alice", ANALYTICS, T0 + HOUR, at=3_000)])
    assert fx == Effects(withdrawn=[Dropped(PZ.pseudonym("alice"), 1)])
    assert held(core) == [] and core.withdrawn_at == {PZ.pseudonym("alice"): 3_000}
    # a copy of the row created before the withdrawal stays out after a new grant
    core.apply([log.consent("alice", FULL, T0 + 2 * HOUR, at=4_000)])
    assert core.refusal(_row("alice", T0 + 2 * HOUR), created_at=3_000) == "withdrawn"
    assert core.refusal(_row("alice", T0 + 2 * HOUR), created_at=3_001) is None


def test_a_batch_applies_consent_before_interactions_whatever_their_order(core):
    log = Log()
    window = log.window("alice", T0, at=2_000)
    grant = log.consent("alice", FULL, T0, at=1_000)
    fx = core.apply([window, grant])
    assert fx.admitted == [PZ.pseudonym("alice")]
    # one at a time, in that order, the row comes before any consent: refused
    other = Admission(TOPICS, PZ)
    other.apply([window])
    other.apply([grant])
    assert held(other) == [] and other.counters["interactions_refused_no_personalization"] == 1


def test_a_revoke_in_the_same_batch_refuses_rows_created_before_it(core):
    log = Log()
    core.apply([log.consent("alice", FULL, T0, at=1_000)])
    fx = core.apply([log.window("alice", T0, at=2_000), log.consent("alice", ANALYTICS, T0 + HOUR, at=3_000)])
    assert fx.admitted == [] and [d.pseudonym for d in fx.withdrawn] == [PZ.pseudonym("alice")]
    assert core.counters["interactions_refused_no_personalization"] == 1


def test_records_of_other_topics_are_ignored(core):
    fx = core.apply([Rec("elsewhere", 0, 0, 1, b"alice", b"junk")])
    assert fx == Effects() and core.counters == {}


# -- erasure --------------------------------------------------------------------------------------


def test_an_erasure_drops_the_rows_at_once_and_refuses_rows_up_to_the_stream_stage(core):
    log = Log()
    names = PZ.candidates("alice")
    core.apply([log.consent("alice", FULL, T0, at=1_000), log.window("alice", T0, at=2_000)])
    fx = core.apply([log.erasure("alice", at=3_000), log.window("alice", T0 + HOUR, at=2_500)])
    assert fx.erased == names and fx.admitted == [] and held(core) == []
    assert core.counters["interactions_refused_erased"] == 1
    row = _row("alice", T0 + 2 * HOUR)
    assert core.refusal(row, created_at=10**13) == "erased"  # stream stage pending: everything
    core.apply([log.stage("alice", "stream", finished=4_000, requested=3_000)])
    assert core.refusal(row, created_at=4_000) == "erased"
    assert core.refusal(row, created_at=4_001) is None  # the cutoff: the stream stage's end


def test_an_erasure_yields_stage_records_then_one_receipt(core):
    log = Log()
    name = PZ.pseudonym("alice")
    core.apply([log.erasure("alice", at=3_000), log.stage("alice", "stream", 4_000, 3_000)])
    (entry,) = core.awaiting("trainer")
    assert core.ready() == []
    trainer = core.finish(entry, "trainer", 5_000)
    assert (trainer.stage, trainer.pseudonym, trainer.finished_at) == ("trainer", name, 5_000)
    assert core.awaiting("trainer") == [] and core.counters["erasures"] == 1
    (entry,) = core.awaiting("cache")
    cache = core.finish(entry, "cache", 6_000, {"keys_deleted": 3})
    assert cache.detail == {"keys_deleted": 3}
    (ready,) = core.ready()
    receipt = core.receipt(ready, 7_000, 9_000)
    assert receipt.request_id == RID and set(receipt.stages) == {"stream", "trainer", "cache"}
    assert core.ready() == [ready]  # not issued until the shell says it is out
    core.issued(receipt)
    assert core.ready() == [] and core.counters["receipts"] == 1


def test_a_receipt_read_back_closes_the_request(core):
    log = Log()
    core.apply([log.erasure("alice", at=3_000), log.stage("alice", "stream", 4_000, 3_000)])
    (entry,) = core.awaiting("trainer")
    core.finish(entry, "trainer", 5_000)
    core.finish(entry, "cache", 6_000)
    receipt = core.receipt(entry, 7_000, 7_000)
    other = Admission(TOPICS, PZ)  # a restarted trainer reading its own receipt
    other.apply([log.erasure("alice", 3_000), log.rec("receipts", name_key(), encode(receipt), 7_000)])
    assert other.awaiting("trainer") == [] and other.ready() == []


def name_key() -> bytes:
    return PZ.pseudonym("alice").encode()


def test_an_invalid_erasure_or_consent_is_only_counted(core):
    log = Log()
    fx = core.apply([log.rec("erasure", b"alice", b"{", 1), log.rec("consent", b"alice", b"[]", 1)])
    assert fx == Effects()
    assert core.counters == {"erasure_invalid": 1, "consent_invalid": 1}


# -- dead letters ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "value", "reason", "counter"),
    [
        ("interactions", b"{not json", "invalid_interaction", "interactions_invalid"),
        ("stages", b'{"schema":"erasure.stage.v1"}', "invalid_stage", "erasure_stage_invalid"),
        ("receipts", b'["secret-value"]', "invalid_receipt", "receipt_invalid"),
    ],
)
def test_a_bad_record_is_rejected_once_with_coordinates_and_never_its_value(
    core, kind, value, reason, counter
):
    log = Log()
    log.rec(kind, None, b"", 1)  # offset 0 taken: the bad one is at 1
    bad = log.rec(kind, b"k", value, 2, partition=3)
    fx = core.apply([bad])
    (rejected,) = fx.rejected
    assert (rejected.source.topic, rejected.source.partition, rejected.source.offset) == (TOPICS[kind], 3, 1)
    assert rejected.reason == reason and rejected.value_bytes == len(value)
    assert core.counters[counter] == 1
    letter = encode(rejected.letter(at_ms=9))
    assert value not in letter
    assert rejected.judged_before({(TOPICS[kind], 3): 2}) and not rejected.judged_before(
        {(TOPICS[kind], 3): 1}
    )


def test_a_row_that_does_not_fit_the_model_is_rejected_with_its_pseudonym_only(core, monkeypatch):
    """The wire contract bounds every number; the matrix's own check is the second line."""
    log = Log()
    core.apply([log.consent("alice", FULL, T0, at=1_000)])

    def unfit(_: Any) -> None:
        raise OverflowError("does not fit")

    monkeypatch.setattr(core.store, "add", unfit)
    fx = core.apply([log.window("alice", T0, at=2_000)])
    (rejected,) = fx.rejected
    assert rejected.reason == "unfit_interaction" and rejected.row is not None
    letter = rejected.letter(at_ms=9)
    assert letter.pseudonym == PZ.pseudonym("alice") and fx.admitted == []
    assert core.counters["interactions_unfit"] == 1


def test_a_rule_that_raises_is_an_internal_error_and_the_batch_goes_on(core, monkeypatch):
    log = Log()

    def boom(*_: Any) -> None:
        raise RuntimeError("alice@example.com")

    monkeypatch.setattr(core.ledger, "stage", boom)
    fx = core.apply(
        [
            log.stage("alice", "stream", 4_000, 3_000),
            log.consent("alice", FULL, T0, at=1_000),
            log.window("alice", T0, at=5_000),
        ]
    )
    assert [r.reason for r in fx.rejected] == ["internal_error"] and fx.admitted == [PZ.pseudonym("alice")]
    assert core.counters["internal_errors"] == 1


# -- properties -----------------------------------------------------------------------------------

GRANTS = st.fixed_dictionaries(
    {"analytics": st.booleans(), "personalization": st.booleans(), "advertising": st.booleans()}
)


def _reference(changes: list[tuple[int, int, dict[str, bool]]], start: int, end: int) -> bool:
    """Obviously right, minute by minute: granted now and at some minute of ``[start, end)``."""
    ordered = sorted(changes, key=lambda c: (c[0], c[1]))

    def at(t: int) -> dict[str, bool] | None:
        before = [g for u, _, g in ordered if u <= t]
        return before[-1] if before else None

    def ok(g: dict[str, bool] | None) -> bool:
        return g is not None and g["analytics"] and g["personalization"]

    return ok(ordered[-1][2]) and any(ok(at(t)) for t in range(start, end, MINUTE))


@settings(max_examples=150, deadline=None)
@given(
    changes=st.lists(st.tuples(st.integers(0, 12), GRANTS), min_size=1, max_size=8),
    start=st.integers(0, 12),
)
def test_admission_matches_a_minute_by_minute_reference(changes, start):
    """Consent records in any ``updated_at`` order; the row is created after all of them."""
    core = Admission(TOPICS, PZ)
    log = Log()
    records = [log.consent("alice", g, T0 + u * MINUTE, at=1_000 + i) for i, (u, g) in enumerate(changes)]
    core.apply(records)
    begin = T0 + start * MINUTE
    row = _row("alice", begin, end=begin + 2 * MINUTE)
    expected = _reference(
        [(T0 + u * MINUTE, i, g) for i, (u, g) in enumerate(changes)], begin, begin + 2 * MINUTE
    )
    assert (core.refusal(row, created_at=10**13) is None) == expected


@settings(max_examples=100, deadline=None)
@given(steps=st.lists(st.tuples(st.sampled_from(["alice", "bob"]), st.none() | GRANTS), max_size=12))
def test_the_matrix_never_holds_a_user_without_personalisation_now(steps):
    """Consent changes and new rows interleaved, in batches of any size: the invariant holds after each."""
    core = Admission(TOPICS, PZ)
    log = Log()
    for i, (user, grants) in enumerate(steps):
        batch = [log.window(u, T0, at=2 * i) for u in ("alice", "bob")]
        if grants is not None:
            batch.append(log.consent(user, grants, T0 + i, at=2 * i + 1))
        core.apply(batch)
        for p in core.store.users():
            now = core.consent[p].current
            assert now.analytics and now.personalization


def _row(user: str, start: int, end: int | None = None) -> Interaction:
    return Interaction(
        user=PZ.pseudonym(user),
        content_id="c1",
        window_start=start,
        window_end=end if end is not None else start + HOUR,
        watched_ms=60_000,
        plays=1,
        completed=False,
        events=2,
    )
