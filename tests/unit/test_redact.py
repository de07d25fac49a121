"""Tests for pipeline.privacy.redact: the allow-list projection of playback events."""

from __future__ import annotations

import json
import string
from functools import partial
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.privacy.pseudonym import Pseudonymizer, PseudonymKey
from pipeline.privacy.redact import ALLOWED_FIELDS, REDACTED_SCHEMA, redact_event, removed_field_count
from pipeline.wire import PlaybackEvent, RedactedEvent, encode
from pipeline.wire import Purposes as WirePurposes
from tests.support.events import playback_event
from tests.support.pii import filler, pii_tokens

SETTINGS = settings(max_examples=200, deadline=None)
PSEUDO = Pseudonymizer([PseudonymKey("k1", b"test-secret-0123456789")])
CONSENT = WirePurposes(analytics=True, personalization=True, advertising=True)


make_event = partial(
    playback_event,
    user="alice@example.com",
    content="movie-42",
    position_ms=61_000,
    duration_ms=5_400_000,
    watched=30_000,
    t=1_712_345_678_901,
    search_query="films like alice@example.com",
    error_message="timeout calling 203.0.113.7",
)
"""A heartbeat with free text in both optional fields: the one factory, bound to the values checked below."""


# --- redact_event (what the stream runs) ------------------------------------------


def parsed(event: dict[str, Any]) -> PlaybackEvent:
    return msgspec.convert({"schema": "playback.v1", **event}, PlaybackEvent)


def as_json(record: RedactedEvent) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(encode(record))
    return out


def test_redact_projects_exactly_the_allowed_fields() -> None:
    out = as_json(redact_event(parsed(make_event()), "k1.abc", CONSENT))
    assert out == {
        "schema": REDACTED_SCHEMA,
        "user": "k1.abc",
        "content_id": "movie-42",
        "event_type": "heartbeat",
        "position_ms": 61_000,
        "duration_ms": 5_400_000,
        "watched_ms": 30_000,
        "event_time": 1_712_345_678_901,
        "device_class": "tv",
        "country": "DE",
        "purposes": {"analytics": True, "personalization": True, "advertising": True},
    }
    assert set(out) - {"schema"} == set(ALLOWED_FIELDS)


def test_unknown_fields_never_reach_the_redacted_record() -> None:
    event = parsed(make_event(name="Alice Example", idfa="6D92078A-8246-4BA4-AE5B-76104861E7DC"))
    dumped = encode(redact_event(event, "k1.abc", CONSENT)).decode()
    assert "Alice" not in dumped and "6D92078A" not in dumped


def test_removed_field_count_counts_what_did_not_reach_the_record() -> None:
    # event_id, user_id, session_id, device_id, gpc, search_query, error_message
    # + client.ip, client.user_agent, client.app_version
    assert removed_field_count(parsed(make_event())) == 10
    assert removed_field_count(parsed(make_event(search_query=None, error_message=None))) == 8
    assert removed_field_count(parsed(make_event(error_message=None))) == 9


# --- generated events carrying PII ----------------------------------------------

distinct_ids = st.text(string.ascii_letters + string.digits, min_size=12, max_size=24).map(lambda s: "ID" + s)
pii_texts = st.builds(lambda a, t, b: f"{a} {t} {b}", filler, pii_tokens, filler)


@st.composite
def raw_events(draw: st.DrawFn) -> tuple[dict[str, Any], list[str]]:
    """A raw event whose identifying fields carry PII, and every PII token used."""
    tokens: list[str] = []

    def pick(strategy: st.SearchStrategy[str]) -> str:
        token = draw(strategy)
        tokens.append(token)
        return token

    def text_field() -> str:
        token = draw(pii_tokens)
        tokens.append(token)
        return f"{draw(filler)} {token} {draw(filler)}"

    user_id = pick(st.one_of(distinct_ids, pii_tokens))
    session_id, device_id = pick(distinct_ids), pick(distinct_ids)
    event = make_event(
        user_id=user_id,
        session_id=session_id,
        device_id=device_id,
        client={
            "ip": pick(pii_tokens),
            "user_agent": f"Mozilla/5.0 {pick(distinct_ids)}",
            "app_version": pick(pii_tokens),
            "device_class": draw(st.sampled_from(["tv", "mobile", "web"])),
            "country": draw(st.sampled_from(["DE", "FR", "US"])),
        },
        gpc=draw(st.booleans()),
        search_query=text_field(),
        # Error messages often quote identifiers.
        error_message=f"{text_field()} for user {user_id} in {session_id} on {device_id}",
        position_ms=draw(st.integers(0, 999_999)),
    )
    return event, tokens


def assert_no_token(out: Any, tokens: list[str]) -> None:
    dumped = json.dumps(out, ensure_ascii=False)
    for token in tokens:
        assert token not in dumped, token


@SETTINGS
@given(raw_events(), st.booleans(), st.booleans())
def test_redact_never_leaks_pii(case: tuple[dict[str, Any], list[str]], pers: bool, ads: bool) -> None:
    event, tokens = case
    out = as_json(
        redact_event(
            parsed(event),
            PSEUDO.pseudonym(event["user_id"]),
            WirePurposes(analytics=True, personalization=pers, advertising=ads),
        )
    )
    assert set(out) - {"schema"} == set(ALLOWED_FIELDS)
    assert_no_token(out, tokens)


# --- redact_by_consent (judge each event at its time, then redact) -------------------------


def test_each_event_is_judged_by_the_consent_in_force_at_its_time():
    from pipeline.privacy.consent import Purposes
    from pipeline.privacy.consent_history import Change, ConsentHistory
    from pipeline.privacy.redact import redact_by_consent

    t0 = 1_712_345_678_901
    analytics, both = Purposes(True, False, False), Purposes(True, True, False)
    history = ConsentHistory((Change(t0 - 60_000, 0, analytics), Change(t0 + 60_000, 1, both)))
    at_t0, later, before = (
        msgspec.convert(make_event(t=t), PlaybackEvent) for t in (t0, t0 + 120_000, t0 - 120_000)
    )
    out = redact_by_consent([at_t0, later, before], "p1", history, default=None)
    assert [r.purposes.personalization for r in out.redacted] == [False, True]
    assert sum(out.dropped.values()) == 1  # before any consent: dropped, counted by reason
    assert out.removed_fields == removed_field_count(at_t0) + removed_field_count(later)
    assert redact_by_consent([at_t0, later], "p1", None, default=None).redacted == []  # no record: deny
