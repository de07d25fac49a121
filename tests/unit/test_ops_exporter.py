"""Background metric jobs without Kafka or Redis: rounds, failures, stale lag, the stats hook."""

from __future__ import annotations

import itertools
import threading
from types import SimpleNamespace

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from agents.metrics import ProcessMetrics
from agents.procs import wait_until
from pipeline.errors import ServiceUnavailable
from pipeline.ops.exporter import LagJob, Periodic, refresh_model
from pipeline.ops.lag import PartitionSample
from pipeline.ops.metrics import PipelineMetrics
from pipeline.serving.layout import Layout
from tests.support.fake_redis import FakeRedis, published


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(generate_latest(registry).decode())
        for s in f.samples
    }


class FakeClient:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


class FakeCollector:
    """Answers ``sample`` from a script: a list of lag values (one round each) or an exception."""

    wall_ms = itertools.count(1000, 1000)  # one clock for every collector, as the real ones share

    def __init__(self, rounds: list[object]) -> None:
        self.rounds = rounds
        self.admin, self.consumer = FakeClient(), FakeClient()

    def sample(self, groups):
        step = self.rounds.pop(0)
        if isinstance(step, Exception):
            raise step
        return [PartitionSample("g", "t", 0, 10, 10 + step, next(self.wall_ms), members=1)], {}


LAG_KEY = ("privrec_consumer_lag_messages", (("group", "g"), ("partition", "0"), ("topic", "t")))


def test_periodic_runs_at_once_survives_failures_and_cleans_up():
    calls: list[int] = []
    stopped = threading.Event()

    def job() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise ServiceUnavailable("kafka: slow")

    p = Periodic("test", job, interval_s=0.01, on_stop=stopped.set).start()
    wait_until(lambda: len(calls) >= 3, 5, "three rounds")
    p.stop()
    assert p.failures == 1 and p.rounds >= 3
    assert stopped.is_set()
    with pytest.raises(ValueError):
        Periodic("bad", job, interval_s=0)


def test_lag_job_sets_gauges_reconnects_after_a_failure_and_clears_stale_series():
    metrics = PipelineMetrics(CollectorRegistry(), sections={"lag"})
    collectors = [FakeCollector([3, ServiceUnavailable("down")]), FakeCollector([0, ServiceUnavailable("x")])]
    made: list[FakeCollector] = []
    now = [0.0]

    def connect() -> FakeCollector:
        made.append(collectors[len(made)])
        return made[-1]

    job = LagJob(metrics, connect, ["g"], stale_after_s=30, clock=lambda: now[0])
    job()
    assert samples(metrics.registry)[LAG_KEY] == 3
    now[0] = 10
    with pytest.raises(ServiceUnavailable):
        job()
    assert made[0].admin.closed and made[0].consumer.closed  # dropped; the next round reconnects
    assert samples(metrics.registry)[LAG_KEY] == 3  # one failed round: still shown
    job()
    assert len(made) == 2 and samples(metrics.registry)[LAG_KEY] == 0
    now[0] = 50  # 40 s since the last good round
    with pytest.raises(ServiceUnavailable):
        job()
    assert LAG_KEY not in samples(metrics.registry)  # stale: gone rather than frozen


def test_refresh_model_reads_the_live_model():
    metrics = PipelineMetrics(CollectorRegistry(), sections={"model"})
    layout = Layout("privrec:t")
    refresh_model(metrics, FakeRedis({}), layout)  # nothing published: nothing set
    assert ("privrec_model_version_info", (("version", "v2"),)) not in samples(metrics.registry)
    refresh_model(metrics, published(layout, "v2", ndcg=0.31, switched_ms=1_700_000_000_500), layout)
    got = samples(metrics.registry)
    assert got[("privrec_model_version_info", (("version", "v2"),))] == 1
    assert got[("privrec_model_ndcg_at_10", ())] == 0.31
    assert got[("privrec_model_publish_timestamp_seconds", ())] == 1_700_000_000.5


def test_worker_stats_hook_exports_counters_and_advertises_the_url():
    served = ProcessMetrics(PipelineMetrics(CollectorRegistry(), sections={"stream"}), "127.0.0.1", 0)
    sent: list[dict] = []
    try:
        hook = served.stats_hook(sent.append)
        hook({"worker": "a:1", "counters": {"received": 7, "dlq:invalid_json": 2}, "assigned": [0]})
        hook({"worker": "a:1"})  # no counters yet: nothing breaks
        assert sent[0]["metrics"] == served.url == f"http://127.0.0.1:{served.server.server_port}/metrics"
        got = samples(served.metrics.registry)
        assert got[("privrec_events_total", (("stage", "received"),))] == 0  # the latest totals win
    finally:
        served.close()


def test_trainer_report_hook_records_the_publish_and_never_raises():
    served = ProcessMetrics(
        PipelineMetrics(CollectorRegistry(), sections={"model", "trainer"}), "127.0.0.1", 0
    )
    try:
        served.on_report(SimpleNamespace(version=None, metrics={}, seconds={}))  # not published: ignored
        served.on_report(SimpleNamespace(version="v9", metrics={"ndcg_at_10": 0.2}, seconds={"publish": 1.5}))
        served.on_report(SimpleNamespace(version="v10", metrics=None, seconds=None))
        tuning = {"family": "als", "setting": {"factors": 128, "weighting": "log"}}
        served.on_report(
            SimpleNamespace(
                version="v10",
                metrics={"validation_ndcg_at_10": 0.17},
                seconds=None,
                tuning=tuning,
                serving="ease",
            )
        )
        got = samples(served.metrics.registry)
        assert got[("privrec_model_version_info", (("version", "v10"),))] == 1
        assert got[("privrec_model_publish_duration_seconds", ())] == 1.5
        assert got[("privrec_model_ndcg_at_10", ())] == 0.2
        assert got[("privrec_model_validation_ndcg", ())] == 0.17
        setting = (("factors", "128"), ("family", "als"), ("weighting", "log"))
        assert got[("privrec_model_setting_info", setting)] == 1
        assert got[("privrec_model_family", (("privrec_model_family", "ease"),))] == 1  # a label of its own
        assert got[("privrec_model_family", (("privrec_model_family", "als"),))] == 0
    finally:
        served.close()


def test_every_family_the_trainer_can_serve_is_a_state_of_the_family_metric():
    from pipeline.ops.metrics import MODEL_FAMILIES
    from pipeline.recs.family import FAMILIES
    from pipeline.recs.popularity import POPULAR

    assert {*FAMILIES, POPULAR} <= set(MODEL_FAMILIES)


def test_a_port_in_use_is_a_config_error_naming_the_setting():
    from pipeline.errors import ConfigError

    first = ProcessMetrics(PipelineMetrics(CollectorRegistry(), sections={"stream"}), "127.0.0.1", 0)
    try:
        port = first.server.server_port
        with pytest.raises(ConfigError, match=r"metrics.worker_port \(PRIVREC_METRICS__WORKER_PORT\)"):
            ProcessMetrics(
                PipelineMetrics(CollectorRegistry(), sections={"stream"}),
                "127.0.0.1",
                port,
                "metrics.worker_port",
            )
    finally:
        first.close()


def test_a_wildcard_bind_is_advertised_by_host_name():
    import socket

    from agents.metrics import _url_host

    assert _url_host("0.0.0.0") == socket.gethostname()
    assert _url_host("127.0.0.1") == "127.0.0.1"
    assert _url_host("::1") == "[::1]"
