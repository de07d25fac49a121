"""Topics on the real broker: creation (every topic, partitions, retention, idempotent), and
`privrec topics list` showing every topic privrec owns after a real worker ran: the registry's,
Faust's changelogs and assignor topic under the same prefix, leftovers as unknown; `privrec smoke`
leaving nothing behind; the worker's plain start banner and assignment lines in a redirected log."""

from __future__ import annotations

import json

import pytest
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic

from agents.procs import ChildProcess, settings_env
from pipeline.kafka.topics import FAUST_TOPICS, TOPICS, create_topics, describe_topics
from tests.cli import privrec
from tests.integration.harness import wait_for

pytestmark = pytest.mark.integration

EXPECTED = {
    "playback.raw",
    "playback.redacted",
    "playback.dlq",
    "playback.quarantine",
    "trainer.dlq",
    "consent",
    "interactions",
    "erasure",
    "erasure.stages",
    "receipts",
    "audits",
    "dp.ledger",
}


def test_topic_names_are_fixed():
    assert {spec.name for spec in TOPICS} == EXPECTED
    consent = next(s for s in TOPICS if s.name == "consent")
    assert consent.cleanup == "compact" and consent.retention is None


def test_create_topics_idempotent(kafka_bootstrap, make_settings):
    settings = make_settings(partitions=3)
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        first = create_topics(admin, settings)
        assert set(first.values()) == {"created"}
        assert set(first) == {settings.topic(n) for n in EXPECTED}
        second = create_topics(admin, settings)
        assert set(second.values()) == {"exists"}
        parts = describe_topics(admin, list(first))
        assert parts == dict.fromkeys(first, 3)
        # Brokers that report topic configs must show the consent topic compacted.
        configs = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, settings.topic("consent"))]
        )
        reported = _config_value(configs, "cleanup.policy")
        assert reported in (None, "compact")
        # ... and the quarantine topic with its one-day retention (Tansu accepts the config).
        configs = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, settings.topic("playback.quarantine"))]
        )
        assert _config_value(configs, "retention.ms") in (None, "86400000")
    finally:
        admin.close()


