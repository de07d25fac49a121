"""Prometheus metrics: names, types, labels, units, and no user ids in label values."""

from __future__ import annotations

import urllib.request

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.parser import text_string_to_metric_families

from pipeline.ops.lag import LagWindow, PartitionSample
from pipeline.ops.metrics import (
    ERASURE_BUCKETS,
    PipelineMetrics,
    serve_metrics,
    update_from_lag,
    update_from_trainer_counters,
    update_from_worker_counters,
    update_model,
)

WORKER_COUNTERS = {
    "received": 120,
    "redacted": 100,
    "redacted_fields": 700,
    "windowed": 80,
    "late": 3,
    "analytics_only": 17,
    "windows_emitted": 9,
    "windows_purged": 2,
    "replayed": 1,
    "dropped:no_consent_record": 15,
    "dropped:withdrawn": 5,
    "dlq:invalid_json": 4,
    "dlq:key_mismatch": 1,
    "consent:updated": 30,
    "consent:withdrawn": 2,
}


@pytest.fixture
def metrics() -> PipelineMetrics:
    return PipelineMetrics(CollectorRegistry())


def families(registry: CollectorRegistry) -> dict[str, object]:
    return {f.name: f for f in text_string_to_metric_families(generate_latest(registry).decode())}


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(generate_latest(registry).decode())
        for s in f.samples
    }


def lag_evaluation(group: str = "privrec", partitions: int = 2):
    window = LagWindow(size=3)
    for i in range(3):
        for p in range(partitions):
            window.add(PartitionSample(group, "privrec.playback.raw", p, 10 * i, 10 * i + 5 + p, i * 1000))
    return window.evaluate()


def test_every_metric_is_defined_with_its_type(metrics):
    update_from_worker_counters(metrics, WORKER_COUNTERS)
    update_from_lag(metrics, lag_evaluation())
    update_model(metrics, "20250101T000000-3f2a", ndcg_at_10=0.31, published_s=1_735_689_600)
    update_from_trainer_counters(metrics, {"interactions": 5})
    metrics.observe_erasure("receipt", 1.2)
    types = {name: f.type for name, f in families(metrics.registry).items()}
    assert types == {
        "privrec_consumer_lag_messages": "gauge",
        "privrec_consumer_lag_seconds": "gauge",
        "privrec_consumer_group_status": "gauge",
        "privrec_events": "counter",
        "privrec_dropped_events": "counter",
        "privrec_dlq": "counter",
        "privrec_consent_updates": "counter",
        "privrec_late_events": "counter",
        "privrec_windows_emitted": "counter",
        "privrec_windows_purged": "counter",
        "privrec_redacted_fields": "counter",
        "privrec_model_version_info": "gauge",
        "privrec_model_ndcg_at_10": "gauge",
        "privrec_model_validation_ndcg": "gauge",
        "privrec_model_setting_info": "gauge",
        "privrec_model_family": "gauge",
        "privrec_model_publish_timestamp_seconds": "gauge",
        "privrec_model_publish_duration_seconds": "gauge",
        "privrec_trainer_events": "counter",
        "privrec_erasure_duration_seconds": "histogram",
        "privrec_erasure_duration_seconds_created": "gauge",
        "privrec_dp_epsilon_spent": "gauge",
        "privrec_dp_epsilon_budget": "gauge",
    }


def test_counters_are_exposed_as_total_with_base_units(metrics):
    update_from_worker_counters(metrics, WORKER_COUNTERS)
    names = {s.name for f in families(metrics.registry).values() for s in f.samples}
    counters = {n for n in names if n.startswith(("privrec_events", "privrec_dlq", "privrec_dropped"))}
    assert counters == {"privrec_events_total", "privrec_dlq_total", "privrec_dropped_events_total"}
    text = generate_openmetrics(metrics.registry).decode()
    for name in ("privrec_consumer_lag_seconds", "privrec_model_publish_timestamp_seconds"):
        assert f"# UNIT {name} seconds" in text
    assert "# UNIT privrec_erasure_duration_seconds seconds" in text


