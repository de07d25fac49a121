"""The Tansu end-offset workaround is installed against the embedded broker only."""

from __future__ import annotations

import inspect

import pytest
from faust.transport.drivers import aiokafka as faust_aiokafka

from agents import compat
from agents.app import create_app
from pipeline.services.connect import embedded_broker, resolve

pytestmark = pytest.mark.integration


@pytest.fixture
def faust_highwaters(monkeypatch):
    """Faust's own ``_highwaters`` in place and no patch recorded; both restored afterwards."""
    thread = faust_aiokafka.AIOKafkaConsumerThread
    original = inspect.unwrap(thread._highwaters)
    monkeypatch.setattr(thread, "_highwaters", original)
    monkeypatch.setattr(compat, "_installed", {})
    return original


def test_true_highwaters_against_the_session_broker_and_an_external_one(
    make_settings, _services, faust_highwaters
):
    thread = faust_aiokafka.AIOKafkaConsumerThread
    session = make_settings()
    is_tansu = _services["kafka_backend"] == "embedded"
    assert embedded_broker(resolve(session)) is is_tansu
    create_app(session, resolve(session))
    assert (thread._highwaters is not faust_highwaters) is is_tansu
    if is_tansu:
        assert thread._highwaters.__wrapped__ is faust_highwaters

    external = make_settings(kafka={"bootstrap_servers": "127.0.0.1:1", "request_timeout_s": 1.0})
    assert embedded_broker(resolve(external), timeout_s=1.0) is False
    create_app(external, resolve(external))
    assert thread._highwaters is faust_highwaters  # removed again for external Kafka
