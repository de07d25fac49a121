"""`privrec up && status --json && topics create && down` on the embedded services."""

from __future__ import annotations

import json
import os

import pytest

from pipeline.embedded.process import is_alive
from pipeline.embedded.redis_server import parse_version, version_warning
from pipeline.kafka.topics import TOPICS
from tests.cli import privrec

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_up_status_topics_down(tmp_path):
    env = {"PRIVREC_STATE_DIR": str(tmp_path / "state")}
    up = privrec("up", env=env)
    assert up.returncode == 0, up.stderr
    records = json.loads((tmp_path / "state" / "services.json").read_text())
    assert set(records) == {"kafka", "redis"}
    assert all(is_alive(r["pid"], r["start_time"]) for r in records.values())

    again = privrec("up", env=env)  # harmless: same processes
    assert again.returncode == 0, again.stderr
    assert "already running" in again.stdout
    assert json.loads((tmp_path / "state" / "services.json").read_text()) == records

    status = privrec("status", "--json", env=env)
    assert status.returncode == 0, status.stderr
    services = json.loads(status.stdout)["services"]
    for name in ("kafka", "redis"):
        assert services[name]["mode"] == "embedded"
        assert services[name]["reachable"] is True
        assert services[name]["pid"] == records[name]["pid"]

    # The embedded Redis has a password: clients get it, output never shows it.
    password = (tmp_path / "state" / "redis" / "password").read_text().strip()
    redis_url = f"redis://:{password}@127.0.0.1:{records['redis']['port']}/0"
    assert services["redis"]["address"] == f"redis://:***@127.0.0.1:{records['redis']['port']}/0"
    assert parse_version(services["redis"]["version"]) is not None
    assert services["redis"]["version_warning"] == version_warning(services["redis"]["version"])
    text = privrec("status", "--lag-samples", "0", env=env)
    assert f"redis version: {services['redis']['version']}" in text.stdout
    shown = privrec("config", "show", "--json", env={**env, "PRIVREC_REDIS__URL": redis_url})
    assert shown.returncode == 0 and json.loads(shown.stdout)["values"]["redis"]["url"].startswith(
        "redis://:***@"
    )
    for out in (up, again, status, text, shown):
        assert password not in out.stdout + out.stderr

    created = privrec("topics", "create", env=env)
    assert created.returncode == 0, created.stderr
    assert created.stdout.count(": created") == len(TOPICS)
    listed = json.loads(privrec("topics", "list", "--json", env=env).stdout)
    pipeline = [t for t in listed if t["kind"] == "pipeline"]  # Faust's come with the first worker
    assert len(pipeline) == len(TOPICS) and all(t["exists"] and t["partitions"] == 8 for t in pipeline)

    smoke = privrec("smoke", env=env)
    assert smoke.returncode == 0, smoke.stderr

    down = privrec("down", env=env)
    assert down.returncode == 0, down.stderr
    assert not any(is_alive(r["pid"], r["start_time"]) for r in records.values())
    assert not (tmp_path / "state" / "services.json").exists()
    after = privrec("status", "--json", env=env)
    assert after.returncode == 1
    assert not any(s["reachable"] for s in json.loads(after.stdout)["services"].values())


def test_key_file_is_private(tmp_path):
    env = {"PRIVREC_STATE_DIR": str(tmp_path / "state")}
    try:
        assert privrec("up", env=env).returncode == 0
        key_file = tmp_path / "state" / "pseudonym.keys"
        assert oct(os.stat(key_file).st_mode & 0o777) == "0o600"
        status = privrec("status", env=env)
        assert key_file.read_text().split(":")[-1].strip() not in status.stdout + status.stderr
    finally:
        privrec("down", env=env)
