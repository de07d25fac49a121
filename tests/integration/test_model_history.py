"""The model quality history on a real Redis: capped, newest first, robust to a bad entry."""

from __future__ import annotations

import uuid

import pytest

from pipeline.recs.history import ModelRun, decide, read_runs, record_run

pytestmark = pytest.mark.integration


def test_runs_are_kept_newest_first_and_capped(client):
    key = f"privrec:test-{uuid.uuid4().hex[:8]}:models:runs"
    for i in range(7):
        record_run(
            client, key, ModelRun(at_ms=i, decision="published", reason=f"r{i}", version=f"v{i}"), keep=5
        )
    assert client.llen(key) == 5
    runs = read_runs(client, key, 3)
    assert [r.version for r in runs] == ["v6", "v5", "v4"]
    client.lpush(key, b"{not a run")
    assert [r.version for r in read_runs(client, key, 3)] == ["v6", "v5"]  # the bad entry is skipped


@pytest.mark.parametrize(
    ("published", "forced", "evaluated", "expected"),
    [
        (True, False, True, "published"),
        (True, True, True, "published_forced"),
        (False, False, True, "kept_live"),
        (False, False, False, "not_trained"),
    ],
)
def test_decision_names(published, forced, evaluated, expected):
    assert decide(published, forced, evaluated) == expected
