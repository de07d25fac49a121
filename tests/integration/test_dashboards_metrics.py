"""Every metric compose/'s Grafana dashboards query is exported by a real privrec process.

A real `privrec worker` (subprocess), the trainer's metrics server and a real
gateway, on the session's broker and Redis: their /metrics pages together must
export every `privrec_*`, `process_*` and `python_*` name a dashboard panel
queries, so a renamed metric breaks this test instead of a chart.
"""

from __future__ import annotations

import urllib.request

import pytest
from kafka import KafkaAdminClient

from pipeline.kafka.topics import create_topics
from pipeline.services.connect import resolve
from tests.integration.gateway_harness import running_gateway
from tests.integration.harness import Worker, wait_for, worker_stats
from tests.support.dashboards import dashboards, exported_names, is_exported, metric_names, queries

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STANDARD = (
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "python_gc_collections_total",
    "python_info",
)


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


def test_every_dashboard_metric_is_exported_by_a_real_process(make_settings, kafka_bootstrap, tmp_path):
    from agents import metrics as process_metrics

    s = make_settings(partitions=2, metrics={"lag_interval_s": 1.0})
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    create_topics(admin, s)
    admin.close()

    pages: dict[str, str] = {}
    worker = Worker(s, tmp_path / "logs").start()
    try:
        url = wait_for(
            lambda: next((w.get("metrics") for w in worker_stats(s)), None), 60, "the worker's URL"
        )
        pages["worker"] = wait_for(
            lambda: (text := fetch(url)) and "privrec_consumer_lag_messages" in text and text,
            60,
            "the worker's lag gauges",
        )
    finally:
        worker.kill()
    trainer = process_metrics.start_trainer_metrics(s, resolve(s), lambda: {"interactions": 1})
    assert trainer is not None
    try:
        pages["trainer"] = fetch(trainer.url)
    finally:
        trainer.close()
    with running_gateway(s) as gw:
        pages["gateway"] = fetch(gw.url + "/metrics")

    exported = {kind: exported_names(text) for kind, text in pages.items()}
    for kind in ("worker", "trainer", "gateway"):
        for name in STANDARD:
            assert is_exported(name, exported[kind]), f"{kind} does not export {name}"
    everything = set().union(*exported.values())
    missing = {
        (title, name)
        for dashboard in dashboards().values()
        for title, expr in queries(dashboard)
        for name in metric_names(expr)
        if not is_exported(name, everything)
    }
    assert not missing, f"panels query metrics no process exports: {sorted(missing)}"