def test_worker_counters_map_onto_the_metrics(metrics):
    update_from_worker_counters(metrics, WORKER_COUNTERS)
    got = samples(metrics.registry)
    assert got[("privrec_events_total", (("stage", "received"),))] == 120
    assert got[("privrec_events_total", (("stage", "redacted"),))] == 100
    assert got[("privrec_events_total", (("stage", "windowed"),))] == 80
    assert got[("privrec_events_total", (("stage", "analytics_only"),))] == 17
    assert got[("privrec_events_total", (("stage", "replayed"),))] == 1
    assert got[("privrec_dropped_events_total", (("reason", "no_consent_record"),))] == 15
    assert got[("privrec_dropped_events_total", (("reason", "withdrawn"),))] == 5
    assert got[("privrec_dlq_total", (("reason", "invalid_json"),))] == 4
    assert got[("privrec_dlq_total", (("reason", "key_mismatch"),))] == 1
    assert got[("privrec_consent_updates_total", (("change", "updated"),))] == 30
    assert got[("privrec_consent_updates_total", (("change", "withdrawn"),))] == 2
    assert got[("privrec_late_events_total", ())] == 3
    assert got[("privrec_windows_emitted_total", ())] == 9
    assert got[("privrec_windows_purged_total", ())] == 2
    assert got[("privrec_redacted_fields_total", ())] == 700


def test_worker_totals_replace_not_add(metrics):
    update_from_worker_counters(metrics, {"received": 5})
    update_from_worker_counters(metrics, {"received": 8})
    assert samples(metrics.registry)[("privrec_events_total", (("stage", "received"),))] == 8


def test_counters_exist_at_zero_before_any_update(metrics):
    got = samples(metrics.registry)
    assert got[("privrec_late_events_total", ())] == 0
    assert got[("privrec_events_total", (("stage", "received"),))] == 0


def test_no_user_ids_in_label_values(metrics):
    leaky = {
        "dropped:user-8f3a@example.com": 1,
        "dlq:User 42 sent junk": 2,
        "dlq:" + "x" * 200: 3,
        "received": 1,
        "user:alice": 7,  # not a worker counter name: not exported at all
    }
    update_from_worker_counters(metrics, leaky)
    update_from_lag(metrics, lag_evaluation())
    text = generate_latest(metrics.registry).decode()
    assert "alice" not in text and "example.com" not in text and "User 42" not in text
    got = samples(metrics.registry)
    assert got[("privrec_dropped_events_total", (("reason", "other"),))] == 1
    assert got[("privrec_dlq_total", (("reason", "other"),))] == 5
    allowed_labels = {"stage", "reason", "change", "group", "topic", "partition", "version", "le", "event"}
    allowed_labels |= {"privrec_consumer_group_status", "privrec_model_family"}  # enum states
    for f in text_string_to_metric_families(text):
        for s in f.samples:
            assert set(s.labels) <= allowed_labels, s


def test_lag_gauges_follow_the_evaluation(metrics):
    update_from_lag(metrics, lag_evaluation(partitions=2))
    got = samples(metrics.registry)
    key = (
        "privrec_consumer_lag_messages",
        (("group", "privrec"), ("partition", "1"), ("topic", "privrec.playback.raw")),
    )
    assert got[key] == 6
    assert ("privrec_consumer_lag_seconds", key[1]) in got
    status = (
        "privrec_consumer_group_status",
        (("group", "privrec"), ("privrec_consumer_group_status", "WARN")),
    )
    assert got[status] == 1
    # A partition (and a group) no longer reported disappears instead of freezing at its last value.
    update_from_lag(metrics, lag_evaluation(group="other", partitions=1))
    got = samples(metrics.registry)
    assert key not in got
    assert not any(labels and ("group", "privrec") in labels for _, labels in got)


def test_model_metrics(metrics):
    update_model(metrics, "v1", ndcg_at_10=0.25, published_s=1_700_000_000)
    update_model(metrics, "v2")
    got = samples(metrics.registry)
    assert got[("privrec_model_version_info", (("version", "v2"),))] == 1
    assert ("privrec_model_version_info", (("version", "v1"),)) not in got
    assert got[("privrec_model_ndcg_at_10", ())] == 0.25
    assert got[("privrec_model_publish_timestamp_seconds", ())] == 1_700_000_000


def test_erasure_histogram_buckets_cover_a_tenth_to_thirty_seconds(metrics):
    assert ERASURE_BUCKETS[0] == 0.1 and ERASURE_BUCKETS[-1] == 30.0
    metrics.observe_erasure("receipt", 0.05)
    metrics.observe_erasure("receipt", 12.0)
    got = samples(metrics.registry)
    receipt = ("stage", "receipt")
    assert got[("privrec_erasure_duration_seconds_bucket", (("le", "0.1"), receipt))] == 1
    assert got[("privrec_erasure_duration_seconds_bucket", (("le", "20.0"), receipt))] == 2
    assert got[("privrec_erasure_duration_seconds_count", (receipt,))] == 2


