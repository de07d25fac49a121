"""Emitter behaviour that needs no broker: delivery failures surface, invalid events never buffer."""

from __future__ import annotations

from concurrent.futures import Future

import pytest

from pipeline.emitter import Emitter
from pipeline.errors import DeliveryError, ValidationFailed
from tests.support.events import playback_event


class _FailingFuture:
    is_done = True

    def get(self, timeout: float) -> None:
        raise TimeoutError("broker did not answer")


class _Producer:
    """Records sends; every second send fails, like a broker refusing a write."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.closed = False

    def send(self, topic: str, key: bytes, value: bytes) -> object:
        self.sent.append((topic, key, value))
        if len(self.sent) % 2 == 0:
            return _FailingFuture()
        ok: Future[None] = Future()
        ok.set_result(None)
        ok.get = lambda timeout: None  # type: ignore[attr-defined]
        ok.is_done = True  # type: ignore[attr-defined]
        return ok

    def flush(self, timeout: float) -> None:
        pass

    def close(self, timeout: float) -> None:
        self.closed = True


def test_delivery_errors_surface_on_flush_and_close_still_closes():
    producer = _Producer()
    emitter = Emitter(producer, "t", linger_ms=60_000)
    for user in ("a", "b", "c", "d"):
        emitter.emit(playback_event(1, user_id=user))
    with pytest.raises(DeliveryError, match="2 message"):
        emitter.close()
    assert producer.closed
    assert len(producer.sent) == 4


def test_invalid_event_is_refused_and_not_buffered():
    producer = _Producer()
    emitter = Emitter(producer, "t")
    with pytest.raises(ValidationFailed):
        emitter.emit(playback_event(1, watched_ms=-5))
    emitter.flush()
    assert producer.sent == []


def test_envelope_of_mixed_users_is_refused():
    producer = _Producer()
    emitter = Emitter(producer, "t")
    with pytest.raises(ValidationFailed):
        emitter.emit_batch("a", [playback_event(1, user_id="a"), playback_event(2, user_id="b")])
    emitter.flush()
    assert producer.sent == [] and emitter.sent_events == 0  # nothing of the refused envelope was kept
