"""The trainer's group tells the truth in `privrec lag` and `privrec status` (issue 15, "Health").

The continuous trainer reads every partition with manual assignment, so the broker reports
its group ``Empty`` with 0 members while it runs. lag and status take its members from the
trainer's heartbeat in Redis; once the trainer stops (its heartbeat removed or expired),
they say what the broker says again.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import redis as redis_lib
from kafka import KafkaAdminClient

from agents.liveness import TRAINER_LIVE_S
from agents.procs import ChildProcess, settings_env
from pipeline.kafka.topics import create_topics
from pipeline.ops.keys import stats_key
from pipeline.ops.summary import process_reports
from tests.cli import privrec
from tests.integration.harness import wait_for

pytestmark = pytest.mark.integration


def _trainer_row(done, group: str) -> dict:
    assert done.returncode in (0, 1), (done.stdout, done.stderr)
    (row,) = [g for g in json.loads(done.stdout) if g["group"] == group]
    return row


def test_lag_and_status_count_a_running_trainer_by_its_heartbeat(make_settings, tmp_path: Path):
    s = make_settings(partitions=2, trainer={"retrain_every_s": 3600.0})
    admin = KafkaAdminClient(bootstrap_servers=s.kafka.bootstrap_servers)
    try:
        create_topics(admin, s)
    finally:
        admin.close()
    env = settings_env(s)
    group = f"{s.app_id}-trainer"
    client = redis_lib.Redis.from_url(s.redis.url.get_secret_value())
    trainer = ChildProcess(s, tmp_path / "logs" / "trainer.log", ["train"]).start()
    try:
        wait_for(
            lambda: process_reports(client, s.app_id, "trainer") or not trainer.running,
            120,
            "the trainer's heartbeat",
        )
        assert trainer.running, trainer.log()

        row = _trainer_row(privrec("lag", "--json", "--samples", "1", env=env), group)
        assert (row["state"], row["members"], row["members_from"]) == ("Live", 1, "heartbeat")
        assert not row["broker_members"]  # what the broker says: no member (manual assignment)
        named = privrec("lag", "--group", group, "--samples", "1", env=env)
        assert named.returncode == 0, named.stderr  # known: a live trainer, even before its first commit
        assert "Empty, 0 members" not in named.stdout and "0 members" not in named.stdout
        assert "state Live, 1 member by heartbeat (broker: " in named.stdout, named.stdout

        status = privrec("status", "--json", "--lag-samples", "1", env=env)
        doc = json.loads(status.stdout)
        (g,) = [g for g in doc["lag"]["groups"] if g["group"] == group]
        assert (g["state"], g["members"], g["members_from"]) == ("Live", 1, "heartbeat")
        assert [t["live"] for t in doc["trainers"]] == [True]
        text = privrec("status", "--lag-samples", "1", env=env).stdout
        assert "1 (heartbeat)" in text
    finally:
        trainer.stop()
    assert not trainer.running

    # Stopped: its heartbeat is gone, and the broker's word stands.
    after = _trainer_row(privrec("lag", "--json", "--samples", "1", env=env), group)
    assert after["members_from"] == "broker" and not after["members"] and after["state"] != "Live"

    # A trainer that died without removing its heartbeat: live until the heartbeat is too old.
    old = int((time.time() - TRAINER_LIVE_S - 5) * 1000)
    key = stats_key("trainer", f"{s.app_id}:deadbeef")
    client.set(key, json.dumps({"trainer": f"{s.app_id}:deadbeef", "at": old}), ex=60)
    try:
        expired = _trainer_row(privrec("lag", "--json", "--samples", "1", env=env), group)
        assert expired["members_from"] == "broker" and not expired["members"]
        watched = privrec("status", "--json", "--lag-samples", "1", env=env)
        doc = json.loads(watched.stdout)
        assert [t["live"] for t in doc["trainers"]] == [False]
        assert any("no continuous trainer" in note for note in doc["missing"])
    finally:
        client.delete(key)
        client.close()
