"""One convention for every command, run as a user runs it (issue 15, "One convention").

``--version``; a sub-command's own usage on its errors; empty user ids refused at
the CLI; ``--json`` on up, down, smoke, consent; an unknown ``lag --group`` is an
error; ``status`` exits with its worst finding; unknown ``PRIVREC_*`` names are
warned about; ``export --timeout`` ends in one line, never a traceback.
"""

from __future__ import annotations

import json
import subprocess
import tomllib
import uuid
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaProducer

from agents.procs import settings_env
from pipeline.kafka.topics import create_topics
from pipeline.settings import Settings
from tests.cli import REPO, privrec
from tests.integration.harness import consume_and_commit

pytestmark = pytest.mark.integration


def _one_line_error(done: subprocess.CompletedProcess[str], code: int = 2) -> str:
    assert done.returncode == code, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if ": error:" in line]
    assert len(errors) == 1, done.stderr
    return errors[0]


def test_version_prints_the_package_version():
    done = privrec("--version")
    assert done.returncode == 0, done.stderr
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert done.stdout.strip() == f"privrec {version}"


@pytest.mark.parametrize(
    ("args", "usage"),
    [
        (("erase", "alice", "--bogus"), "usage: privrec erase "),
        (("config", "show", "--bogus"), "usage: privrec config show "),
        (("lag", "--interval", "soon"), "usage: privrec lag "),
        (("bench", "erase", "--bogus"), "usage: privrec bench erase "),
    ],
)
def test_usage_errors_show_the_subcommands_usage(args, usage):
    done = privrec(*args)
    line = _one_line_error(done)
    assert done.stderr.startswith(usage), done.stderr
    assert line.startswith("privrec " + args[0])


@pytest.mark.parametrize(
    "args",
    [("erase", ""), ("recs", ""), ("recs", "bob", " "), ("consent", ""), ("export", ""), ("controls", "")],
)
def test_an_empty_user_id_is_refused_before_anything_runs(args, tmp_path):
    # No services configured or running: the refusal must come before any of them is needed.
    done = privrec(*args, env={"PRIVREC_STATE_DIR": str(tmp_path / "state")})
    line = _one_line_error(done)
    assert "user id must not be empty" in line
    assert "privrec up" not in done.stderr


def test_unknown_privrec_variables_are_warned_about_by_name_only(tmp_path):
    secret = "s3cr3t-" + uuid.uuid4().hex
    env = {
        "PRIVREC_STATE_DIR": str(tmp_path / "state"),
        "PRIVREC_KAFKA__BOOTSTRAP": secret,  # a typo of KAFKA__BOOTSTRAP_SERVERS
        "PRIVREC_PARTITONS": "3",
        "PRIVREC_PARTITIONS": "3",  # known: no warning
    }
    done = privrec("config", "show", "--json", env=env)
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 2, done.stderr
    assert "PRIVREC_KAFKA__BOOTSTRAP " in warnings[0] and "PRIVREC_PARTITONS " in warnings[1]
    assert secret not in done.stdout + done.stderr
    assert json.loads(done.stdout)["values"]["partitions"] == 3


@pytest.fixture
def cli_settings(kafka_bootstrap: str, redis_url: str, tmp_path: Path) -> Settings:
    return Settings(
        kafka={"bootstrap_servers": kafka_bootstrap},
        redis={"url": redis_url},
        topic_prefix=f"t{uuid.uuid4().hex[:12]}.",
        state_dir=tmp_path / "state",
        pseudonym={"keys": "test1:base64:" + "A" * 43 + "="},
        app_id=f"privrec-test-{uuid.uuid4().hex[:8]}",
        partitions=2,
    )


