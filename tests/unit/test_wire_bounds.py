"""Issue 10: every number of the wire contract is bounded, content ids are catalogue ids.

Each test here failed on the main branch before the bounds existed: huge
numbers passed decoding and killed the trainer's int64 cast, an e-mail address
passed as a content id, and the decoder had no reason for either.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.errors import ValidationFailed
from pipeline.sources import ratings_to_sessions, synthetic_ratings
from pipeline.sources.ratings import Rating
from pipeline.wire import (
    FUTURE_EVENT_TIME,
    INVALID_CONTENT_ID,
    OUT_OF_RANGE,
    SCHEMA_VIOLATION,
    Decoded,
    Interaction,
    RedactedBatch,
    decode_as,
    decode_raw,
)
from pipeline.wire.fields import (
    CONTENT_ID_PATTERN,
    MAX_DURATION_MS,
    MAX_PLAYHEAD_MS,
    PLAYHEAD_TOLERANCE_MS,
)
from tests.support.events import NOW_MS, batch, playback_event

PII = "alice.smith@example.com"
HOUR = 3_600_000


def enc(obj: Any) -> bytes:
    return msgspec.json.encode(obj)


def dec(value: bytes, **kw: Any) -> Decoded:
    return decode_raw(value, max_bytes=1 << 20, now_ms=NOW_MS, future_tolerance_ms=60_000, **kw)


def only_reject(result: Decoded) -> tuple[str, str]:
    assert result.events == []
    assert len(result.rejects) == 1
    return result.rejects[0].reason, result.rejects[0].detail


# --- static bounds (msgspec + schema files) -------------------------------------


@pytest.mark.parametrize("field", ["watched_ms", "position_ms", "duration_ms"])
@pytest.mark.parametrize("value", [2**31, 2**53, 2**63, 2**64, 10**30])
def test_huge_numbers_are_schema_violations_naming_the_field(field: str, value: int) -> None:
    reason, detail = only_reject(dec(enc(playback_event(**{field: value}))))
    assert reason == SCHEMA_VIOLATION
    assert detail.endswith(f"- at `${'.' + field}`")
    assert str(value) not in detail


def test_duration_is_at_most_a_day() -> None:
    assert dec(enc(playback_event(duration_ms=MAX_DURATION_MS, position_ms=0))).rejects == []
    reason, detail = only_reject(dec(enc(playback_event(duration_ms=MAX_DURATION_MS + 1))))
    assert (reason, detail) == (SCHEMA_VIOLATION, f"Expected `int` <= {MAX_DURATION_MS} - at `$.duration_ms`")


# --- cross-field bounds (decoder) ---------------------------------------------------


@pytest.mark.parametrize("field", ["watched_ms", "position_ms"])
def test_playhead_may_exceed_duration_by_the_tolerance_only(field: str) -> None:
    at_limit = playback_event(duration_ms=HOUR, **{field: HOUR + PLAYHEAD_TOLERANCE_MS})
    assert dec(enc(at_limit)).rejects == []
    beyond = playback_event(duration_ms=HOUR, **{field: HOUR + PLAYHEAD_TOLERANCE_MS + 1})
    reason, detail = only_reject(dec(enc(beyond)))
    assert reason == OUT_OF_RANGE
    assert detail == f"Expected `int` <= duration_ms + {PLAYHEAD_TOLERANCE_MS} - at `$.{field}`"


def test_out_of_range_event_is_rejected_alone_with_its_envelope_path() -> None:
    envelope = batch(5)
    envelope["events"][3]["watched_ms"] = envelope["events"][3]["duration_ms"] + 10 * 60_000
    result = dec(enc(envelope))
    assert [e.event_id.int - 1 for e in result.events] == [0, 1, 2, 4]
    [reject] = result.rejects
    assert reject.reason == OUT_OF_RANGE
    assert reject.detail.endswith("- at `$.events[3].watched_ms`")
    assert reject.event is not None


def test_out_of_range_path_survives_the_slow_path() -> None:
    envelope = batch(4)
    envelope["events"][0]["gpc"] = "yes"  # forces the per-event slow path
    envelope["events"][2]["position_ms"] = envelope["events"][2]["duration_ms"] + 61_000
    result = dec(enc(envelope))
    assert len(result.events) == 2
    assert sorted((r.reason, r.detail.rsplit("`$", 1)[1]) for r in result.rejects) == [
        (OUT_OF_RANGE, ".events[2].position_ms`"),
        (SCHEMA_VIOLATION, ".events[0].gpc`"),
    ]


# --- content_id -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_id",
    [PII, "+49 170 1234567", "c1\n", "a" * 65, "c/1", "ünïcode", "tt 123", "x" * 128],
)
def test_content_id_outside_the_pattern_is_dead_lettered_without_its_value(content_id: str) -> None:
    reason, detail = only_reject(dec(enc(playback_event(content_id=content_id))))
    assert reason == INVALID_CONTENT_ID
    assert detail == "content_id does not match stream.content_id_pattern - at `$.content_id`"


@pytest.mark.parametrize("content_id", ["c0007", "ml:123", "123", "tt0111161", "show-1_s01.e02", "a" * 64])
def test_catalogue_ids_pass(content_id: str) -> None:
    assert dec(enc(playback_event(content_id=content_id))).rejects == []


def test_one_bad_content_id_in_an_envelope_rejects_only_its_events() -> None:
    envelope = batch(4)
    envelope["events"][1]["content_id"] = PII
    result = dec(enc(envelope))
    assert len(result.events) == 3
    [reject] = result.rejects
    assert (reject.reason, reject.detail.rsplit("`$", 1)[1]) == (INVALID_CONTENT_ID, ".events[1].content_id`")
    assert PII not in reject.detail


def test_the_pattern_is_a_parameter() -> None:
    strict = re.compile(r"c[0-9]{4}")
    assert dec(enc(playback_event(content_id="c0001")), content_id_pattern=strict).rejects == []
    result = dec(enc(playback_event(content_id="ml:1")), content_id_pattern=strict)
    assert only_reject(result)[0] == INVALID_CONTENT_ID


def test_the_default_pattern_is_in_the_schema_files() -> None:
    import schemas

    for name in ("playback.v1", "playback.redacted.v1", "interaction.v1"):
        assert schemas.load(name)["properties"]["content_id"]["pattern"] == CONTENT_ID_PATTERN


def test_generated_sessions_pass_every_new_check() -> None:
    """The demo's synthetic data and MovieLens-style ids ('123') stay valid."""
    ratings = synthetic_ratings(users=40, items=30, events_target=400, seed=5)
    ratings += [Rating("7", "1193", 5.0, 978_300_760), Rating("7", "661", 1.0, 978_302_109)]
    events = [e for session in ratings_to_sessions(ratings, seed=5) for e in session]
    assert {"heartbeat", "seek", "complete"} <= {e["event_type"] for e in events}
    for event in events:
        result = decode_raw(enc(event), max_bytes=1 << 20, now_ms=4 * 10**12, future_tolerance_ms=0)
        assert result.rejects == [], result.rejects


