"""Prometheus ``/metrics`` of the worker and the trainer: registry, HTTP server, background jobs.

Each process owns its registry and serves it on ``metrics.host`` at
``metrics.worker_port`` / ``metrics.trainer_port`` (0: a free port). The URL
goes into the process's stats in Redis, where ``privrec status`` finds it.

* worker: the stream counters (from the stats callback every 2 s), consumer
  lag of the pipeline's groups (sampled every ``metrics.lag_interval_s`` on a
  thread of its own) and the live model (read from Redis);
* trainer: the live model, the last publish's duration, the trainer's
  counters and erasure durations.
"""

from __future__ import annotations

import json
import logging
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from pipeline.errors import ConfigError
from pipeline.ops.collect import LagCollector, pipeline_groups
from pipeline.ops.exporter import LagJob, Periodic, refresh_model
from pipeline.ops.keys import stats_key
from pipeline.ops.metrics import (
    PipelineMetrics,
    process_registry,
    serve_metrics,
    update_dp_spent,
    update_from_trainer_counters,
    update_from_worker_counters,
    update_model,
)
from pipeline.ops.summary import process_identity
from pipeline.services.connect import Endpoints, kafka_admin, kafka_consumer, redis_client
from pipeline.serving.layout import Layout
from pipeline.settings import Settings

__all__ = ["ProcessMetrics", "start_trainer_metrics", "start_worker_metrics"]

log = logging.getLogger(__name__)

MODEL_REFRESH_S = 5.0
TRAINER_STATS_TTL_S = 60


def lag_collector(endpoints: Endpoints, liveness: Any = None) -> LagCollector:
    """A collector with its own group-less clients (made on the calling thread); ``liveness``:
    see :class:`~pipeline.ops.collect.LagCollector`."""
    admin = kafka_admin(endpoints)
    try:
        consumer = kafka_consumer(
            endpoints,
            "metrics",
            allow_auto_create_topics=False,
            request_timeout_ms=int(endpoints.request_timeout_s * 1000) + 1000,
        )
    except Exception:
        admin.close()
        raise
    return LagCollector(
        admin,
        consumer,
        bootstrap=endpoints.kafka_bootstrap,
        client_options=endpoints.kafka_options,
        timeout_s=endpoints.request_timeout_s,
        liveness=liveness,
    )


def _url_host(bound: str) -> str:
    """How others reach a server bound to ``bound`` (a wildcard address: by this host's name)."""
    host = socket.gethostname() if bound in ("", "0.0.0.0", "::") else bound  # noqa: S104 - not binding
    return f"[{host}]" if ":" in host else host


