"""Consent over time without Kafka: ordering, event time, the bound, the table encoding.

The fast functions of :mod:`pipeline.privacy.consent_history` are checked
against the naive model in :mod:`tests.support.consent_reference`.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.privacy.consent import Purposes
from pipeline.privacy.consent_history import (
    MAX_CHANGES,
    Change,
    ConsentHistory,
    decide_at,
    decode_history,
    encode_history,
    granted_during,
    purposes_at,
    record_change,
)
from tests.support.consent_reference import Record, reference_decision

FULL = Purposes(True, True, False)
ANALYTICS = Purposes(True, False, False)
NONE = Purposes()


def history(*changes: tuple[int, int, Purposes], limit: int = MAX_CHANGES) -> ConsentHistory:
    h = None
    for at, offset, p in changes:
        h, _ = record_change(h, Change(at, offset, p), limit=limit)
    assert h is not None
    return h


def test_a_stale_grant_after_a_newer_revoke_is_not_in_force():
    h, in_force = record_change(None, Change(200, 0, ANALYTICS))
    assert in_force
    h, in_force = record_change(h, Change(100, 1, FULL))
    assert not in_force and h.current == ANALYTICS
    assert decide_at(h, 300, gpc=False, default=None).action == "analytics_only"
    assert purposes_at(h, 150) == FULL  # it still says what held at its time


def test_equal_times_the_later_offset_wins_and_a_redelivery_changes_nothing():
    h = history((100, 0, FULL), (100, 1, ANALYTICS))
    assert h.current == ANALYTICS and purposes_at(h, 100) == ANALYTICS
    again, in_force = record_change(h, Change(100, 1, ANALYTICS))
    assert again is h and not in_force
    older_offset, in_force = record_change(h, Change(100, 0, FULL))
    assert older_offset is h and not in_force


def test_an_event_before_the_first_grant_has_no_consent_at_its_time():
    h = history((1_000, 0, FULL))
    before = decide_at(h, 999, gpc=False, default=None)
    assert (before.action, before.reason) == ("drop", "not_granted_at_event_time")
    assert decide_at(h, 1_000, gpc=False, default=None).action == "personalize"
    # with a default, the time before the first record is the default's
    assert decide_at(h, 999, gpc=False, default=ANALYTICS).action == "analytics_only"


def test_an_event_from_a_revoked_period_is_not_personalised_after_a_regrant():
    h = history((100, 0, FULL), (200, 1, ANALYTICS), (300, 2, FULL))
    assert decide_at(h, 150, gpc=False, default=None).action == "personalize"
    gap = decide_at(h, 250, gpc=False, default=None)
    assert (gap.action, gap.reason) == ("analytics_only", "not_granted_at_event_time")
    assert not gap.purposes.personalization
    assert decide_at(h, 300, gpc=False, default=None).action == "personalize"


def test_what_is_revoked_now_wins_over_what_was_granted_then():
    h = history((100, 0, FULL), (200, 1, NONE))
    assert decide_at(h, 150, gpc=False, default=FULL).reason == "no_analytics_consent"


def test_past_the_bound_the_unknown_past_is_denied_even_with_a_default():
    changes = [(1_000 * i, i, FULL if i % 2 == 0 else ANALYTICS) for i in range(MAX_CHANGES + 4)]
    h = history(*changes)
    assert len(h.changes) == MAX_CHANGES and not h.complete
    oldest = h.changes[0].at_ms
    assert purposes_at(h, oldest - 1) == NONE
    assert decide_at(h, oldest - 1, gpc=False, default=FULL).action == "drop"
    assert purposes_at(h, oldest) == h.changes[0].purposes
    # a record older than what is known is not taken in
    same, in_force = record_change(h, Change(oldest - 5, 99, FULL))
    assert same is h and not in_force


def test_granted_during_a_window_needs_an_overlapping_grant():
    h = history((1_000, 0, FULL), (2_000, 1, ANALYTICS), (3_000, 2, FULL))
    assert not granted_during(h, 0, 1_000)  # before the first record
    assert granted_during(h, 0, 1_001)
    assert granted_during(h, 1_500, 2_500)
    assert not granted_during(h, 2_000, 3_000)  # revoked throughout
    assert granted_during(h, 2_500, 3_500)
    assert not granted_during(None, 0, 10_000)
    # superseded at the same instant: never in force
    assert not granted_during(history((1_000, 0, FULL), (1_000, 1, ANALYTICS)), 0, 5_000)


def test_table_value_round_trips_and_is_compact():
    h = history((1_700_000_000_000, 5, FULL), (1_700_000_100_000, 9, ANALYTICS))
    raw = encode_history(h)
    assert raw == b"[2,1,[1700000000000,5,3,1700000100000,9,1]]"
    assert decode_history(raw) == h
    assert decode_history(None) is None


def test_the_first_encoding_decodes_as_an_incomplete_history():
    h = decode_history(b"[true,false,false,123]")
    assert h == ConsentHistory((Change(123, -1, ANALYTICS),), complete=False)


@pytest.mark.parametrize(
    "raw",
    [
        b"garbage",
        b"{}",
        b"[]",
        b"[3,1,[1,0,3]]",
        b"[2,1,[]]",
        b"[2,1,[1,0]]",
        b"[2,1,[2,0,3,1,0,3]]",
        b"[true,1]",
    ],
)
def test_undecodable_table_values_raise_value_error(raw: bytes):
    with pytest.raises(ValueError):
        decode_history(raw)


# -- against the reference model -------------------------------------------------------------------

grants = st.builds(Purposes, st.booleans(), st.booleans(), st.booleans())
times = st.integers(0, 40)


@st.composite
def consent_logs(draw, max_records: int):
    """Records in arrival order: times out of order, tombstones, redeliveries of earlier records."""
    out: list[tuple[int, int, Purposes | None]] = []
    for _ in range(draw(st.integers(0, max_records))):
        kind = draw(st.sampled_from(["record", "record", "record", "tombstone", "redelivery"]))
        if kind == "redelivery" and out:
            out.append(draw(st.sampled_from(out)))
        elif kind == "tombstone":
            out.append((0, len(out), None))
        else:
            out.append((draw(times), len(out), draw(grants)))
    return out


def fold(log, limit: int = MAX_CHANGES) -> ConsentHistory | None:
    """What the stream holds after ``log``, through the table's encoding each time."""
    raw: bytes | None = None
    for at, offset, p in log:
        if p is None:
            raw = None
            continue
        h, _ = record_change(decode_history(raw), Change(at, offset, p), limit=limit)
        raw = encode_history(h)
    return decode_history(raw)


