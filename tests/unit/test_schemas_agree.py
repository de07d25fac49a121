"""The committed ``schemas/*.json`` files and the wire structs say the same thing.

The files are generated from the structs; these tests fail when someone edits
one without regenerating the other (``python -m pipeline.wire.jsonschema``),
and check with an independent validator that both accept and refuse the same
sample records.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

import schemas
from pipeline.errors import ValidationFailed
from pipeline.wire import decode_as, decode_consent, decode_raw, jsonschema
from tests.support.events import NOW_MS, batch, consent, playback_event


def test_committed_files_equal_generated() -> None:
    generated = jsonschema.generate()
    assert schemas.names() == sorted(generated)
    for name, document in generated.items():
        assert schemas.load(name) == document, f"regenerate schemas/{name}.json"
        text = (jsonschema.DEFAULT_DIR / f"{name}.json").read_text(encoding="utf-8")
        assert text == jsonschema.render(document), f"regenerate schemas/{name}.json"


def test_check_mode_passes_on_committed_files() -> None:
    assert jsonschema.main(["--check"]) == 0


def test_documents_are_self_describing() -> None:
    for name in schemas.names():
        document = schemas.load(name)
        assert document["title"] == name
        assert document["$id"].endswith(name)
        assert document["description"]
        assert document["properties"]["schema"] == {"enum": [name]}
        assert "schema" in document["required"]


def test_redacted_schema_forbids_extra_properties() -> None:
    document = schemas.load("playback.redacted.v1")
    assert document["additionalProperties"] is False
    assert document["$defs"]["Purposes"]["additionalProperties"] is False


@pytest.mark.parametrize("name", ["nope", "../tests/conftest", "playback.v1/../x"])
def test_load_refuses_unknown_names(name: str) -> None:
    with pytest.raises(KeyError):
        schemas.load(name)


def _redacted(**overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "schema": "playback.redacted.v1",
        "user": "p_1",
        "content_id": "c",
        "event_type": "play",
        "position_ms": 0,
        "duration_ms": 1,
        "watched_ms": 0,
        "event_time": NOW_MS,
        "device_class": "web",
        "country": "FR",
        "purposes": {"analytics": True, "personalization": False, "advertising": False},
    }
    record.update(overrides)
    return record


def _client(**overrides: Any) -> dict[str, Any]:
    client = dict(playback_event()["client"])
    client.update(overrides)
    return client


_SOURCE = {"topic": "playback.raw", "partition": 0, "offset": 7}
_INTERACTION = {
    "schema": "interaction.v1",
    "user": "p_1",
    "content_id": "c",
    "window_start": 0,
    "window_end": 60_000,
    "watched_ms": 5,
    "plays": 1,
    "completed": False,
    "events": 2,
}

SAMPLES: list[tuple[str, dict[str, Any], bool]] = [
    ("playback.v1", playback_event(), True),
    ("playback.v1", playback_event(event_time="2024-05-01T13:50:00+02:00"), True),
    ("playback.v1", playback_event(search_query="q", error_message=None, extra=1), True),
    ("playback.v1", playback_event(event_time="2024-05-01T11:50:00"), False),
    ("playback.v1", playback_event(event_time=-1), False),
    ("playback.v1", playback_event(event_type="rewind"), False),
    ("playback.v1", playback_event(user_id=""), False),
    ("playback.v1", playback_event(user_id="u" * 129), False),
    ("playback.v1", playback_event(event_id="not-a-uuid"), False),
    ("playback.v1", playback_event(gpc=None), False),
    ("playback.v1", playback_event(client=_client(country="de")), False),
    ("playback.v1", playback_event(client=_client(device_class="fridge")), False),
    ("playback.v1", playback_event(schema="playback.v2"), False),
    ("playback.v1", {k: v for k, v in playback_event().items() if k != "schema"}, False),
    ("playback.v1", playback_event(watched_ms=2**64), False),
    ("playback.v1", playback_event(duration_ms=86_400_001), False),
    ("playback.v1", playback_event(duration_ms=86_400_000, position_ms=86_460_000), True),
    ("playback.v1", playback_event(position_ms=86_460_001), False),
    ("playback.v1", playback_event(content_id="ml:123"), True),
    ("playback.v1", playback_event(content_id="me@example.org"), False),
    ("playback.v1", playback_event(content_id="c" * 65), False),
    ("playback.batch.v1", batch(3), True),
    ("playback.batch.v1", {"schema": "playback.batch.v1", "events": []}, False),
    ("playback.batch.v1", batch(501), False),
    ("consent.v1", consent(), True),
    ("consent.v1", consent(updated_at=NOW_MS, future_purpose=True), True),
    ("consent.v1", consent(purposes={"analytics": True}), False),
    ("playback.redacted.v1", _redacted(), True),
    ("playback.redacted.v1", _redacted(user_id="raw"), False),
    ("playback.redacted.v1", _redacted(event_time="2024-05-01T12:00:00Z"), False),
    (
        "playback.redacted.v1",
        _redacted(purposes={"analytics": True, "personalization": True, "advertising": True, "x": 1}),
        False,
    ),
    ("playback.redacted.batch.v1", {"schema": "playback.redacted.batch.v1", "events": [_redacted()]}, True),
    (
        "playback.redacted.batch.v1",
        {"schema": "playback.redacted.batch.v1", "events": [_redacted(ip="1.2.3.4")]},
        False,
    ),
    ("interaction.v1", _INTERACTION, True),
    ("interaction.v1", {**_INTERACTION, "events": 0}, False),
    ("interaction.v1", {**_INTERACTION, "watched_ms": 2**31}, False),
    ("interaction.v1", {**_INTERACTION, "plays": 2**31}, False),
    ("interaction.v1", {**_INTERACTION, "window_end": 2**63}, False),
    ("playback.redacted.v1", _redacted(watched_ms=2**64), False),
    (
        "dlq.v2",
        {
            "schema": "dlq.v2",
            "reason": "oversize",
            "detail": "d",
            "path": "$",
            "source": _SOURCE,
            "at": NOW_MS,
        },
        True,
    ),
    (
        "dlq.v2",
        {
            "schema": "dlq.v2",
            "reason": "schema_violation",
            "detail": "d",
            "path": "$.events[3].position_ms",
            "source": _SOURCE,
            "at": NOW_MS,
            "value_bytes": 812,
            "events": 4,
            "fields": ["client.ip", "other", "user_id"],
            "pseudonym": "k1.abc",
            "quarantine": "0123456789abcdef0123456789abcdef",
        },
        True,
    ),
    (
        "dlq.v2",
        {
            "schema": "dlq.v2",
            "reason": "Bad Reason!",
            "detail": "d",
            "path": "$",
            "source": _SOURCE,
            "at": NOW_MS,
        },
        False,
    ),
    (
        "dlq.v2",
        {
            "schema": "dlq.v2",
            "reason": "oversize",
            "detail": "d",
            "path": "$",
            "source": _SOURCE,
            "at": NOW_MS,
            "payload": {"user_id": "alice"},
        },
        False,
    ),
]


def _ids() -> list[str]:
    return [f"{name}-{i}-{'ok' if ok else 'bad'}" for i, (name, _, ok) in enumerate(SAMPLES)]


@pytest.mark.parametrize(("name", "record", "valid"), SAMPLES, ids=_ids())
def test_file_and_struct_agree_on_samples(name: str, record: dict[str, Any], valid: bool) -> None:
    fastjsonschema = pytest.importorskip("fastjsonschema")
    validate = fastjsonschema.compile(schemas.load(name))
    try:
        validate(record)
        file_says = True
    except fastjsonschema.JsonSchemaValueException:
        file_says = False
    assert file_says is valid
    assert _code_accepts(name, msgspec.json.encode(record)) is valid


def _code_accepts(name: str, value: bytes) -> bool:
    """Ask the entry point privrec really uses for records of this name."""
    if name in {"playback.v1", "playback.batch.v1"}:
        result = decode_raw(value, max_bytes=1 << 20, now_ms=NOW_MS, future_tolerance_ms=0)
        return not result.rejects
    try:
        if name == "consent.v1":
            decode_consent(value)
        else:
            decode_as(value, jsonschema.RECORDS[name])
    except ValidationFailed:
        return False
    return True