def test_registries_are_isolated():
    a, b = PipelineMetrics(CollectorRegistry()), PipelineMetrics(CollectorRegistry())
    update_from_worker_counters(a, {"received": 3})
    assert samples(b.registry)[("privrec_events_total", (("stage", "received"),))] == 0
    assert b"privrec_" not in generate_latest(REGISTRY)


def test_serve_metrics_on_loopback(metrics):
    update_from_worker_counters(metrics, {"received": 11})
    server = serve_metrics(metrics.registry, host="127.0.0.1", port=0)
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            body = response.read().decode()
    finally:
        server.shutdown()
        server.server_close()
    assert 'privrec_events_total{stage="received"} 11.0' in body


def test_a_process_exports_only_its_sections():
    lag_only = PipelineMetrics(CollectorRegistry(), sections={"lag"})
    update_from_worker_counters(lag_only, {"received": 3})  # accepted, not exported
    update_model(lag_only, "v1", ndcg_at_10=0.2)
    update_from_lag(lag_only, lag_evaluation())
    names = set(families(lag_only.registry))
    assert names == {
        "privrec_consumer_lag_messages",
        "privrec_consumer_lag_seconds",
        "privrec_consumer_group_status",
    }
    with pytest.raises(ValueError, match="unknown metric sections"):
        PipelineMetrics(CollectorRegistry(), sections={"lag", "everything"})


def test_erasure_stages_are_separate_series_and_never_carry_an_id(metrics):
    for stage, seconds in (("stream", 0.2), ("trainer", 1.5), ("cache", 0.3), ("receipt", 2.0)):
        metrics.observe_erasure(stage, seconds)
    metrics.observe_erasure("user-42@example.com", 1.0)
    metrics.observe_erasure("stream", -1.0)  # clocks apart: clamped to zero, never a negative sum
    got = samples(metrics.registry)
    for stage, count in (("stream", 2), ("trainer", 1), ("cache", 1), ("receipt", 1), ("other", 1)):
        assert got[("privrec_erasure_duration_seconds_count", (("stage", stage),))] == count
    assert got[("privrec_erasure_duration_seconds_sum", (("stage", "stream"),))] == pytest.approx(0.2)
    assert got[("privrec_erasure_duration_seconds_bucket", (("le", "1.0"), ("stage", "trainer")))] == 0
    assert got[("privrec_erasure_duration_seconds_bucket", (("le", "2.5"), ("stage", "trainer")))] == 1
    assert "example.com" not in generate_latest(metrics.registry).decode()


def test_trainer_counters_and_publish_duration():
    trainer = PipelineMetrics(CollectorRegistry(), sections={"model", "trainer", "erasure"})
    update_from_trainer_counters(
        trainer, {"interactions": 40, "interactions_refused_no_personalization": 3, "users_forgotten": 1}
    )
    update_from_trainer_counters(trainer, {"interactions": 42, "users_forgotten": 1, "Bad Name!": 2})
    update_model(trainer, "v7", ndcg_at_10=0.3, published_s=1_700_000_000, publish_duration_s=0.25)
    got = samples(trainer.registry)
    assert got[("privrec_trainer_events_total", (("event", "interactions"),))] == 42
    assert got[("privrec_trainer_events_total", (("event", "users_forgotten"),))] == 1
    assert got[("privrec_trainer_events_total", (("event", "other"),))] == 2
    refused = ("event", "interactions_refused_no_personalization")
    assert ("privrec_trainer_events_total", (refused,)) not in got  # the latest totals, not a union
    assert got[("privrec_model_publish_duration_seconds", ())] == 0.25
    assert got[("privrec_model_version_info", (("version", "v7"),))] == 1
    names = set(families(trainer.registry))
    assert not names & {"privrec_events", "privrec_consumer_lag_messages"}  # not a worker's metrics


def test_a_worker_does_not_export_trainer_metrics():
    worker = PipelineMetrics(CollectorRegistry(), sections={"lag", "stream", "model"})
    update_model(worker, "v1", publish_duration_s=3.0)
    names = set(families(worker.registry))
    assert "privrec_events" in names and "privrec_model_version_info" in names
    assert not names & {"privrec_trainer_events", "privrec_model_publish_duration_seconds"}
    assert "privrec_erasure_duration_seconds" not in names
