"""The background half of a process's ``/metrics``: jobs that refresh gauges off the event loop.

:class:`Periodic` runs a job on a daemon thread every few seconds; a job that
fails (Kafka slow or down, Redis gone) is logged by exception type and tried
again next round, so it can never stop the process it observes.
:class:`LagJob` samples consumer lag into a sliding
:class:`~pipeline.ops.lag.LagWindow`; :func:`refresh_model` reads the live
model from the recommendation cache.

Example::

    >>> calls = []
    >>> job = Periodic("demo", lambda: calls.append(1), interval_s=60).start()
    >>> job.stop()
    >>> calls
    [1]
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from pipeline.ops.collect import LagCollector
from pipeline.ops.lag import LagWindow
from pipeline.ops.metrics import PipelineMetrics, update_from_lag, update_model
from pipeline.ops.summary import live_model
from pipeline.serving.layout import Layout

__all__ = ["LagJob", "Periodic", "refresh_model"]

log = logging.getLogger(__name__)


class Periodic:
    """Calls ``job`` at once, then every ``interval_s``, on a daemon thread until :meth:`stop`.

    ``on_stop`` runs on that thread after its last round (e.g. to close the
    clients the job made there).
    """

    def __init__(
        self,
        name: str,
        job: Callable[[], None],
        interval_s: float,
        *,
        on_stop: Callable[[], None] | None = None,
    ) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be > 0")
        self.name = name
        self.job = job
        self.interval_s = interval_s
        self.on_stop = on_stop
        self.rounds = 0
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"privrec-{name}", daemon=True)

    def start(self) -> Periodic:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            while True:
                try:
                    self.job()
                except Exception as exc:  # observing must never stop what it observes
                    self.failures += 1
                    log.warning(
                        "%s: round failed (%s); retrying in %gs",
                        self.name,
                        type(exc).__name__,
                        self.interval_s,
                    )
                self.rounds += 1
                if self._stop.wait(self.interval_s):
                    return
        finally:
            if self.on_stop is not None:
                try:
                    self.on_stop()
                except Exception as exc:
                    log.debug("%s: clean-up failed (%s)", self.name, type(exc).__name__)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Ask the thread to finish and wait up to ``timeout_s`` (a round in progress completes)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)


class LagJob:
    """One round: sample ``groups`` with a collector, evaluate the window, set the lag gauges.

    ``connect`` makes a :class:`LagCollector` on first use and again after a
    failure (its clients are closed then). When no round has succeeded for
    ``stale_after_s``, the lag series are removed rather than left showing old values.
    """

    def __init__(
        self,
        metrics: PipelineMetrics,
        connect: Callable[[], LagCollector],
        groups: Iterable[str],
        *,
        window: int = 10,
        stale_after_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.metrics = metrics
        self.connect = connect
        self.groups = list(dict.fromkeys(groups))
        self.window = LagWindow(size=window)
        self.stale_after_s = stale_after_s
        self.clock = clock
        self.collector: LagCollector | None = None
        self._last_ok = clock()

    def __call__(self) -> None:
        try:
            if self.collector is None:
                self.collector = self.connect()
            samples, _infos = self.collector.sample(self.groups)
        except Exception:
            self.close()
            if self.clock() - self._last_ok > self.stale_after_s:
                update_from_lag(self.metrics, [])
            raise
        self.window.extend(samples)
        update_from_lag(self.metrics, self.window.evaluate(self.groups))
        self._last_ok = self.clock()

    def close(self) -> None:
        """Close the collector's clients; the next round connects again."""
        collector, self.collector = self.collector, None
        if collector is None:
            return
        for client in (collector.consumer, collector.admin):
            try:
                client.close()
            except Exception as exc:
                log.debug("closing a lag client failed (%s)", type(exc).__name__)


def refresh_model(metrics: PipelineMetrics, redis: Any, layout: Layout) -> None:
    """Set the model gauges from the live model in Redis (unchanged when nothing is published)."""
    model = live_model(redis, layout)
    if model is None:
        return
    update_model(
        metrics,
        model.version,
        ndcg_at_10=model.ndcg_at_10,
        published_s=None if model.published_at_ms is None else model.published_at_ms / 1000,
        validation_ndcg=model.validation_ndcg_at_10,
        setting={"family": model.tuning.get("family", "als"), **(model.tuning.get("setting") or {})}
        if model.tuning
        else None,
        family=model.family,
    )
