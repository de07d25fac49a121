"""Every producer of per-viewer records keys them by the canonical user id (issue 10).

The stream refuses a key that is not the canonical form of the record's user id,
so the emitter SDK, the replay tool and the CLI's erasure all have to key that
way, each following ``pseudonym.casefold_user_ids``.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from pipeline.emitter import Emitter
from pipeline.errors import ValidationFailed
from pipeline.replay import replay_ratings
from pipeline.rights.requests import send_erasure
from pipeline.settings import Settings
from pipeline.sources import Rating
from tests.support.events import playback_event


class _Producer:
    """Records sends; every send is acknowledged at once."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes]] = []

    def send(self, topic: str, key: bytes | None, value: bytes, partition: int | None = None) -> Any:
        self.sent.append((topic, key, value))
        meta = SimpleNamespace(partition=0, offset=len(self.sent) - 1)
        return SimpleNamespace(get=lambda timeout=None: meta, is_done=True)

    def flush(self, timeout: float | None = None) -> None:
        pass

    def close(self, timeout: float | None = None) -> None:
        pass


@pytest.mark.parametrize(("casefold", "key"), [(True, b"alice@example.com"), (False, b"Alice@Example.com")])
def test_emitter_keys_by_the_canonical_id(casefold: bool, key: bytes) -> None:
    producer = _Producer()
    emitter = Emitter(producer, "raw", linger_ms=60_000, casefold_user_ids=casefold)
    emitter.emit(playback_event(1, user_id=" Alice@Example.com"))
    emitter.emit(playback_event(2, user_id="Alice@Example.com"))
    emitter.flush()
    assert {k for _, k, _ in producer.sent} == {key}
    # Events keep their own spelling; each envelope holds one spelling (the decoder requires it).
    bodies = [json.loads(v) for _, _, v in producer.sent]
    assert sorted(b["user_id"] for b in bodies) == [" Alice@Example.com", "Alice@Example.com"]


def test_emitter_refuses_a_blank_id() -> None:
    producer = _Producer()
    emitter = Emitter(producer, "raw")
    with pytest.raises(ValidationFailed, match="invalid_user_id"):
        emitter.emit(playback_event(1, user_id=" \t "))
    emitter.flush()
    assert producer.sent == []


@pytest.mark.parametrize(("casefold", "key"), [(True, b"bob"), (False, b"Bob")])
def test_replay_keys_consent_and_events_by_the_canonical_id(casefold: bool, key: bytes) -> None:
    ratings = [Rating(" Bob ", f"m{i}", 4.0, 1_700_000_000_000 + i * 3_600_000) for i in range(3)]
    producer = _Producer()
    replay_ratings(
        ratings,
        producer=producer,
        raw_topic="raw",
        consent_topic="consent",
        consent_spec="1,0,0",
        progress=False,
        casefold_user_ids=casefold,
    )
    topics = {t for t, _, _ in producer.sent}
    assert topics == {"raw", "consent"}
    assert {k for _, k, _ in producer.sent} == {key}


@pytest.mark.parametrize(("casefold", "key"), [(True, "josé".encode()), (False, "José".encode())])
def test_erasure_request_is_keyed_by_the_canonical_id(casefold: bool, key: bytes) -> None:
    settings = Settings(pseudonym={"casefold_user_ids": casefold})
    producer = _Producer()
    send_erasure(producer, settings, "  Jose\u0301 ")
    [(topic, sent_key, _)] = producer.sent
    assert topic == settings.topic("erasure") and sent_key == key
    with pytest.raises(ValidationFailed):
        send_erasure(producer, settings, "   ")
    assert len(producer.sent) == 1
