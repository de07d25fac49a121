"""A real worker's /metrics over HTTP, and `privrec status --json` describing it.

One `privrec worker` on the session's broker and Redis: exact event, drop and
DLQ counters after a known input, lag gauges for its consumer group, the live
model read from Redis; then the health summary lists the worker with its
partitions and scrape URL, the live model and the last erasure receipt.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest
import redis
from kafka import KafkaAdminClient
from prometheus_client.parser import text_string_to_metric_families

from agents.procs import settings_env
from pipeline.kafka.topics import create_topics
from pipeline.keys import pseudonymizer
from pipeline.serving.layout import Layout
from pipeline.serving.publish import publish
from pipeline.sources import consent_record
from tests.cli import privrec
from tests.integration.harness import Worker, produce, wait_assigned, wait_for, wait_processed, worker_stats
from tests.support.stream import event

pytestmark = [pytest.mark.integration, pytest.mark.slow]

T0 = 1_700_000_000_000
FULL = {"analytics": True, "personalization": True, "advertising": False}


@pytest.fixture
def settings(make_settings, kafka_bootstrap):
    s = make_settings(partitions=2, metrics={"lag_interval_s": 1.0})
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    create_topics(admin, s)
    admin.close()
    return s


@pytest.fixture
def worker(settings, tmp_path):
    w = Worker(settings, tmp_path / "logs").start()
    yield w
    w.kill()


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def publish_model(s, version: str) -> None:
    client = redis.Redis.from_url(s.redis.url.get_secret_value())
    meta = {"version": version, "trained_at": int(time.time() * 1000), "metrics": {"ndcg_at_10": 0.25}}
    try:
        publish(client, Layout.from_settings(s), version, {}, [], meta, ttl_s=600)
    finally:
        client.close()


def send_input(s) -> dict[int, int]:
    """Carol (full consent): 3 events; erin (no consent record): 1; one message that is not JSON.

    Returns the end offset of each partition of ``playback.raw`` written to.
    """
    consent = json.dumps(consent_record("carol", FULL, updated_at_ms=T0 - 60_000)).encode()
    wait_processed(s, s.topic("consent"), produce(s, s.topic("consent"), [(b"carol", consent)]))
    good = [
        (b"carol", json.dumps(event(user="carol", t=T0 + i * 1000, content=f"c{i}")).encode())
        for i in range(3)
    ]
    ends = produce(
        s,
        s.topic("playback.raw"),
        [*good, (b"erin", json.dumps(event(user="erin", t=T0)).encode()), (b"carol", b"\xff not json")],
    )
    wait_processed(s, s.topic("playback.raw"), ends)
    return ends


def send_receipt(s, request_id: str, requested_at: int, completed_at: int) -> None:
    stages = {"stream": requested_at + 200, "trainer": completed_at - 100, "cache": completed_at}
    receipt = {
        "schema": "receipt.v1",
        "request_id": request_id,
        "pseudonym": pseudonymizer(s).pseudonym("carol"),
        "requested_at": requested_at,
        "completed_at": completed_at,
        "stages": stages,
        "remains": [],
    }
    key = receipt["pseudonym"].encode()
    produce(s, s.topic("receipts"), [(key, json.dumps(receipt).encode())])


def test_worker_serves_exact_metrics_and_status_lists_it(settings, worker):
    s = settings
    publish_model(s, "v-metrics-1")
    wait_assigned(s, 1, timeout=60)
    url = wait_for(lambda: next((w.get("metrics") for w in worker_stats(s)), None), 10, "the advertised URL")
    assert url.startswith("http://127.0.0.1:") and url.endswith("/metrics")

    written = send_input(s)
    expected = {
        ("privrec_events_total", (("stage", "received"),)): 4,
        ("privrec_events_total", (("stage", "redacted"),)): 3,
        ("privrec_events_total", (("stage", "windowed"),)): 3,
        ("privrec_dropped_events_total", (("reason", "no_consent_record"),)): 1,
        ("privrec_dlq_total", (("reason", "invalid_json"),)): 1,
        ("privrec_consent_updates_total", (("change", "updated"),)): 1,
        ("privrec_late_events_total", ()): 0,
        ("privrec_windows_emitted_total", ()): 0,
    }
    # the worker hands its totals over with its stats, every 2 s
    got = wait_for(
        lambda: (m := scrape(url)) and all(m.get(k) == v for k, v in expected.items()) and m,
        15,
        "the worker's counters on /metrics",
    )
    assert not [k for k in got if "carol" in str(k) or "erin" in str(k)]  # no user in any label

    raw = s.topic("playback.raw")
    # a series per partition the group has committed: those written to
    lag = {
        p: ("privrec_consumer_lag_messages", (("group", s.app_id), ("partition", str(p)), ("topic", raw)))
        for p in written
    }
    got = wait_for(
        lambda: (m := scrape(url)) and all(m.get(k) == 0 for k in lag.values()) and m,
        20,
        f"zero lag on partitions {sorted(written)} of playback.raw",
    )
    assert all(("privrec_consumer_lag_seconds", key[1]) in got for key in lag.values())
    status_key = (
        "privrec_consumer_group_status",
        (("group", s.app_id), ("privrec_consumer_group_status", "OK")),
    )
    assert got[status_key] == 1
    assert got[("privrec_model_version_info", (("version", "v-metrics-1"),))] == 1
    assert got[("privrec_model_ndcg_at_10", ())] == 0.25
    assert got[("privrec_model_publish_timestamp_seconds", ())] == pytest.approx(time.time(), abs=120)

    now = int(time.time() * 1000)
    send_receipt(s, "ab" * 16, now - 1500, now)
    result = privrec("status", "--json", "--lag-samples", "2", "--lag-interval", "0.5", env=settings_env(s))
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    (w,) = status["workers"]
    assert w["assigned"] == [0, 1] and w["live"] and w["metrics"] == url and w["age_s"] < 10
    assert status["metrics_endpoints"] == [{"kind": "worker", "id": w["id"], "url": url}]
    groups = {g["group"]: g for g in status["lag"]["groups"]}
    assert groups[s.app_id]["status"] == "OK" and groups[s.app_id]["total_lag"] == 0
    assert groups[f"{s.app_id}-trainer"]["status"] == "NOTFOUND"
    assert status["lag"]["samples"] == 2
    assert status["model"]["version"] == "v-metrics-1" and status["model"]["ndcg_at_10"] == 0.25
    receipt = status["last_receipt"]
    assert receipt["request_id"] == "ab" * 16 and receipt["duration_s"] == 1.5
    assert receipt["stages"] == ["cache", "stream", "trainer"]
    assert "no continuous trainer reporting: run `privrec train`" in status["missing"]
    assert not any("worker" in note for note in status["missing"])
    assert pseudonymizer(s).pseudonym("carol") not in result.stdout

    text = privrec("status", "--lag-samples", "1", env=settings_env(s))
    assert text.returncode == 0, text.stderr
    assert url in text.stdout and "v-metrics-1" in text.stdout and "ab" * 16 in text.stdout

    worker.stop()  # the server goes with the worker
    with pytest.raises(urllib.error.URLError):
        scrape(url)


def test_trainer_metrics_follow_its_counters_and_are_advertised(make_settings, monkeypatch):
    from agents import metrics as process_metrics
    from agents.trainer import TrainReport
    from pipeline.services.connect import resolve

    monkeypatch.setattr(process_metrics, "MODEL_REFRESH_S", 0.2)
    s = make_settings()
    publish_model(s, "v-trainer-1")
    counters = {"interactions": 12, "users_forgotten": 1}
    served = process_metrics.start_trainer_metrics(s, resolve(s), lambda: counters)
    assert served is not None
    try:
        interactions = ("privrec_trainer_events_total", (("event", "interactions"),))
        version = ("privrec_model_version_info", (("version", "v-trainer-1"),))
        got = wait_for(
            lambda: (m := scrape(served.url)) and m.get(interactions) == 12 and m.get(version) == 1 and m,
            10,
            "the trainer's counters and the live model",
        )
        assert got[("privrec_trainer_events_total", (("event", "users_forgotten"),))] == 1
        assert "privrec_events_total" not in {name for name, _ in got}  # a worker's, not the trainer's
        counters["interactions"] = 15
        wait_for(lambda: scrape(served.url).get(interactions) == 15, 10, "the trainer's new count")
        report = TrainReport(version="v-trainer-1", published=True, seconds={"publish": 0.4})
        served.on_report(report)
        assert scrape(served.url)[("privrec_model_publish_duration_seconds", ())] == 0.4

        result = privrec("status", "--json", "--lag-samples", "0", env=settings_env(s))
        assert result.returncode == 0, result.stderr
        status = json.loads(result.stdout)
        (trainer,) = status["trainers"]
        assert trainer["live"] and trainer["metrics"] == served.url
        assert {"kind": "trainer", "id": trainer["id"], "url": served.url} in status["metrics_endpoints"]
        assert status["lag"] is None and status["last_receipt"] is None
        assert not any("trainer" in note for note in status["missing"])
    finally:
        served.close()
    client = redis.Redis.from_url(s.redis.url.get_secret_value())
    try:
        assert not list(client.scan_iter(f"privrec:stats:trainer:{s.app_id}:*"))  # gone with the trainer
    finally:
        client.close()
    with pytest.raises(urllib.error.URLError):
        scrape(served.url)
