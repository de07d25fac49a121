"""Issue 10: hostile nesting is a typed reject, never a RecursionError.

On main, 1,000 nested brackets (2 kB) raised RecursionError out of
``decode_raw`` (whose contract is to never raise), ``decode_consent`` and
``decode_as``.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.errors import ValidationFailed
from pipeline.wire import (
    MAX_JSON_DEPTH,
    SCHEMA_VIOLATION,
    TOO_DEEP,
    DeadLetter,
    Decoded,
    Interaction,
    RedactedBatch,
    decode_as,
    decode_consent,
    decode_raw,
)
from pipeline.wire.depth import too_deep
from tests.support.events import NOW_MS, batch, consent, playback_event

DEEP = [1_000, 5_000, 100_000]


def arrays(n: int) -> bytes:
    return b"[" * n + b"]" * n


def objects(n: int) -> bytes:
    return b'{"a":' * n + b"1" + b"}" * n


def splice(record: dict[str, Any], value: bytes) -> bytes:
    """``record`` with its ``extra`` field's JSON replaced by ``value``."""
    return msgspec.json.encode({**record, "extra": 0}).replace(b'"extra":0', b'"extra":' + value)


def dec(value: bytes) -> Decoded:
    return decode_raw(value, max_bytes=1 << 22, now_ms=NOW_MS, future_tolerance_ms=60_000)


def only_reject(result: Decoded) -> tuple[str, str]:
    assert result.events == []
    assert len(result.rejects) == 1
    return result.rejects[0].reason, result.rejects[0].detail


# --- decode_raw -----------------------------------------------------------------------


@pytest.mark.parametrize("n", DEEP)
@pytest.mark.parametrize(
    "build",
    [
        arrays,
        objects,
        lambda n: b"[" * n,  # never closed
        lambda n: splice(playback_event(), arrays(n)),  # deep unknown field of a valid event
        lambda n: splice(batch(3), objects(n)),  # deep inside a valid envelope
        lambda n: msgspec.json.encode(batch(3)).replace(b'"gpc":false', b'"gpc":' + arrays(n), 1),
        lambda n: msgspec.json.encode(batch(3)).replace(
            b'"content_id":"content-0000"', b'"content_id":' + objects(n)
        ),
    ],
    ids=["arrays", "objects", "unclosed", "in-event", "in-envelope", "in-field", "in-id"],
)
def test_hostile_depth_is_a_typed_reject(build: Any, n: int) -> None:
    reason, detail = only_reject(dec(build(n)))
    assert reason == TOO_DEEP
    assert detail == f"arrays/objects nest deeper than {MAX_JSON_DEPTH} levels - at `$`"


def test_depth_limit_applies_before_the_generic_parse() -> None:
    """The slow path (one event invalid) parses generically: more than 32 levels are refused."""
    envelope = batch(2)
    envelope["events"][1]["position_ms"] = -1
    shallow = splice(envelope, arrays(MAX_JSON_DEPTH - 1))  # 1 (root) + 31 = 32 levels
    result = dec(shallow)
    assert len(result.events) == 1 and [r.reason for r in result.rejects] == [SCHEMA_VIOLATION]
    assert only_reject(dec(splice(envelope, arrays(MAX_JSON_DEPTH))))[0] == TOO_DEEP


def test_brackets_in_strings_are_not_nesting() -> None:
    hostile_text = "[{" * 1_000 + '\\"]}' * 10
    result = dec(msgspec.json.encode(playback_event(search_query=hostile_text)))
    assert result.rejects == [] and result.events[0].search_query == hostile_text


# --- decode_consent and decode_as -------------------------------------------------------------


@pytest.mark.parametrize("value", [arrays(1_000), objects(1_000), splice(consent(), arrays(1_000))])
def test_consent_decoder_raises_its_typed_error(value: bytes) -> None:
    with pytest.raises(ValidationFailed) as caught:
        decode_consent(value)
    assert caught.value.reason == TOO_DEEP


@pytest.mark.parametrize("kind", [Interaction, RedactedBatch, DeadLetter])
@pytest.mark.parametrize("build", [arrays, objects])
def test_decode_as_raises_only_its_typed_error(kind: type, build: Any) -> None:
    with pytest.raises(ValidationFailed) as caught:
        decode_as(build(5_000), kind)
    assert caught.value.reason in {TOO_DEEP, SCHEMA_VIOLATION}  # refused at `$` or at depth


def test_decode_as_deep_unknown_field() -> None:
    record = {
        "schema": "interaction.v1",
        "user": "p_1",
        "content_id": "c1",
        "window_start": 0,
        "window_end": 1,
        "watched_ms": 0,
        "plays": 0,
        "completed": False,
        "events": 1,
    }
    with pytest.raises(ValidationFailed) as caught:
        decode_as(splice(record, arrays(5_000)), Interaction)
    assert caught.value.reason == TOO_DEEP


def test_decode_as_deep_unknown_field_of_an_interaction() -> None:
    record = {
        "schema": "interaction.v1", "user": "p", "content_id": "c", "window_start": 0,
        "window_end": 3_600_000, "watched_ms": 1, "plays": 1, "completed": False, "events": 1,
        "extra": {},
    }  # fmt: skip
    value = msgspec.json.encode(record).replace(b'"extra":{}', b'"extra":' + objects(2_000))
    with pytest.raises(ValidationFailed) as caught:
        decode_as(value, Interaction)
    assert caught.value.reason == TOO_DEEP


# --- too_deep itself ----------------------------------------------------------------------------


@pytest.mark.parametrize("build", [arrays, objects])
def test_limit_is_exact(build: Any) -> None:
    assert not too_deep(build(MAX_JSON_DEPTH))
    assert too_deep(build(MAX_JSON_DEPTH + 1))


@pytest.mark.parametrize(
    ("value", "deep"),
    [
        (b'["' + b"[" * 40 + b'"]', False),  # brackets in a string
        (b'["' + b"]" * 40 + b'",' + arrays(33) + b"]", True),  # closers in a string hide nothing
        (b'["\\"' + b"]" * 40 + b'",' + arrays(33) + b"]", True),  # nor after an escaped quote
        (b'["\\\\",' + arrays(31) + b"]", False),  # an escaped backslash ends the string
        (b'["\\\\\\"]]]]",' + arrays(33) + b"]", True),
        (b"[]" * 1_000, False),  # many, but flat
        (b'{"a":' + b"[1]," * 500 + b"2}", False),
        (b"[" * 33, True),
        (b"]" * 100 + b"[" * 10, False),
    ],
)
def test_strings_and_escapes(value: bytes, deep: bool) -> None:
    assert too_deep(value) is deep


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab', max_size=6),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text('[]{}"\\', max_size=3), children, max_size=3)
    ),
    max_leaves=30,
)


def _depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    return 0


@settings(max_examples=300, deadline=None)
@given(value=json_values, limit=st.integers(0, 6))
def test_too_deep_agrees_with_the_parsed_depth(value: Any, limit: int) -> None:
    assert too_deep(msgspec.json.encode(value), limit) is (_depth(value) > limit)
