"""settings_env: a child process sees exactly the parent's settings, nested sections included."""

from __future__ import annotations

from agents.procs import settings_env
from pipeline.settings import Settings


def test_nested_sections_and_lists_round_trip(monkeypatch):
    parent = Settings(
        pseudonym={"keys": "test1:base64:" + "A" * 43 + "="},
        gateway={"cors_origins": ["https://a.example"], "limits": {"privacy": "5/minute"}},
    )
    for name, value in settings_env(parent).items():
        monkeypatch.setenv(name, value)
    child = Settings()
    assert child.gateway == parent.gateway  # before: str(list)/str(model) broke every child process
    assert child.gateway.limits.privacy == "5/minute"