def as_reference(log) -> list[Record]:
    return [Record(at, offset, None if p is None else p.as_dict()) for at, offset, p in log]


@settings(max_examples=400, deadline=None)
@given(
    log=consent_logs(MAX_CHANGES),
    event_time=times,
    gpc=st.booleans(),
    default=st.none() | grants,
)
def test_decide_at_agrees_with_the_reference_model(log, event_time, gpc, default):
    d = decide_at(fold(log), event_time, gpc=gpc, default=default)
    action, purposes = reference_decision(
        as_reference(log), event_time, gpc=gpc, default=None if default is None else default.as_dict()
    )
    assert d.action == action
    if action != "drop":
        assert d.purposes.as_dict() == purposes


@settings(max_examples=300, deadline=None)
@given(log=consent_logs(24), event_time=times, gpc=st.booleans(), default=st.none() | grants)
def test_past_the_bound_decisions_are_never_more_permissive(log, event_time, gpc, default):
    limit = 3
    h = fold(log, limit=limit)
    d = decide_at(h, event_time, gpc=gpc, default=default)
    action, purposes = reference_decision(
        as_reference(log), event_time, gpc=gpc, default=None if default is None else default.as_dict()
    )
    rank = {"drop": 0, "analytics_only": 1, "personalize": 2}
    assert rank[d.action] <= rank[action]
    if d.action != "drop":
        assert all(purposes[n] or not v for n, v in d.purposes.as_dict().items())
    if h is None or h.complete or event_time >= h.changes[0].at_ms:
        assert d.action == action  # within what the bound keeps, exactly the reference


@pytest.mark.parametrize("bits", range(8))
def test_stored_bits_keep_their_meaning(bits: int):
    """analytics 1 | personalization 2 | advertising 4, as every stored value was written."""
    raw = b"[2,1,[1700000000000,0,%d]]" % bits
    h = decode_history(raw)
    assert h is not None
    assert h.current == Purposes(bool(bits & 1), bool(bits & 2), bool(bits & 4))
    assert encode_history(h) == raw
