"""The stream worker process: a Faust app with the privacy stream attached, its stats and metrics."""

from __future__ import annotations

from typing import Any

from agents.processes.watchdog import arm_stop_watchdog
from pipeline.keys import pseudonymizer
from pipeline.services.connect import redis_client, resolve
from pipeline.settings import Settings

__all__ = ["run_worker"]


def run_worker(settings: Settings, *, loglevel: str = "warning") -> int:
    """Assemble the worker and run it until Faust stops it (signals are Faust's own)."""
    import faust

    from agents.app import AppTopics, create_app
    from agents.metrics import start_worker_metrics
    from agents.stream import attach_stream, stats_to_redis
    from agents.worker_log import announce, logging_config
    from pipeline.stream import StreamConfig, StreamProcessor

    endpoints = resolve(settings)
    processor = StreamProcessor(StreamConfig.from_settings(settings), pseudonymizer(settings))
    app = create_app(settings, endpoints)
    served = start_worker_metrics(settings, endpoints)  # None when metrics.enabled is false
    on_stats = stats_to_redis(redis_client(endpoints))
    try:
        attach_stream(
            app,
            processor,
            AppTopics.from_settings(settings),
            partitions=settings.partitions,
            on_stats=served.stats_hook(on_stats) if served is not None else on_stats,
        )
        worker = _bounded_stop_worker(faust.Worker)(
            app, loglevel=loglevel, quiet=True, logging_config=logging_config(loglevel)
        )
        announce(
            worker,
            settings,
            endpoints,
            loglevel=loglevel,
            stream_topic=AppTopics.from_settings(settings).raw,
            metrics_url=served.url if served is not None else None,
        )
        worker.execute_from_commandline()
    finally:
        if served is not None:
            served.close()
    return 0


def _bounded_stop_worker(base: type[Any]) -> type[Any]:
    """``faust.Worker`` whose SIGTERM/SIGINT also arms :func:`arm_stop_watchdog` (see there why)."""

    class BoundedStopWorker(base):  # type: ignore[misc, valid-type]
        def _schedule_shutdown(self, signal: Any) -> None:
            arm_stop_watchdog("worker")
            super()._schedule_shutdown(signal)

    return BoundedStopWorker
