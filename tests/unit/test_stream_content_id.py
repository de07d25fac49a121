"""Issue 10: setting ``stream.content_id_pattern`` reaches the decoder of the stream worker."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pipeline.errors import ConfigError
from pipeline.privacy.pseudonym import Pseudonymizer, PseudonymKey
from pipeline.settings import load_settings
from pipeline.stream import StreamConfig, StreamProcessor
from pipeline.wire import DEFAULT_CONTENT_ID_PATTERN, INVALID_CONTENT_ID
from pipeline.wire.fields import CONTENT_ID_PATTERN
from tests.support.events import NOW_MS, playback_event

EMAIL = "bob.jones@example.org"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in list(os.environ):
        if key.startswith("PRIVREC_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def processor(config: StreamConfig) -> StreamProcessor:
    pz = Pseudonymizer([PseudonymKey("k1", b"0123456789abcdef0123")])
    return StreamProcessor(config, pz, clock=lambda: NOW_MS)


def test_default_setting_is_the_contract_pattern() -> None:
    settings = load_settings()
    assert settings.stream.content_id_pattern == CONTENT_ID_PATTERN
    assert StreamConfig.from_settings(settings).content_id_pattern.pattern == CONTENT_ID_PATTERN
    assert DEFAULT_CONTENT_ID_PATTERN.pattern == CONTENT_ID_PATTERN


def test_an_email_as_content_id_is_dead_lettered_without_its_value() -> None:
    proc = processor(StreamConfig.from_settings(load_settings()))
    value = json.dumps(playback_event(content_id=EMAIL)).encode()
    fx = proc.on_playback(0, 9, b"user-0001", value, lambda _: None)
    ((_key, record),) = fx.dlq
    assert json.loads(record)["reason"] == INVALID_CONTENT_ID
    assert not fx.redacted and not fx.state


def test_the_configured_pattern_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRIVREC_STREAM__CONTENT_ID_PATTERN", r"c[0-9]{4}")
    proc = processor(StreamConfig.from_settings(load_settings()))
    fx = proc.on_playback(
        0, 1, b"user-0001", json.dumps(playback_event(content_id="ml:1")).encode(), lambda _: None
    )
    assert [json.loads(r)["reason"] for _, r in fx.dlq] == [INVALID_CONTENT_ID]
    fx = proc.on_playback(
        0, 2, b"user-0001", json.dumps(playback_event(content_id="c0001")).encode(), lambda _: None
    )
    assert not fx.dlq


def test_an_invalid_pattern_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRIVREC_STREAM__CONTENT_ID_PATTERN", "([")
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert str(err.value).startswith("stream.content_id_pattern")