# --- outbound records refuse what the trainer cannot hold ----------------------------------

_INTERACTION = {
    "schema": "interaction.v1",
    "user": "p_1",
    "content_id": "c1",
    "window_start": 0,
    "window_end": HOUR,
    "watched_ms": 5,
    "plays": 1,
    "completed": False,
    "events": 2,
}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("watched_ms", 2**31),
        ("watched_ms", 2**64),
        ("plays", 2**31),
        ("events", 2**31),
        ("window_start", 2**63),
        ("window_end", 2**64),
    ],
)
def test_trainer_decode_refuses_out_of_range_interactions(field: str, value: Any) -> None:
    with pytest.raises(ValidationFailed) as caught:
        decode_as(enc({**_INTERACTION, field: value}), Interaction)
    assert caught.value.reason == SCHEMA_VIOLATION
    assert caught.value.detail.endswith(f"`$.{field}`")


def test_outbound_structs_leave_the_pattern_to_the_decoder() -> None:
    """A deployment may configure a wider pattern; its trainer must still read its windows."""
    record = decode_as(enc({**_INTERACTION, "content_id": "c/1"}), Interaction)
    assert record.content_id == "c/1"


def test_redacted_events_carry_the_same_bounds() -> None:
    event = {
        "schema": "playback.redacted.v1",
        "user": "p_1",
        "content_id": "c1",
        "event_type": "heartbeat",
        "position_ms": 0,
        "duration_ms": HOUR,
        "watched_ms": MAX_PLAYHEAD_MS,
        "event_time": NOW_MS,
        "device_class": "tv",
        "country": "DE",
        "purposes": {"analytics": True, "personalization": True, "advertising": False},
    }
    decode_as(enc({"schema": "playback.redacted.batch.v1", "events": [event]}), RedactedBatch)
    for field, value in (("watched_ms", 2**64), ("duration_ms", MAX_DURATION_MS + 1), ("event_time", 2**63)):
        with pytest.raises(ValidationFailed):
            decode_as(
                enc({"schema": "playback.redacted.batch.v1", "events": [{**event, field: value}]}),
                RedactedBatch,
            )