def test_topics_list_prints_retention_and_cleanup(kafka_bootstrap, redis_url, unique_prefix):
    env = {
        "PRIVREC_KAFKA__BOOTSTRAP_SERVERS": kafka_bootstrap,
        "PRIVREC_REDIS__URL": redis_url,
        "PRIVREC_TOPIC_PREFIX": unique_prefix,
        "PRIVREC_TOPICS__DLQ_RETENTION_MS": str(36 * 3_600_000),
    }
    created = privrec("topics", "create", env=env)
    assert created.returncode == 0, created.stderr
    listed = privrec("topics", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    assert listed.stderr == ""  # the app id follows the prefix: nothing to warn about
    lines = {line.split()[0]: line.split() for line in listed.stdout.splitlines()[1:] if line.strip()}
    assert listed.stdout.split()[:7] == [
        "TOPIC",
        "KIND",
        "PARTITIONS",
        "RETENTION",
        "CLEANUP",
        "PERSONAL",
        "DATA",
    ]
    assert lines[unique_prefix + "playback.raw"][1:5] == ["pipeline", "8", "7d", "delete"]
    assert lines[unique_prefix + "playback.raw"][5:7] == ["PERSONAL", "DATA:"]
    assert lines[unique_prefix + "playback.quarantine"][3:5] == ["1d", "delete"]
    assert lines[unique_prefix + "playback.dlq"][3:5] == ["36h", "delete"]
    assert lines[unique_prefix + "consent"][3:5] == ["-", "compact"]
    # No worker ran: Faust's topics are listed, under the prefix, as missing.
    assert lines[unique_prefix + "stream-windows-changelog"][1:3] == ["faust", "missing"]
    rows = {r["topic"]: r for r in json.loads(privrec("topics", "list", "--json", env=env).stdout)}
    assert rows[unique_prefix + "playback.redacted"]["retention_ms"] == 30 * 86_400_000
    assert rows[unique_prefix + "trainer.dlq"]["retention_ms"] == 36 * 3_600_000
    assert rows[unique_prefix + "consent"]["cleanup_policy"] == "compact"
    assert all(r["exists"] for r in rows.values() if r["kind"] == "pipeline")
    assert all(r["topic"].startswith(unique_prefix) and r["under_prefix"] for r in rows.values())
    # An app id set outside the prefix is honoured, and named on stderr.
    outside = privrec("topics", "list", env={**env, "PRIVREC_APP_ID": "legacy-app"})
    assert outside.returncode == 0
    assert "privrec: warning: app_id 'legacy-app' does not start with topic_prefix" in outside.stderr
    assert "legacy-app-windows-changelog" in outside.stdout


def test_after_a_worker_and_smoke_topics_list_shows_every_owned_topic_and_no_leftover(
    make_settings, kafka_bootstrap, tmp_path
):
    """A real worker (default log level, output redirected to a file) creates Faust's topics; the
    listing shows them under the prefix with the registry's, a stray topic as unknown, and no
    smoke topic, neither after a passing smoke check nor after one that failed half-way."""
    s = make_settings(partitions=2, app_id="")  # the default: <topic_prefix>stream
    prefix = s.topic_prefix
    assert s.app_id == f"{prefix}stream"
    env = settings_env(s)
    assert privrec("topics", "create", env=env).returncode == 0

    worker = ChildProcess(s, tmp_path / "worker.log", ["worker"]).start()  # stdout+stderr to the file
    try:
        wait_for(
            lambda: "partitions assigned: 2 of 2 stream partitions (0-1)" in worker.log(),
            120,
            "the worker's assignment line at the default log level",
        )
    finally:
        worker.stop()
    log = worker.log()
    assert "\x1b[" not in log, "terminal escape codes in a redirected log"
    (banner,) = [line for line in log.splitlines() if "privrec worker starting:" in line]
    assert f"app id {s.app_id} (consumer group {s.app_id})" in banner
    assert f"broker {kafka_bootstrap} (external)" in banner
    assert "metrics http://127.0.0.1:" in banner and "/metrics" in banner
    (assigned,) = [line for line in log.splitlines() if "partitions assigned:" in line]
    for topic in (
        "playback.raw",
        "consent",
        "erasure",
        "stream-windows-changelog",
        "stream-consent-changelog",
    ):
        assert f"{prefix}{topic}[0-1]" in assigned
    assert f"{prefix}stream-__assignor-__leader[0]" in assigned

    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        admin.create_topics([NewTopic(f"{prefix}stray", 1, 1)])
    finally:
        admin.close()
    smoke = privrec("smoke", "--json", env=env)
    assert smoke.returncode == 0, smoke.stderr
    done = json.loads(smoke.stdout)
    assert done["kafka"]["topic"].startswith(f"{prefix}smoke.") and done["cleaned_up"] is True
    # Redis refuses after the Kafka round trip: the check fails, its topic still goes.
    failed = privrec("smoke", env={**env, "PRIVREC_REDIS__URL": "redis://127.0.0.1:1/0"})
    assert failed.returncode == 2 and failed.stderr.startswith("privrec: error: redis:"), failed.stderr

    listed = privrec("topics", "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    rows = {r["topic"]: r for r in json.loads(listed.stdout)}
    assert not [t for t in rows if "smoke" in t], "a smoke topic was left behind"
    for spec in TOPICS:
        row = rows[s.topic(spec.name)]
        assert (row["kind"], row["exists"], row["partitions"]) == ("pipeline", True, 2)
        assert row["personal_data"] == spec.personal_data
    for spec in FAUST_TOPICS:
        row = rows[f"{s.app_id}-{spec.suffix}"]
        assert (row["kind"], row["exists"], row["under_prefix"]) == ("faust", True, True)
        assert row["cleanup_policy"] == spec.cleanup and row["personal_data"] == spec.personal_data
    assert rows[f"{s.app_id}-windows-changelog"]["partitions"] == 2
    assert rows[f"{s.app_id}-__assignor-__leader"]["partitions"] == 1
    stray = rows[f"{prefix}stray"]
    assert (stray["kind"], stray["exists"], stray["partitions"]) == ("unknown", True, 1)
    assert stray["personal_data"].startswith("unknown")
    assert all(r["topic"].startswith(prefix) for r in rows.values())


def _config_value(response, name):
    """Find a config value in kafka-python's describe_configs answer (shape varies by version)."""
    if isinstance(response, dict):
        for topic_configs in response.get("topic", {}).values():
            if name in topic_configs:
                value = topic_configs[name]
                return value.get("value") if isinstance(value, dict) else value
        return None
    for resp in response if isinstance(response, list) else [response]:
        for resource in getattr(resp, "resources", []):
            for entry in resource[4]:
                if entry[0] == name:
                    return entry[1]
    return None