def test_smoke_and_consent_speak_json(cli_settings):
    env = settings_env(cli_settings)
    smoke = privrec("smoke", "--json", env=env)
    assert smoke.returncode == 0, smoke.stderr
    doc = json.loads(smoke.stdout)
    assert doc["kafka"]["ok"] is True and doc["redis"]["ok"] is True
    assert doc["kafka"]["topic"].startswith(cli_settings.topic("smoke") + ".") and doc["cleaned_up"] is True

    admin = KafkaAdminClient(bootstrap_servers=cli_settings.kafka.bootstrap_servers)
    try:
        create_topics(admin, cli_settings)
    finally:
        admin.close()
    created = privrec("topics", "create", "--json", env=env)
    assert created.returncode == 0, created.stderr
    assert set(json.loads(created.stdout).values()) == {"exists"}
    closed = privrec("windows", "close", "--json", env=env)
    assert closed.returncode == 0, closed.stderr
    assert json.loads(closed.stdout)["partitions"] == cli_settings.partitions
    controls = privrec("controls", "dora", "--personalization", "limited", "--json", env=env)
    assert controls.returncode == 0, controls.stderr
    assert json.loads(controls.stdout) == {"personalization": "limited", "hidden": []}
    changed = privrec("consent", "dora", "--grant", "personalization", "--json", env=env)
    assert changed.returncode == 0, changed.stderr
    record = json.loads(changed.stdout)  # JSON only: no "consent updated" line before it
    assert record["purposes"]["personalization"] is True
    shown = privrec("consent", "dora", "--json", env=env)
    assert json.loads(shown.stdout)["purposes"] == record["purposes"]


def test_up_and_down_speak_json(tmp_path):
    env = {"PRIVREC_STATE_DIR": str(tmp_path / "state")}
    try:
        up = privrec("up", "--json", env=env)
        assert up.returncode == 0, up.stderr
        doc = json.loads(up.stdout)
        assert set(doc["services"]) == {"kafka", "redis"}
        assert all(s["state"] == "started" and s["pid"] > 0 for s in doc["services"].values())
        assert "***" in doc["services"]["redis"]["address"]  # the password never shows
        password = (tmp_path / "state" / "redis" / "password").read_text().strip()
        assert password not in up.stdout
    finally:
        down = privrec("down", "--json", env=env)
    assert down.returncode == 0, down.stderr
    assert sorted(json.loads(down.stdout)["stopped"]) == ["kafka", "redis"]


