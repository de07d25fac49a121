"""agents.procs.settings_env: a child process must see exactly the parent's settings."""

from __future__ import annotations

import os
from unittest import mock

from agents.procs import settings_env
from pipeline.settings import GatewayLimits, Settings


def test_nested_and_list_settings_survive_the_child_environment(tmp_path):
    limits = GatewayLimits(events="100000/minute", recs="7/second", privacy="3/hour")
    settings = Settings(
        state_dir=tmp_path,
        gateway=Settings().gateway.model_copy(
            update={"limits": limits, "cors_origins": ["https://a.example", "https://b.example"]}
        ),
    )
    env = settings_env(settings)
    assert env["PRIVREC_GATEWAY__LIMITS__EVENTS"] == "100000/minute"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PRIVREC_")}
    with mock.patch.dict(os.environ, {**clean, **env}, clear=True):
        child = Settings()
    assert child.gateway.limits == limits
    assert child.gateway.cors_origins == ["https://a.example", "https://b.example"]
    assert child.gateway.algorithms == settings.gateway.algorithms
    assert child.model_dump() == settings.model_dump()
