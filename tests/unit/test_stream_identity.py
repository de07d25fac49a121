"""The stream keys a viewer by the canonical form of their id (issue 10: canonical user ids).

Producers key ``playback.raw``, ``consent`` and ``erasure`` by
``canonical_user_id``; the processor accepts a record whose body spells the id
differently (case, NFD, surrounding whitespace) and refuses a key that is not
the canonical form, so one viewer's consent, events and erasure meet on one
partition under one pseudonym.
"""

from __future__ import annotations

import json

import pytest

from pipeline.privacy.pseudonym import Pseudonymizer, PseudonymKey
from pipeline.sources import consent_record
from pipeline.stream import StreamConfig, StreamProcessor
from pipeline.wire import encode
from pipeline.wire.rights import ErasureRequest
from tests.support.stream import NOW, SPEC, enc, event

CANONICAL = "alice@example.com"
RID = "0" * 32
FULL = {"analytics": True, "personalization": True, "advertising": False}


def make(casefold: bool = True) -> StreamProcessor:
    pz = Pseudonymizer([PseudonymKey("k1", b"0123456789abcdef0123")], casefold_user_ids=casefold)
    return StreamProcessor(StreamConfig(window=SPEC), pz, clock=lambda: NOW)


def consent(user: str) -> bytes:
    return enc(consent_record(user, FULL, updated_at_ms=1))


def reasons(fx) -> list[str]:
    return [json.loads(v)["reason"] for _, v in fx.dlq]


def test_event_spelled_differently_is_accepted_under_the_canonical_pseudonym() -> None:
    proc = make()
    table: dict[str, bytes] = {}
    fx = proc.on_consent(0, 0, CANONICAL.encode(), consent(" Alice@Example.com"))
    assert not fx.dlq
    table.update((k, v) for k, v in fx.consent if v is not None)
    assert list(table) == [proc.pz.pseudonym(CANONICAL)]

    fx = proc.on_playback(0, 1, CANONICAL.encode(), enc(event(user=" Alice@Example.com")), table.get)
    assert not fx.dlq
    [(key, value)] = fx.redacted
    assert json.loads(value)["user"] == proc.pz.pseudonym(CANONICAL) == key.decode()
    assert fx.state  # consent found under the same pseudonym: windowed

    fx2 = proc.on_playback(
        0, 2, CANONICAL.encode(), enc(event(user=CANONICAL, t=1_700_000_100_000)), table.get
    )
    assert json.loads(fx2.redacted[0][1])["user"] == json.loads(value)["user"]


def test_nfd_body_is_accepted_under_the_nfc_key() -> None:
    proc = make()
    fx = proc.on_playback(0, 0, "josé".encode(), enc(event(user="JOSE\u0301")), lambda _: None)
    assert not fx.dlq and proc.counters["received"] == 1


@pytest.mark.parametrize("key", [b" Alice@Example.com", b"Alice@Example.com", b"alice@example.com "])
def test_a_key_that_is_not_canonical_is_a_key_mismatch(key: bytes) -> None:
    proc = make()
    assert reasons(proc.on_playback(0, 0, key, enc(event(user=CANONICAL)), lambda _: None)) == [
        "key_mismatch"
    ]
    assert reasons(proc.on_consent(0, 1, key, consent(CANONICAL))) == ["key_mismatch"]
    assert reasons(proc.on_consent(0, 2, key, None)) == ["key_mismatch"]  # tombstone
    request = encode(ErasureRequest(request_id=RID, requested_at=1))
    fx = proc.on_erasure(0, 3, key, request)
    assert reasons(fx) == ["key_mismatch"] and not fx.after and not fx.consent


def test_canonical_tombstone_and_erasure_reach_every_spelling() -> None:
    proc = make()
    fx = proc.on_consent(0, 0, CANONICAL.encode(), None)
    assert fx.consent == [(proc.pz.pseudonym("ALICE@example.com "), None)]
    fx = proc.on_erasure(0, 1, CANONICAL.encode(), encode(ErasureRequest(request_id=RID, requested_at=1)))
    assert not fx.dlq
    stage = json.loads(fx.after[-1][2])
    assert stage["pseudonym"] == proc.pz.pseudonym(" Alice@Example.com")
    assert fx.after[0] == ("consent", CANONICAL.encode(), None)


def test_without_casefold_case_is_part_of_the_id() -> None:
    proc = make(casefold=False)
    fx = proc.on_playback(0, 0, b"Alice@Example.com", enc(event(user=" Alice@Example.com\t")), lambda _: None)
    assert not fx.dlq and proc.counters["received"] == 1
    fx = proc.on_playback(0, 1, CANONICAL.encode(), enc(event(user="Alice@Example.com")), lambda _: None)
    assert reasons(fx) == ["key_mismatch"]
    assert proc.pz.pseudonym("Alice@Example.com") != proc.pz.pseudonym(CANONICAL)


@pytest.mark.parametrize("key", [None, b"", b"   "])
def test_blank_user_id_is_dead_lettered(key: bytes | None) -> None:
    proc = make()
    fx = proc.on_playback(0, 0, key, enc(event(user="   ")), lambda _: None)
    assert reasons(fx) == ["invalid_user_id"] and not fx.redacted
    fx = proc.on_consent(0, 1, key, consent("\u00a0 "))
    assert reasons(fx) == ["invalid_user_id"] and not fx.consent
