"""Dead letters are an allow-list: no value a producer sent ever reaches ``playback.dlq``."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.privacy.deadletter import OTHER_FIELD, dead_letter, field_names, schema_path
from pipeline.privacy.pseudonym import Pseudonymizer, PseudonymKey
from pipeline.stream import StreamConfig, StreamProcessor
from pipeline.windows import WindowSpec
from pipeline.wire import DeadLetter, DlqSource, decode_as, encode
from pipeline.wire.outbound import MAX_DLQ_FIELDS

PZ = Pseudonymizer([PseudonymKey("k1", b"0123456789abcdef0123456789abcdef")])
SOURCE = DlqSource(topic="playback.raw", partition=2, offset=99)
NOW = 1_900_000_000_000

#: Every value of HOSTILE that must never appear in a dead letter.
SECRETS = [
    "u-7731",  # a short raw user id
    "+49 170 1234567",
    "4111 1111 1111 1111",
    "52.520008",
    "13.404954",
    "Jane Q. Doe",
    "00:1A:2B:3C:4D:5E",
    "6D92078A-8246-4BA4-AE5B-76104861E7DC",
    "Unter den Linden 77, 10117 Berlin",
    "jane@example.org",
    "203.0.113.77",
    "sess-998877",
]


def hostile() -> dict[str, Any]:
    """An invalid playback event stuffed with personal data in known and unknown fields."""
    return {
        "schema": "playback.v1",
        "event_id": "not-a-uuid",
        "user_id": "u-7731",
        "session_id": "sess-998877",
        "content_id": "movie-1",
        "event_type": "call +49 170 1234567",  # invalid enum value, quoted by msgspec
        "position_ms": -1,
        "phone": "+49 170 1234567",
        "card": "4111 1111 1111 1111",
        "lat": 52.520008,
        "lon": 13.404954,
        "name": "Jane Q. Doe",
        "mac": "00:1A:2B:3C:4D:5E",
        "idfa": "6D92078A-8246-4BA4-AE5B-76104861E7DC",
        "address": "Unter den Linden 77, 10117 Berlin",
        "jane@example.org": True,  # a value smuggled in as a field name
        "_4111111111111111": 1,  # identifier-shaped, but a card number
        "client": {"ip": "203.0.113.77", "geo": {"lat": 52.520008}, "user_agent": "u-7731 phone"},
    }


def _assert_clean(blob: bytes) -> None:
    text = blob.decode()
    for secret in SECRETS:
        assert secret not in text, secret
    assert "4111111111111111" not in text


def test_builder_keeps_names_and_never_values() -> None:
    detail = "Invalid enum value 'call +49 170 1234567' for u-7731 - at `$.event_type`"
    letter = dead_letter(
        reason="schema_violation",
        source=SOURCE,
        at=NOW,
        detail=detail,
        event=hostile(),
        pseudonymizer=PZ,
        value_bytes=812,
    )
    blob = encode(letter)
    _assert_clean(blob)
    assert decode_as(blob, DeadLetter) == letter
    assert letter.detail == "field does not match the schema - at `$.event_type`"
    assert letter.path == "$.event_type"
    assert letter.pseudonym == PZ.pseudonym("u-7731")
    assert (letter.value_bytes, letter.events) == (812, 1)
    assert {"phone", "card", "lat", "lon", "name", "mac", "idfa", "address", "client.ip"} <= set(
        letter.fields
    )
    assert "client.geo" in letter.fields and OTHER_FIELD in letter.fields
    assert "raw_b64" not in json.loads(blob) and "payload" not in json.loads(blob)


def test_processor_dead_letters_a_hostile_envelope_without_a_value() -> None:
    proc = StreamProcessor(
        StreamConfig(window=WindowSpec(size_ms=3_600_000, grace_ms=0)), PZ, clock=lambda: NOW
    )
    value = json.dumps({"schema": "playback.batch.v1", "events": [hostile(), hostile()]}).encode()
    fx = proc.on_playback(2, 99, b"u-7731", value, lambda _: None)
    assert len(fx.dlq) == 2 and not fx.quarantine and not fx.redacted
    for _, blob in fx.dlq:
        _assert_clean(blob)
        letter = decode_as(blob, DeadLetter)
        assert letter.reason == "schema_violation" and letter.value_bytes == len(value)
        assert letter.source == SOURCE and letter.quarantine is None
    assert proc.counters["dlq:schema_violation"] == 2


@pytest.mark.parametrize(
    ("handler", "args"),
    [
        ("on_consent", (b"u-7731", b'{"schema":"consent.v1","user_id":"u-7731","phone":"+49 170 1234567"}')),
        ("on_erasure", (b"u-7731", b'{"schema":"erasure.v1","user_id":"u-7731 jane@example.org"}')),
        ("on_playback", (b"sess-998877", json.dumps(hostile() | {"position_ms": 0}).encode())),
    ],
)
def test_every_dead_letter_of_the_stream_is_value_free(handler: str, args: tuple[bytes, bytes]) -> None:
    proc = StreamProcessor(
        StreamConfig(window=WindowSpec(size_ms=3_600_000, grace_ms=0)), PZ, clock=lambda: NOW
    )
    extra = (lambda _: None,) if handler == "on_playback" else ()
    fx = getattr(proc, handler)(2, 99, *args, *extra)
    assert fx.dlq
    for _, blob in fx.dlq:
        _assert_clean(blob)
        assert decode_as(blob, DeadLetter).pseudonym in (PZ.pseudonym("u-7731"), None)


def test_raw_bytes_go_to_the_quarantine_topic_only_when_enabled() -> None:
    config = StreamConfig(window=WindowSpec(size_ms=3_600_000, grace_ms=0), dlq_include_raw=True)
    proc = StreamProcessor(config, PZ, clock=lambda: NOW)
    value = json.dumps({"schema": "playback.batch.v1", "events": [hostile(), hostile()]}).encode()
    fx = proc.on_playback(2, 99, b"u-7731", value, lambda _: None)
    ((key, raw),) = fx.quarantine  # one copy per message, however many dead letters it made
    assert raw == value
    for _, blob in fx.dlq:
        _assert_clean(blob)
        assert decode_as(blob, DeadLetter).quarantine == key.decode()


@pytest.mark.parametrize(
    ("detail", "path"),
    [
        ("Expected `int` >= 0 - at `$.events[3].position_ms`", "$.events[3].position_ms"),
        ("Invalid enum value 'x' - at `$.event_type`", "$.event_type"),
        ("Object contains unknown field `jane@example.org` - at `$`", "$"),
        ("value of 99 bytes - at `$.a b`", "$"),
        ("value is JSON null", "$"),
        ("x - at `$" + ".a" * 100 + "`", "$"),
    ],
)
def test_schema_path_keeps_only_schema_shaped_paths(detail: str, path: str) -> None:
    assert schema_path(detail) == path


def test_field_names_are_capped_and_identifier_shaped() -> None:
    obj = {f"f{i}": i for i in range(500)} | {"x" * 33: 1, "a-b": 2, "p5551234567": 3}
    names = field_names(obj)
    assert len(names) == MAX_DLQ_FIELDS
    assert all(len(n) <= 65 for n in names)
    assert field_names({"x" * 33: 1, "a-b": 2, "p5551234567": 3, "ok": {"in ner": 1}}) == ["ok", OTHER_FIELD]
    assert field_names("not an object") == []


@settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(
        st.text(max_size=40),
        st.one_of(
            st.text(max_size=40),
            st.integers(),
            st.floats(allow_nan=False),
            st.dictionaries(st.text(max_size=20), st.text(max_size=20), max_size=4),
        ),
        max_size=20,
    ),
    st.text(max_size=80),
)
def test_no_generated_value_reaches_the_dead_letter(event: dict[str, Any], detail: str) -> None:
    letter = dead_letter(
        reason="schema_violation", source=SOURCE, at=NOW, detail=detail, event=event, pseudonymizer=PZ
    )
    data = json.loads(encode(letter))
    allowed = set(data.get("fields", [])) | {
        data["detail"],
        data["path"],
        "dlq.v2",
        "schema_violation",
        "playback.raw",
    }
    allowed |= {data.get("pseudonym")} - {None}
    strings = [s for s in _strings(data) if s not in allowed]
    assert not strings
    for value in event.values():  # a value shows up only where it equals an allowed name
        if isinstance(value, str) and len(value) > 3:
            assert value not in data["detail"]


def _strings(obj: Any) -> list[str]:
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, dict):
        return [s for v in obj.values() for s in _strings(v)]
    if isinstance(obj, list):
        return [s for v in obj for s in _strings(v)]
    return []