def test_config_show_says_where_each_value_came_from(tmp_path):
    (tmp_path / ".env").write_text("PRIVREC_PARTITIONS=4\n")
    (tmp_path / "privrec.toml").write_text('app_id = "from-toml"\n[trainer]\ntop_n = 33\n')
    env = {
        "PRIVREC_STATE_DIR": str(tmp_path / "state"),
        "PRIVREC_KAFKA__REQUEST_TIMEOUT_S": "7",
        "PRIVREC_TRAINER__TOP_N": "44",  # env beats the file
    }
    done = privrec("config", "show", "--json", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    values, sources = doc["values"], doc["sources"]
    assert (values["kafka"]["request_timeout_s"], sources["kafka.request_timeout_s"]) == (7.0, "env")
    assert (values["trainer"]["top_n"], sources["trainer.top_n"]) == (44, "env")
    assert (values["partitions"], sources["partitions"]) == (4, ".env")
    assert (values["app_id"], sources["app_id"]) == ("from-toml", "file")
    assert sources["trainer.factors"] == "default" and sources["kafka.bootstrap_servers"] == "default"
    assert doc["files"]["file"] == str((tmp_path / "privrec.toml").resolve())
    text = privrec("config", "show", env=env, cwd=tmp_path)
    rows = {line.split()[0]: line.split()[1:] for line in text.stdout.splitlines() if line.strip()}
    assert rows["SETTING"] == ["VALUE", "SOURCE"]
    assert rows["app_id"] == ["from-toml", "file"] and rows["partitions"] == ["4", ".env"]
    assert "kafka: embedded, not running (run `privrec up`)" in text.stdout


def test_config_show_gives_the_embedded_addresses_with_the_password_masked(tmp_path):
    env = {"PRIVREC_STATE_DIR": str(tmp_path / "state")}
    try:
        up = privrec("up", "--json", env=env)
        assert up.returncode == 0, up.stderr
        services = json.loads(up.stdout)["services"]
        done = privrec("config", "show", "--json", env=env, cwd=tmp_path)
        text = privrec("config", "show", env=env, cwd=tmp_path)
    finally:
        privrec("down", "--no-snapshot", env=env)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["values"]["kafka"]["bootstrap_servers"] == services["kafka"]["address"]
    assert doc["values"]["redis"]["url"] == services["redis"]["address"]
    assert ":***@" in services["redis"]["address"]
    assert doc["sources"]["kafka.bootstrap_servers"] == doc["sources"]["redis.url"] == "embedded"
    password = (tmp_path / "state" / "redis" / "password").read_text().strip()
    assert password not in done.stdout + text.stdout
    (row,) = [line.split() for line in text.stdout.splitlines() if line.startswith("redis.url ")]
    assert row == ["redis.url", services["redis"]["address"], "embedded"]


def test_lag_of_an_unknown_group_is_an_error(kafka_bootstrap, redis_url, tmp_path):
    env = {
        "PRIVREC_KAFKA__BOOTSTRAP_SERVERS": kafka_bootstrap,
        "PRIVREC_REDIS__URL": redis_url,
        "PRIVREC_STATE_DIR": str(tmp_path / "state"),
    }
    name = f"nosuch-{uuid.uuid4().hex[:8]}"
    done = privrec("lag", "--group", name, "--samples", "1", env=env)
    line = _one_line_error(done, code=2)
    assert f"unknown consumer group: {name}" in line
    assert done.stdout == ""
    watched = privrec("lag", "--group", name, "--watch", "--json", env=env, timeout=60)
    assert f"unknown consumer group: {name}" in _one_line_error(watched, code=2)


def test_status_exit_code_follows_the_worst_finding(cli_settings, kafka_bootstrap, make_topic):
    """A worker group with lag, no live worker, offsets not moving: 3, not 0."""
    env = settings_env(cli_settings)
    topic = make_topic("status", partitions=1)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    for i in range(5):
        producer.send(topic, value=b"x%d" % i, partition=0)
    producer.flush()
    producer.close()
    consume_and_commit(kafka_bootstrap, topic, cli_settings.app_id, {0: 2})
    done = privrec("status", "--json", "--lag-samples", "2", "--lag-interval", "0.3", env=env)
    assert done.returncode == 3, (done.stdout, done.stderr)
    status = json.loads(done.stdout)
    (group,) = [g for g in status["lag"]["groups"] if g["group"] == cli_settings.app_id]
    assert group["total_lag"] == 3
    assert status["workers"] == []

    consume_and_commit(kafka_bootstrap, topic, cli_settings.app_id, {0: 5})  # caught up
    ok = privrec("status", "--json", "--lag-samples", "1", env=env)
    assert ok.returncode == 0, (ok.stdout, ok.stderr)


def test_status_does_not_list_an_exited_worker_as_live(cli_settings, tmp_path):
    """As after `demo --keep`: the worker is gone while its stats are still fresh in Redis."""
    import signal

    import redis

    from agents.procs import ChildProcess
    from pipeline.ops.summary import process_reports
    from tests.integration.harness import wait_for

    env = settings_env(cli_settings)
    admin = KafkaAdminClient(bootstrap_servers=cli_settings.kafka.bootstrap_servers)
    try:
        create_topics(admin, cli_settings)
    finally:
        admin.close()
    client = redis.Redis.from_url(cli_settings.redis.url.get_secret_value())
    worker = ChildProcess(cli_settings, tmp_path / "logs" / "worker.log", ["worker"]).start()
    try:
        wait_for(lambda: process_reports(client, cli_settings.app_id, "worker"), 120, "the worker's stats")
        live = json.loads(privrec("status", "--json", "--lag-samples", "0", env=env).stdout)
        assert [(w["live"], w["exited"]) for w in live["workers"]] == [(True, False)]
    finally:
        worker.kill(signal.SIGKILL)  # no goodbye: its stats stay in Redis until they expire
    client.close()
    done = privrec("status", "--json", "--lag-samples", "0", env=env)
    status = json.loads(done.stdout)
    (gone,) = status["workers"]
    assert gone["age_s"] < 10  # fresh stats: before, this listed the worker as live
    assert (gone["live"], gone["exited"]) == (False, True)
    assert status["metrics_endpoints"] == []
    assert any(note.startswith("no live worker") for note in status["missing"])
    text = privrec("status", "--lag-samples", "0", env=env).stdout
    assert "worker (exited)" in text


def test_export_timeout_is_one_line_not_a_traceback(cli_settings):
    env = settings_env(cli_settings)
    admin = KafkaAdminClient(bootstrap_servers=cli_settings.kafka.bootstrap_servers)
    try:
        create_topics(admin, cli_settings)
    finally:
        admin.close()
    done = privrec("export", "erin", "--timeout", "0.001", env=env, timeout=90)
    line = _one_line_error(done)
    assert "--timeout" in line
    assert done.stdout == ""
    bad = privrec("export", "erin", "--timeout", "0", env=env)
    assert "usage: privrec export " in bad.stderr and bad.returncode == 2
