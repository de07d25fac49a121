"""Consumer lag on the real broker: exact offsets, Burrow-style status, and `privrec lag`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

from pipeline.ops.collect import LagCollector
from pipeline.ops.lag import LagWindow, Status
from tests.cli import REPO, privrec
from tests.integration.harness import consume_and_commit

pytestmark = pytest.mark.integration

PARTITIONS = 2
PER_PARTITION = 10  # N = 20 messages
CONSUMED = {0: 3, 1: 6}  # M < N: committed per partition


def produce(bootstrap: str, topic: str) -> None:
    # One batch per partition: Tansu then reports the log end as 1, and only probing finds 10.
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=1000)
    for p in range(PARTITIONS):
        for i in range(PER_PARTITION):
            producer.send(topic, value=f"m{i}".encode(), partition=p)
    producer.flush(timeout=20)
    producer.close()


@pytest.fixture
def lagging_group(kafka_bootstrap: str, make_topic: Callable[..., str]) -> tuple[str, str]:
    topic = make_topic("lag", partitions=PARTITIONS)
    group = f"test-lag-{uuid.uuid4().hex[:8]}"
    produce(kafka_bootstrap, topic)
    consume_and_commit(kafka_bootstrap, topic, group, CONSUMED)
    return topic, group


@pytest.fixture
def collector(kafka_bootstrap: str) -> Iterator[LagCollector]:
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="privrec-tests")
    consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap, enable_auto_commit=False)
    yield LagCollector(admin, consumer, bootstrap=kafka_bootstrap)
    consumer.close()
    admin.close()


@pytest.fixture
def cli_env(kafka_bootstrap: str, redis_url: str, tmp_path) -> dict[str, str]:
    return {
        "PRIVREC_KAFKA__BOOTSTRAP_SERVERS": kafka_bootstrap,
        "PRIVREC_REDIS__URL": redis_url,
        "PRIVREC_STATE_DIR": str(tmp_path / "state"),
        "PRIVREC_APP_ID": f"privrec-test-{uuid.uuid4().hex[:8]}",
    }


def test_collect_reads_exact_committed_and_log_end(collector, lagging_group):
    topic, group = lagging_group
    samples, infos = collector.sample([group])
    got = {(s.topic, s.partition): (s.committed, s.log_end, s.lag) for s in samples}
    assert got == {
        (topic, p): (CONSUMED[p], PER_PARTITION, PER_PARTITION - CONSUMED[p]) for p in range(PARTITIONS)
    }
    assert set(infos) == {group}


def test_status_stall_then_stop_then_ok(kafka_bootstrap, collector, lagging_group):
    topic, group = lagging_group
    window = LagWindow(size=3)

    def sample() -> Status:
        samples, _ = collector.sample([group])
        window.extend(samples)
        return window.evaluate_partition(group, topic, 0).status

    sample()
    sample()
    # One more message consumed: a commit the window sees happen between two samples.
    consume_and_commit(kafka_bootstrap, topic, group, {0: CONSUMED[0] + 1})
    statuses = [sample() for _ in range(4)]
    # Lag shrank (OK) while the change is in the window; then no move while the newest commit is
    # still in the window (STALL); then the window slides past it (STOP: no commit for too long).
    assert statuses == [Status.OK, Status.OK, Status.STALL, Status.STOP]
    assert window.evaluate_partition(group, topic, 0).lag == PER_PARTITION - CONSUMED[0] - 1
    (evaluated,) = window.evaluate([group])
    assert evaluated.status >= Status.STOP  # the group is as bad as its worst partition

    consume_and_commit(kafka_bootstrap, topic, group, {p: PER_PARTITION for p in range(PARTITIONS)})
    samples, _ = collector.sample([group])
    window.extend(samples)
    (evaluated,) = window.evaluate([group])
    assert evaluated.status is Status.OK
    assert [p.lag for p in evaluated.partitions] == [0, 0]
    assert all(p.lag_seconds == 0.0 for p in evaluated.partitions)


def test_cli_json_shows_exact_lag_and_an_error_status(cli_env, lagging_group):
    topic, group = lagging_group
    args = ("lag", "--group", group, "--json", "--samples", "3", "--interval", "0.3", "--window", "3")
    result = privrec(*args, "--message-age", env=cli_env)
    assert result.returncode == 1, result.stderr  # STALL or STOP: an error status
    (report,) = json.loads(result.stdout)
    assert report["group"] == group
    assert report["status"] in {"STALL", "STOP"}
    assert report["total_lag"] == PARTITIONS * PER_PARTITION - sum(CONSUMED.values())
    assert report["window"]["samples"] == 3
    rows = {p["partition"]: p for p in report["partitions"]}
    for p in range(PARTITIONS):
        assert rows[p]["topic"] == topic
        assert (rows[p]["committed"], rows[p]["log_end"]) == (CONSUMED[p], PER_PARTITION)
        assert rows[p]["lag"] == PER_PARTITION - CONSUMED[p]
        assert rows[p]["status"] in {"STALL", "STOP"}
        assert rows[p]["seconds_method"] == "age"
        assert 0 <= rows[p]["lag_seconds"] < 300


def test_cli_table_after_catching_up(kafka_bootstrap, cli_env, lagging_group):
    topic, group = lagging_group
    consume_and_commit(kafka_bootstrap, topic, group, {p: PER_PARTITION for p in range(PARTITIONS)})
    result = privrec("lag", "--group", group, "--samples", "2", "--interval", "0.2", env=cli_env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "GROUP",
        "TOPIC",
        "PARTITION",
        "CURRENT-OFFSET",
        "LOG-END-OFFSET",
        "LAG",
        "CONSUMER-ID",
        "HOST",
        "CLIENT-ID",
        "LAG-SECONDS",
        "STATUS",
    ]
    rows = [line.split() for line in lines[1 : 1 + PARTITIONS]]
    assert [r[:6] for r in rows] == [
        [group, topic, str(p), str(PER_PARTITION), str(PER_PARTITION), "0"] for p in range(PARTITIONS)
    ]
    assert all(r[-1] == "OK" and r[-2] == "0.0" for r in rows)
    assert any(line.startswith(f"{group}: OK: lag 0 on 2 partitions") for line in lines)


def test_cli_default_groups_without_offsets(cli_env):
    result = privrec("lag", "--samples", "1", env=cli_env)
    assert result.returncode == 0, result.stderr
    app_id = cli_env["PRIVREC_APP_ID"]
    assert result.stdout.splitlines() == [
        f"{app_id}: NOTFOUND: no committed offsets",
        f"{app_id}-trainer: NOTFOUND: no committed offsets",
    ]


def test_cli_watch_reprints_until_interrupted(cli_env, lagging_group):
    _topic, group = lagging_group
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRIVREC_")}
    env.update(cli_env, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "agents.cli",
            "lag",
            "--group",
            group,
            "--watch",
            "--json",
            "--interval",
            "0.2",
        ],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        rounds = [json.loads(proc.stdout.readline()) for _ in range(3)]
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C ends --watch normally
        _out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert [r[0]["window"]["samples"] for r in rounds] == [1, 2, 3]
    assert all(r[0]["total_lag"] == PARTITIONS * PER_PARTITION - sum(CONSUMED.values()) for r in rounds)


def test_first_watch_round_of_a_stopped_group_is_stop(cli_env, lagging_group):
    """Nobody consumes the group (its consumer left): the first round already says so."""
    _topic, group = lagging_group
    once = privrec("lag", "--group", group, "--samples", "1", "--json", env=cli_env)
    assert once.returncode == 1, once.stderr
    assert json.loads(once.stdout)[0]["status"] == "STOP"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRIVREC_")}
    env.update(cli_env, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [sys.executable, "-m", "agents.cli", "lag", "--group", group, "--watch", "--json"],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)
    assert first[0]["window"]["samples"] == 1 and first[0]["members"] == 0
    assert first[0]["status"] == "STOP"
