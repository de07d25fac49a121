"""What ``privrec worker`` tells an operator at its default level: a start banner, each rebalance.

At ``warning`` Faust says nothing about what a worker holds, and its logging is
made for a terminal: a progress spinner that writes cursor escapes and colour
codes that land in a redirected log. So the worker logs through a plain
formatter of its own (the CLI's format, no escapes anywhere), without the
spinner, and this module's logger speaks at ``info`` whenever the chosen level
is ``warning`` or lower: one banner line when the process starts (app id and
consumer group, broker, partitions, metrics URL) and one line per assignment
and revocation (topic-partitions and counts). Where, never what: no payload,
no key, no user id reaches these lines.
"""

from __future__ import annotations

import logging
import logging.config
import os
from collections.abc import Iterable
from typing import Any

from pipeline.kafka.assignment import describe_assignment, partition_ranges, partitions_of
from pipeline.kafka.topics import app_id_outside_prefix
from pipeline.services.connect import Endpoints
from pipeline.settings import Settings

__all__ = ["LOG_FORMAT", "announce", "assignment_line", "banner", "logging_config"]

log = logging.getLogger(__name__)

#: The CLI's own format (``agents.cli.main``), so a worker's lines read like every other command's.
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def logging_config(loglevel: str) -> dict[str, Any]:
    """A ``dictConfig`` for the worker: plain lines on stderr; this module at ``info`` up to ``warning``.

    Handed to Faust's worker, which applies it in place of its coloured default.
    """
    level = logging.getLevelName(loglevel.upper())
    ours = min(level, logging.INFO) if level <= logging.WARNING else level
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": LOG_FORMAT}},
        "handlers": {
            "default": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr", "formatter": "plain"}
        },
        "root": {"level": level, "handlers": ["default"]},
        "loggers": {__name__: {"level": ours}},
    }


def banner(settings: Settings, endpoints: Endpoints, metrics_url: str | None, *, pid: int) -> str:
    """The start line: who this worker is, where it connects, what it serves."""
    mode = "embedded" if endpoints.kafka_embedded else "external"
    return (
        f"privrec worker starting: app id {settings.app_id} (consumer group {settings.app_id}), "
        f"broker {endpoints.kafka_bootstrap} ({mode}), topics {settings.topic_prefix}* with "
        f"{settings.partitions} partitions each, partitions: awaiting assignment, "
        f"metrics {metrics_url or 'off'}, pid {pid}"
    )


def assignment_line(
    verb: str, assignment: Iterable[tuple[str, int]], *, stream_topic: str, partitions: int
) -> str:
    """``assigned``/``revoked``: stream partitions, topic-partition count, each topic's ranges."""
    tps = sorted(set(assignment))
    stream = partitions_of(tps, stream_topic)
    return (
        f"partitions {verb}: {len(stream)} of {partitions} stream partitions "
        f"({partition_ranges(stream)}), {len(tps)} topic-partitions: {describe_assignment(tps)}"
    )


def announce(
    worker: Any,
    settings: Settings,
    endpoints: Endpoints,
    *,
    loglevel: str,
    stream_topic: str,
    metrics_url: str | None,
) -> None:
    """Make a built Faust worker log plainly, print the banner, and log every rebalance.

    Call after ``faust.Worker(..., logging_config=logging_config(loglevel))``
    and before ``execute_from_commandline``.
    """
    worker.spinner = None  # cursor escapes on stdout, redirected or not
    logging.config.dictConfig(logging_config(loglevel))  # now: Faust re-applies it when it starts
    log.info("%s", banner(settings, endpoints, metrics_url, pid=os.getpid()))
    outside = app_id_outside_prefix(settings)
    if outside is not None:
        log.warning("%s", outside)
    app = worker.app

    def pairs(tps: Iterable[Any]) -> list[tuple[str, int]]:
        return [(tp.topic, tp.partition) for tp in tps]

    @app.on_partitions_assigned.connect
    def _assigned(sender: Any, assigned: Any, **kwargs: Any) -> None:
        line = assignment_line(
            "assigned", pairs(assigned), stream_topic=stream_topic, partitions=settings.partitions
        )
        log.info("%s", line)

    @app.on_partitions_revoked.connect
    def _revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
        if revoked:  # the first rebalance revokes nothing: not worth a line
            line = assignment_line(
                "revoked", pairs(revoked), stream_topic=stream_topic, partitions=settings.partitions
            )
            log.info("%s", line)
