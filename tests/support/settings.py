"""Settings for a test: the session's broker and Redis, a topic prefix and app id of its own."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from pipeline.settings import Settings

__all__ = ["TEST_KEYS", "isolated_settings"]

TEST_KEYS = "test1:base64:" + "A" * 43 + "="
"""A pseudonym key for tests (32 bytes of zeros' base64 neighbour; never used outside tests)."""


def isolated_settings(kafka_bootstrap: str, redis_url: str, state_dir: Path, **overrides: Any) -> Settings:
    """Settings no other test shares: a fresh ``t<uuid>.`` prefix and app id; nested dicts merge.

    Self-tuning is off (``trainer.tune_budget_s = 0``: the configured setting is fitted at once)
    unless a test turns it on: up to a minute of search per first retrain would multiply the
    suite's time, and only the tests of tuning itself (the tuner's unit tests, the CLI's models/
    status/eval tests, the demo's personalisation targets, the MovieLens goal) need it.
    """
    base: dict[str, Any] = {
        "kafka": {"bootstrap_servers": kafka_bootstrap},
        "redis": {"url": redis_url},
        "topic_prefix": f"t{uuid.uuid4().hex[:12]}.",
        "state_dir": state_dir,
        "pseudonym": {"keys": TEST_KEYS},
        "app_id": f"privrec-test-{uuid.uuid4().hex[:8]}",
        "trainer": {"tune_budget_s": 0},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return Settings(**base)
