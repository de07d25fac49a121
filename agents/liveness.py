"""Who is alive, from the heartbeats processes write into Redis (their stats, with a TTL).

Workers are members of their consumer group, so the broker knows them. The
continuous trainer reads every partition with manual assignment (it must see all
of them, alone), so the broker reports its group ``Empty`` with 0 members while it
runs. ``privrec lag`` and ``privrec status`` therefore take the trainer group's
members from the trainers' heartbeats (:func:`pipeline.ops.collect.with_heartbeats`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence

from pipeline.services.connect import Endpoints, redis_client
from pipeline.settings import Settings

__all__ = ["TRAINER_LIVE_S", "trainer_group", "trainer_liveness"]

log = logging.getLogger(__name__)

TRAINER_LIVE_S = 30.0
"""A trainer rewrites its heartbeat every few seconds; older than this, it no longer counts as live
(its key expires later still, so a killed trainer is listed as stale for a while)."""


def trainer_group(settings: Settings) -> str:
    """The continuous trainer's consumer group (its committed offsets live there)."""
    return f"{settings.app_id}-trainer"


def trainer_liveness(
    settings: Settings, endpoints: Endpoints
) -> Callable[[list[str]], Mapping[str, Sequence[str]]]:
    """A :class:`~pipeline.ops.collect.LagCollector` ``liveness`` hook: live trainer ids per group.

    Read afresh on every call (so ``lag --watch`` sees a trainer stop); an unreadable
    Redis gives no heartbeats, and the broker's word stands.
    """
    from pipeline.ops.summary import process_reports

    group = trainer_group(settings)

    def live(groups: list[str]) -> Mapping[str, Sequence[str]]:
        if group not in groups:
            return {}
        client = redis_client(endpoints, socket_timeout=3.0, socket_connect_timeout=3.0)
        try:
            reports = process_reports(client, settings.app_id, "trainer", int(time.time() * 1000))
        except Exception as exc:  # Redis away: lag still reports what the broker says
            log.debug("trainer heartbeats unreadable: %s", type(exc).__name__)
            return {}
        finally:
            client.close()
        return {group: [r.id for r in reports if r.age_s <= TRAINER_LIVE_S]}

    return live