# --- the property: boundary numbers never raise, never pass out of range -----------------

_NUMBERS = st.one_of(
    st.sampled_from(
        [0, -1, 1, 2**31 - 1, 2**31, 2**53, 2**53 + 1, 2**63 - 1, 2**63, 2**64, -(2**63), 10**400]
    ),
    st.sampled_from([MAX_DURATION_MS, MAX_DURATION_MS + 1, MAX_PLAYHEAD_MS, MAX_PLAYHEAD_MS + 1]),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([True, False, None, "", "1", "9" * 10_000, "x" * 100_000]),
)
_NUMERIC = ["watched_ms", "position_ms", "duration_ms", "event_time"]


def _in_range(event: dict[str, Any]) -> bool:
    """The bounds, restated from the issue: what a valid event looks like."""
    d, w, p, t = (event[k] for k in ("duration_ms", "watched_ms", "position_ms", "event_time"))
    if not all(type(v) is int for v in (d, w, p, t)):
        return False
    return (
        0 <= d <= 86_400_000 and 0 <= w <= d + 60_000 and 0 <= p <= d + 60_000 and 0 <= t <= NOW_MS + 60_000
    )


@settings(max_examples=300, deadline=None)
@given(data=st.data(), n=st.integers(1, 4))
def test_boundary_numbers_never_raise_and_out_of_range_is_always_rejected(
    data: st.DataObject, n: int
) -> None:
    envelope = batch(n)
    for event in envelope["events"]:
        for field in data.draw(st.sets(st.sampled_from(_NUMERIC), max_size=3)):
            event[field] = data.draw(_NUMBERS)
    result = dec(enc(envelope))
    valid = [e["event_id"] for e in envelope["events"] if _in_range(e)]
    assert [str(e.event_id) for e in result.events] == valid
    assert len(result.rejects) == n - len(valid)
    for reject in result.rejects:
        assert reject.reason in {SCHEMA_VIOLATION, OUT_OF_RANGE, FUTURE_EVENT_TIME}
        assert "9999999999" not in reject.detail and "xxxxxxxx" not in reject.detail


@pytest.mark.parametrize(
    ("field", "size"),
    [("search_query", 4097), ("error_message", 4097)],
)
def test_free_text_fields_are_bounded(field: str, size: int) -> None:
    """Every string a client sends has a bound (a 900 kB value used to pass to redaction)."""
    value = msgspec.json.encode(playback_event(**{field: "x" * size}))
    result = decode_raw(value, max_bytes=1 << 20, now_ms=NOW_MS, future_tolerance_ms=0)
    assert result.events == [] and result.rejects[0].reason == "schema_violation"
    assert result.rejects[0].detail.endswith(f"`$.{field}`")


@pytest.mark.parametrize(("field", "size"), [("ip", 65), ("user_agent", 1025), ("app_version", 65)])
def test_client_fields_are_bounded(field: str, size: int) -> None:
    event = msgspec.json.decode(msgspec.json.encode(playback_event()))
    event["client"][field] = "x" * size
    result = decode_raw(msgspec.json.encode(event), max_bytes=1 << 20, now_ms=NOW_MS, future_tolerance_ms=0)
    assert result.events == [] and result.rejects[0].reason == "schema_violation"
    assert result.rejects[0].detail.endswith(f"`$.client.{field}`")
