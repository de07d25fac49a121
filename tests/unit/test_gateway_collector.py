"""The collector's pure core: per-index refusals with reasons, never an exception."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.gateway.collector import OTHER_USER, TOO_MANY_EVENTS, collect, envelopes
from pipeline.wire import PlaybackBatch, decode_as
from tests.support.events import NOW_MS, playback_event


def _collect(body, subject="alice", max_events=500):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return collect(
        raw, subject=subject, casefold=True, max_events=max_events, now_ms=NOW_MS, future_tolerance_ms=0
    )


def _ev(i, **kw):
    e = playback_event(i, event_time=NOW_MS - 1000)
    del e["user_id"]
    e.update(kw)
    return e


def test_all_valid_events_take_the_subject():
    out = _collect({"events": [_ev(0), _ev(1, user_id=" ALICE ")]})
    assert out.status == 202 and out.errors == [] and {e.user_id for e in out.events} == {"alice"}


def test_refusals_by_index_with_paths():
    out = _collect(
        {
            "events": [
                _ev(0),
                _ev(1, user_id="bob"),
                "nope",
                _ev(3, position_ms=10**9),
                _ev(4, event_time=NOW_MS + 10**6),
                _ev(5, schema="other"),
                _ev(6, user_id=7),
            ]
        }
    )
    assert out.accepted == 1
    got = [(e.index, e.reason, e.path) for e in out.errors]
    assert got == [
        (1, OTHER_USER, "$.events[1].user_id"),
        (2, "schema_violation", "$.events[2]"),
        (3, "schema_violation", "$.events[3].position_ms"),
        (4, "future_event_time", "$.events[4].event_time"),
        (5, "unknown_schema", "$.events[5].schema"),
        (6, "schema_violation", "$.events[6].user_id"),
    ]


def test_whole_body_refusals():
    assert _collect(b"[").status == 400
    assert _collect(b"[" * 200 + b"]" * 200).errors[0].reason == "too_deep"
    assert _collect({"events": []}).status == 400
    assert _collect({"schema": "x", "events": [_ev(0)]}).errors[0].reason == "unknown_schema"
    big = _collect({"events": [_ev(i) for i in range(4)]}, max_events=3)
    assert (big.status, big.errors[0].reason) == (413, TOO_MANY_EVENTS)
    assert _collect({"events": [_ev(0, user_id="bob")]}).status == 422


def test_envelopes_split_when_too_big_for_the_worker():
    events = _collect({"events": [_ev(i) for i in range(40)]}).events
    values = envelopes(events, 4000)
    assert len(values) > 1 and all(len(v) <= 4000 for v in values)
    assert [e for v in values for e in decode_as(v, PlaybackBatch).events] == events


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=30,
)
_event_like = st.fixed_dictionaries(
    {},
    optional={
        "user_id": st.sampled_from(["alice", "Alice", "bob", "", 3]),
        "content_id": st.sampled_from(["m1", "bad id", ""]),
        "position_ms": st.integers(-5, 10**9),
        "schema": st.sampled_from(["playback.v1", "x"]),
    },
).map(lambda extra: {**_ev(0), **extra})


@settings(max_examples=150, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=200),
        _json.map(lambda v: json.dumps(v).encode()),
        st.lists(st.one_of(_event_like, _json), max_size=8).map(
            lambda evs: json.dumps({"events": evs}).encode()
        ),
    )
)
def test_fuzz_never_raises_and_every_refusal_has_a_reason(body):
    out = _collect(body, max_events=5)
    assert out.status in {202, 400, 413, 422}
    assert (out.status == 202) == bool(out.events)
    for err in out.errors:
        assert err.reason and err.path.startswith("$")
    assert all(e.user_id == "alice" for e in out.events)
    if out.status in (202, 422):
        n = len(json.loads(body)["events"])
        assert out.accepted + len(out.errors) == n
