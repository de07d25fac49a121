"""Unit tests of the wire contract: decoding outcomes, reasons, privacy of details."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.errors import ValidationFailed
from pipeline.wire import (
    ENVELOPE_MIXED_USERS,
    FUTURE_EVENT_TIME,
    INVALID_CONTENT_ID,
    INVALID_JSON,
    OUT_OF_RANGE,
    OVERSIZE,
    SCHEMA_VIOLATION,
    UNKNOWN_SCHEMA,
    DeadLetter,
    Decoded,
    DlqSource,
    Interaction,
    PlaybackEvent,
    Purposes,
    RedactedBatch,
    RedactedEvent,
    decode_as,
    decode_consent,
    decode_raw,
    encode,
    safe_detail,
    to_epoch_ms,
)
from tests.support.events import NOW_MS, batch, consent, playback_event

PII = "PII-alice.smith@example.com"
TOLERANCE_MS = 60_000


def enc(obj: Any) -> bytes:
    return msgspec.json.encode(obj)


def dec(value: bytes | None, max_bytes: int = 1 << 20) -> Decoded:
    return decode_raw(value, max_bytes=max_bytes, now_ms=NOW_MS, future_tolerance_ms=TOLERANCE_MS)


def only_reject(result: Decoded) -> tuple[str, str]:
    assert result.events == []
    assert len(result.rejects) == 1
    return result.rejects[0].reason, result.rejects[0].detail


# --- valid input ---------------------------------------------------------------


def test_single_event_decodes() -> None:
    result = dec(enc(playback_event()))
    assert result.rejects == []
    [event] = result.events
    assert isinstance(event, PlaybackEvent)
    assert event.user_id == "user-0001"
    assert event.client.country == "DE"
    assert event.event_time == event.event_time_ms == NOW_MS - 600_000
    assert event.search_query is None


def test_envelope_of_500_decodes_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("pipeline.wire.decode._slow", None)  # must not be needed
    result = dec(enc(batch(500)))
    assert result.rejects == []
    assert [e.position_ms for e in result.events] == [i * 10_000 for i in range(500)]


def test_unknown_fields_are_tolerated_and_dropped() -> None:
    event = playback_event(new_field={"nested": PII})
    [decoded] = dec(enc(event)).events
    assert PII.encode() not in encode(decoded)


def test_inner_tag_may_be_absent_but_not_foreign() -> None:
    envelope = batch(2)
    del envelope["events"][0]["schema"]
    assert len(dec(enc(envelope)).events) == 2
    envelope["events"][1]["schema"] = "playback.v2"
    result = dec(enc(envelope))
    assert len(result.events) == 1
    assert [r.reason for r in result.rejects] == [UNKNOWN_SCHEMA]
    assert result.rejects[0].detail == "unsupported `schema` - at `$.events[1].schema`"


@pytest.mark.parametrize(
    "wire_time",
    [
        "2024-05-01T11:50:00Z",
        "2024-05-01T11:50:00.000Z",
        "2024-05-01T13:50:00+02:00",
        "2024-05-01T07:50:00-04:00",
        "2024-05-01T11:50:00.000999Z",
    ],
)
def test_rfc3339_and_epoch_ms_normalise_equally(wire_time: str) -> None:
    expected = NOW_MS - 600_000
    [from_text] = dec(enc(playback_event(event_time=wire_time))).events
    [from_int] = dec(enc(playback_event(event_time=expected))).events
    assert from_text.event_time == from_int.event_time == expected
    assert type(from_text.event_time) is int


def test_time_normalises_on_the_slow_path_too() -> None:
    envelope = batch(2, event_time="2024-05-01T11:50:00Z")
    envelope["events"][0]["position_ms"] = -1
    result = dec(enc(envelope))
    assert [e.event_time for e in result.events] == [NOW_MS - 600_000]


def test_event_time_at_the_tolerance_boundary_is_kept() -> None:
    result = dec(enc(playback_event(event_time=NOW_MS + TOLERANCE_MS)))
    assert len(result.events) == 1


# --- reject reasons -----------------------------------------------------------


def test_oversize_is_checked_before_parsing() -> None:
    reason, detail = only_reject(dec(b"\xff not json " + PII.encode(), max_bytes=8))
    assert reason == OVERSIZE
    assert PII not in detail


@pytest.mark.parametrize(
    "value",
    [None, b"", b"null", b"{not json", b'{"schema": "playback.v1"', b'"\xff\xfe"', b"\xff"],
)
def test_invalid_json(value: bytes | None) -> None:
    reason, _ = only_reject(dec(value))
    assert reason == INVALID_JSON


@pytest.mark.parametrize(
    "record",
    [
        {"schema": "playback.v2", "user_id": PII},
        {"schema": PII},
        {"user_id": PII},
        {"schema": "consent.v1"},
    ],
)
def test_unknown_schema(record: dict[str, Any]) -> None:
    reason, detail = only_reject(dec(enc(record)))
    assert reason == UNKNOWN_SCHEMA
    assert PII not in detail


@pytest.mark.parametrize(
    ("overrides", "path"),
    [
        ({"user_id": ""}, "$.user_id"),
        ({"user_id": PII * 10}, "$.user_id"),
        ({"event_type": PII}, "$.event_type"),
        ({"position_ms": -1}, "$.position_ms"),
        ({"watched_ms": 1.5}, "$.watched_ms"),
        ({"gpc": "yes"}, "$.gpc"),
        ({"event_id": PII}, "$.event_id"),
        ({"event_time": PII}, "$.event_time"),
        ({"event_time": True}, "$.event_time"),
        ({"event_time": -5}, "$.event_time"),
        ({"search_query": 7}, "$.search_query"),
        ({"client": {"ip": PII}}, "$.client"),
        ({"client": PII}, "$.client"),
    ],
)
def test_schema_violation_names_the_path_not_the_value(overrides: dict[str, Any], path: str) -> None:
    reason, detail = only_reject(dec(enc(playback_event(**overrides))))
    assert reason == SCHEMA_VIOLATION
    assert detail.endswith(f"`{path}`") or f"`{path}." in detail
    assert PII not in detail
    assert "user-0001" not in detail


@pytest.mark.parametrize("field", ["country", "device_class"])
def test_client_violations_hide_the_value(field: str) -> None:
    event = playback_event()
    event["client"][field] = PII
    reason, detail = only_reject(dec(enc(event)))
    assert reason == SCHEMA_VIOLATION
    assert detail.endswith(f"`$.client.{field}`")
    assert PII not in detail


def test_missing_offset_is_a_violation_that_says_so() -> None:
    reason, detail = only_reject(dec(enc(playback_event(event_time="2024-05-01T11:50:00"))))
    assert reason == SCHEMA_VIOLATION
    assert "timezone" in detail


def test_datetime_before_1970_is_a_violation() -> None:
    reason, detail = only_reject(dec(enc(playback_event(event_time="1969-12-31T23:59:59Z"))))
    assert reason == SCHEMA_VIOLATION
    assert "before 1970" in detail


@pytest.mark.parametrize(
    ("envelope", "fragment"),
    [
        ({"schema": "playback.batch.v1", "events": []}, "length >= 1"),
        ({"schema": "playback.batch.v1", "events": {}}, "array"),
        ({"schema": "playback.batch.v1"}, "events"),
        (batch(501), "length <= 500"),
    ],
)
def test_bad_envelope_rejects_the_whole_value(envelope: dict[str, Any], fragment: str) -> None:
    reason, detail = only_reject(dec(enc(envelope)))
    assert reason == SCHEMA_VIOLATION
    assert fragment in detail


def test_mixed_users_reject_every_event_of_the_envelope() -> None:
    envelope = batch(3)
    envelope["events"][2]["user_id"] = PII
    result = dec(enc(envelope))
    assert result.events == []
    assert [r.reason for r in result.rejects] == [ENVELOPE_MIXED_USERS] * 3
    assert all(PII not in r.detail and "user-0001" not in r.detail for r in result.rejects)


def test_future_event_is_rejected_alone() -> None:
    envelope = batch(3)
    envelope["events"][1]["event_time"] = NOW_MS + TOLERANCE_MS + 1
    result = dec(enc(envelope))
    assert [e.position_ms for e in result.events] == [0, 20_000]
    [reject] = result.rejects
    assert reject.reason == FUTURE_EVENT_TIME
    assert isinstance(reject.event, PlaybackEvent)


def test_one_bad_event_in_500_keeps_the_other_499() -> None:
    envelope = batch(500)
    envelope["events"][250]["client"]["country"] = PII
    result = dec(enc(envelope))
    assert len(result.events) == 499
    assert 250 * 10_000 not in {e.position_ms for e in result.events}
    [reject] = result.rejects
    assert reject.reason == SCHEMA_VIOLATION
    assert reject.detail.endswith("`$.events[250].client.country`")
    assert PII not in reject.detail
    assert isinstance(reject.event, dict)  # raw, for the DLQ writer to redact


def test_non_object_inside_envelope_is_rejected_alone() -> None:
    envelope = batch(2)
    envelope["events"].append([PII])
    result = dec(enc(envelope))
    assert len(result.events) == 2
    assert [(r.reason, r.detail) for r in result.rejects] == [
        (SCHEMA_VIOLATION, "Expected `object`, got `array` - at `$.events[2]`")
    ]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(value: bytes) -> None:
    result = dec(value)
    assert len(result.events) + len(result.rejects) >= 1


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(field=st.sampled_from(sorted(playback_event())), value=json_values)
def test_any_field_value_yields_an_outcome_without_that_value(field: str, value: Any) -> None:
    if isinstance(value, str):
        value = "PII-" + value
    result = dec(enc(batch(2, **{field: value})))
    assert len(result.events) + len(result.rejects) >= 1
    for reject in result.rejects:
        assert reject.reason in {
            SCHEMA_VIOLATION,
            UNKNOWN_SCHEMA,
            FUTURE_EVENT_TIME,
            OUT_OF_RANGE,
            INVALID_CONTENT_ID,
        }
        assert "PII-" not in reject.detail


# --- safe_detail -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("Expected `int` >= 0 - at `$.position_ms`", "Expected `int` >= 0 - at `$.events[1].position_ms`"),
        (
            f"Invalid enum value '{PII}' - at `$.event_type`",
            "Invalid enum value - at `$.events[1].event_type`",
        ),
        (f"Invalid value '{PII}' - at `$.schema`", "Invalid value - at `$.events[1].schema`"),
        (f"Object contains unknown field `{PII}`", "Object contains unknown field - at `$.events[1]`"),
        (f"something new {PII}", "Invalid value - at `$.events[1]`"),
        (f"Expected `int` - at `$.{PII}`", "Expected `int` - at `$.events[1]`"),
    ],
)
def test_safe_detail(message: str, expected: str) -> None:
    assert safe_detail(message, ".events[1]") == expected


# --- encode / round trip -------------------------------------------------------------


def test_round_trip_encode_decode() -> None:
    [event] = dec(enc(playback_event(event_time="2024-05-01T11:50:00Z", search_query="x"))).events
    wire = encode(event)
    assert wire.startswith(b'{"schema":"playback.v1"')
    [again] = dec(wire).events
    assert again == event
    assert msgspec.json.decode(wire)["event_time"] == NOW_MS - 600_000


def redacted(**overrides: Any) -> RedactedEvent:
    fields: dict[str, Any] = {
        "user": "p_3f2a",
        "content_id": "content-0001",
        "event_type": "play",
        "position_ms": 0,
        "duration_ms": 1000,
        "watched_ms": 0,
        "event_time": NOW_MS,
        "device_class": "tv",
        "country": "DE",
        "purposes": Purposes(analytics=True, personalization=True, advertising=False),
    }
    fields.update(overrides)
    return RedactedEvent(**fields)


def test_redacted_round_trip() -> None:
    record = RedactedBatch(events=[redacted(), redacted(position_ms=5)])
    assert decode_as(encode(record), RedactedBatch) == record


@pytest.mark.parametrize("where", ["root", "purposes"])
def test_redacted_forbids_extra_fields(where: str) -> None:
    doc = msgspec.json.decode(encode(redacted()))
    (doc if where == "root" else doc["purposes"])[PII] = "x"
    with pytest.raises(ValidationFailed) as info:
        decode_as(enc(doc), RedactedEvent)
    assert info.value.reason == SCHEMA_VIOLATION
    assert "unknown field" in info.value.detail
    assert PII not in str(info.value)


def test_decode_as_rejects_bad_json() -> None:
    with pytest.raises(ValidationFailed) as info:
        decode_as(b"{", Interaction)
    assert info.value.reason == INVALID_JSON


def test_interaction_needs_at_least_one_event() -> None:
    row = Interaction(
        user="p_1",
        content_id="c",
        window_start=0,
        window_end=60_000,
        watched_ms=10,
        plays=1,
        completed=False,
        events=0,
    )
    with pytest.raises(ValidationFailed):
        decode_as(encode(row), Interaction)


def test_dead_letter_round_trips_and_refuses_extra_fields() -> None:
    source = DlqSource(topic="playback.raw", partition=3, offset=42)
    letter = DeadLetter(reason=OVERSIZE, detail="d - at `$`", path="$", source=source, at=NOW_MS)
    assert set(msgspec.json.decode(encode(letter))) == {"schema", "reason", "detail", "path", "source", "at"}
    assert decode_as(encode(letter), DeadLetter) == letter
    smuggled = msgspec.json.decode(encode(letter)) | {"payload": {"user_id": "alice"}}
    with pytest.raises(ValidationFailed):
        decode_as(msgspec.json.encode(smuggled), DeadLetter)
    with pytest.raises(ValidationFailed):  # a field name must be identifier-shaped
        decode_as(msgspec.json.encode(smuggled | {"fields": ["a@b.de"]}), DeadLetter)


# --- consent -------------------------------------------------------------------------


def test_consent_decodes_and_normalises_time() -> None:
    record = decode_consent(enc(consent()))
    assert record is not None
    assert record.purposes.personalization is True
    assert record.updated_at == record.updated_at_ms == NOW_MS - 2 * 3_600_000


def test_consent_tombstone_is_none() -> None:
    assert decode_consent(None) is None


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"{", INVALID_JSON),
        (b"null", INVALID_JSON),
        (enc([1]), SCHEMA_VIOLATION),
        (enc(consent(schema="consent.v2")), UNKNOWN_SCHEMA),
        (enc({k: v for k, v in consent().items() if k != "schema"}), UNKNOWN_SCHEMA),
        (enc(consent(user_id="")), SCHEMA_VIOLATION),
        (enc(consent(purposes={"analytics": PII})), SCHEMA_VIOLATION),
        (enc(consent(updated_at="2024-05-01T10:00:00")), SCHEMA_VIOLATION),
    ],
)
def test_consent_failures(value: bytes, reason: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        decode_consent(value)
    assert info.value.reason == reason
    assert PII not in str(info.value)


def test_to_epoch_ms_passes_ints_through() -> None:
    assert to_epoch_ms(123) == 123