class ProcessMetrics:
    """A served registry and the jobs that keep it fresh; :meth:`close` stops them all."""

    def __init__(self, metrics: PipelineMetrics, host: str, port: int, setting: str = "metrics.host") -> None:
        self.metrics = metrics
        try:
            self.server = serve_metrics(metrics.registry, host=host, port=port)
        except OSError as exc:
            env = "PRIVREC_" + setting.upper().replace(".", "__")
            raise ConfigError(f"{setting} ({env})", f"cannot serve metrics on {host}:{port}: {exc}") from None
        self.url = f"http://{_url_host(host)}:{self.server.server_port}/metrics"
        self.jobs: list[Periodic] = []
        log.info("metrics at %s", self.url)

    def run(self, job: Periodic) -> None:
        self.jobs.append(job.start())

    def close(self) -> None:
        for job in self.jobs:
            job.stop()
        self.server.shutdown()
        self.server.server_close()

    # -- worker ----------------------------------------------------------------------------

    def stats_hook(self, sink: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
        """Wrap a worker's stats sink: counters into the registry, the URL into the stats."""

        def on_stats(data: dict[str, Any]) -> None:
            try:
                update_from_worker_counters(self.metrics, data.get("counters") or {})
            except Exception as exc:  # metrics must never stop the stream
                log.warning("could not update metrics: %s", type(exc).__name__)
            data["metrics"] = self.url
            sink(data)

        return on_stats

    # -- trainer ---------------------------------------------------------------------------

    def on_report(self, report: Any) -> None:
        """After a published round: the new model and how long its publish took (never raises)."""
        if not report.version:
            return
        try:
            update_model(
                self.metrics,
                report.version,
                ndcg_at_10=(report.metrics or {}).get("ndcg_at_10"),
                published_s=time.time(),
                publish_duration_s=(report.seconds or {}).get("publish"),
                validation_ndcg=(report.metrics or {}).get("validation_ndcg_at_10"),
                setting=_setting(getattr(report, "tuning", None)),
                family=getattr(report, "serving", None),
            )
        except Exception as exc:  # metrics must never stop the trainer
            log.warning("could not update metrics: %s", type(exc).__name__)


def start_worker_metrics(settings: Settings, endpoints: Endpoints) -> ProcessMetrics | None:
    """Serve a worker's metrics and start its lag and model jobs; None when metrics are off."""
    cfg = settings.metrics
    if not cfg.enabled:
        return None
    served = ProcessMetrics(
        PipelineMetrics(process_registry(), sections={"lag", "stream", "model"}),
        cfg.host,
        cfg.worker_port,
        "metrics.worker_port",
    )
    if cfg.lag_interval_s > 0:
        lag = LagJob(
            served.metrics,
            lambda: lag_collector(endpoints),
            pipeline_groups(settings),
            stale_after_s=max(60.0, 6 * cfg.lag_interval_s),
        )
        served.run(Periodic("lag-metrics", lag, cfg.lag_interval_s, on_stop=lag.close))
    redis = redis_client(endpoints, socket_timeout=5.0)
    layout = Layout.from_settings(settings)
    served.run(
        Periodic(
            "model-metrics",
            lambda: refresh_model(served.metrics, redis, layout),
            MODEL_REFRESH_S,
            on_stop=redis.close,
        )
    )
    return served


def start_trainer_metrics(
    settings: Settings,
    endpoints: Endpoints,
    counters: Callable[[], Mapping[str, int]],
    dp_spent: Callable[[], Mapping[str, tuple[float, float]]] | None = None,
) -> ProcessMetrics | None:
    """Serve a trainer's metrics, follow ``counters()`` (``Trainer.counters``) and advertise the URL.

    The trainer's stats (``privrec:stats:trainer:<app_id>:<id>``) are rewritten
    every few seconds with a TTL, so a trainer that died disappears from
    ``privrec status``. None when metrics are off.
    """
    cfg = settings.metrics
    if not cfg.enabled:
        return None
    served = ProcessMetrics(
        PipelineMetrics(process_registry(), sections={"model", "trainer", "erasure"}),
        cfg.host,
        cfg.trainer_port,
        "metrics.trainer_port",
    )
    redis = redis_client(endpoints, socket_timeout=5.0)
    layout = Layout.from_settings(settings)
    trainer_id = f"{settings.app_id}:{uuid.uuid4().hex[:8]}"
    key = stats_key("trainer", trainer_id)
    identity = process_identity()  # so `privrec status` sees an exited trainer at once

    def round_() -> None:
        # dict(...) of a str->int dict copies under the GIL: safe while the trainer counts
        update_from_trainer_counters(served.metrics, dict(counters()))
        if dp_spent is not None:
            update_dp_spent(served.metrics, dict(dp_spent()), settings.dp.epsilon_per_day)
        refresh_model(served.metrics, redis, layout)
        data = {"trainer": trainer_id, "at": int(time.time() * 1000), "metrics": served.url, **identity}
        redis.set(key, json.dumps(data), ex=TRAINER_STATS_TTL_S)

    def forget() -> None:
        try:
            redis.delete(key)
        finally:
            redis.close()

    served.run(Periodic("trainer-metrics", round_, MODEL_REFRESH_S, on_stop=forget))
    return served


def _setting(tuning: Any) -> dict[str, Any] | None:
    """The ``privrec_model_setting`` labels: family and setting of a tuning summary."""
    if not tuning:
        return None
    return {"family": tuning.get("family", "als"), **(tuning.get("setting") or {})}
