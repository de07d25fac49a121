"""Release a day: count, reserve budget in the ledger, draw noise, record, publish.

:func:`release_day` is the one path every release takes (``privrec trending
--release`` and the continuous trainer's :class:`TrendingJob`). Clients come in
as arguments: a ledger store (``read``/``append``), a function that feeds the
bounder from ``playback.redacted``, a Redis client.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from pipeline.dp.bounding import DAY_MS, Bounder, day_of
from pipeline.dp.ledger import (
    BudgetExceeded,
    LedgerItem,
    LedgerRecord,
    admitted,
    check,
    latest_release,
    spent_by_day,
)
from pipeline.dp.release import plan, release_counts
from pipeline.dp.trending import from_record, latest_trending, publish_trending
from pipeline.errors import ServiceUnavailable
from pipeline.settings import DpSettings

if TYPE_CHECKING:  # at run time only its methods are used (and serving imports this module)
    from pipeline.serving.layout import Layout

__all__ = ["LedgerStore", "TrendingJob", "due_day", "release_day"]

log = logging.getLogger(__name__)

Feed = Callable[[Bounder, Collection[str]], Any]
"""Feeds the bounder with the analytics plays of the given days (see :mod:`pipeline.dp.source`)."""


class LedgerStore(Protocol):
    def read(self) -> list[LedgerRecord]: ...
    def append(self, record: LedgerRecord) -> int: ...


def release_day(
    day: str,
    *,
    cfg: DpSettings,
    store: LedgerStore,
    feed: Feed,
    key: bytes,
    redis: Any | None = None,
    layout: Layout | None = None,
    epsilon: float | None = None,
    clock: Callable[[], float] = time.time,
) -> LedgerRecord:
    """Release ``day``'s trending counts, spending ``epsilon`` (default: the whole day budget).

    δ is spent in proportion (``dp.delta · ε / dp.epsilon_per_day``), so a day's
    budget can be split over several releases.

    Raises:
        BudgetExceeded: the day's ε or δ budget does not hold the release
            (checked before, and again at the reservation's place in the log).
        ServiceUnavailable: Kafka or Redis did not answer.
    """
    _parse_day(day)
    eps = float(epsilon if epsilon is not None else cfg.epsilon_per_day)
    delta = cfg.delta * eps / cfg.epsilon_per_day
    budgets = {"epsilon_budget": cfg.epsilon_per_day, "delta_budget": cfg.delta}
    check(store.read(), day, eps, delta, **budgets)
    p = plan(eps, delta, cfg.max_titles_per_viewer_day)
    bounder = Bounder(key, cfg.max_titles_per_viewer_day)
    feed(bounder, {day})
    counts = bounder.counts(day)

    release_id = f"{day}.{uuid.uuid4().hex[:16]}"
    base = dict(
        release_id=release_id,
        day=day,
        mechanism=p.mechanism,
        epsilon=eps,
        delta=delta,
        max_titles=p.max_titles,
        scale=p.scale,
        threshold=p.threshold,
    )
    store.append(LedgerRecord(status="reserved", at_ms=int(clock() * 1000), **base))  # type: ignore[arg-type]
    if not admitted(store.read(), release_id, **budgets):
        store.append(LedgerRecord(status="aborted", at_ms=int(clock() * 1000), **base))  # type: ignore[arg-type]
        spent = spent_by_day(store.read()).get(day, (0.0, 0.0))[0]
        raise BudgetExceeded(day, spent, eps, cfg.epsilon_per_day)
    noisy = release_counts(counts, p)  # noise is drawn only after the budget is held
    ranked = sorted(noisy.items(), key=lambda kv: (-kv[1], kv[0]))[: cfg.top_n]
    record = LedgerRecord(
        status="released",
        at_ms=int(clock() * 1000),
        items=[LedgerItem(c, n) for c, n in ranked],
        **base,  # type: ignore[arg-type]
    )
    store.append(record)
    log.info("dp: released %s: %d of %d titles passed the threshold", day, len(ranked), len(counts))
    if redis is not None and layout is not None:
        publish_trending(redis, layout, from_record(record))
    return record


def _parse_day(day: str) -> int:
    from pipeline.dp.bounding import day_start_ms

    try:
        return day_start_ms(day)
    except ValueError:
        raise ValueError(f"day must be YYYY-MM-DD, got {day!r}") from None


def due_day(now_s: float, grace_s: float) -> str:
    """The latest UTC day that ended at least ``grace_s`` ago."""
    return day_of(int((now_s - grace_s) * 1000) - DAY_MS)


@dataclass
class TrendingJob:
    """The continuous release, stepped by the trainer's loop.

    Every ``dp.check_every_s``: when the latest day that is over (plus
    ``dp.release_grace_s``) has no ledger record yet, release it; when Redis
    lost the served list (no persistence), republish the latest release from
    the ledger. A spent budget is logged and skipped, never retried.
    """

    cfg: DpSettings
    store: LedgerStore
    feed: Feed
    key: bytes
    redis: Any
    layout: Layout
    clock: Callable[[], float] = time.time
    last_check: float | None = None
    """When the job last looked; None: one ``check_every_s`` after it was made (a trainer that
    starts has more urgent work than reading ``playback.redacted``)."""
    released: list[str] = field(default_factory=list)
    spent: dict[str, tuple[float, float]] = field(default_factory=dict)
    """(ε, δ) spent per day at the last check (``/metrics``)."""

    def step(self, now: float | None = None) -> LedgerRecord | None:
        now = self.clock() if now is None else now
        if self.last_check is None:
            self.last_check = now
        if now - self.last_check < self.cfg.check_every_s:
            return None
        self.last_check = now
        try:
            return self._check(now)
        except ServiceUnavailable:
            log.warning(
                "dp: Kafka did not answer; the release check is retried in %.0f s", self.cfg.check_every_s
            )
            return None

    def _check(self, now: float) -> LedgerRecord | None:
        records = self.store.read()
        self.spent = spent_by_day(records)
        day = due_day(now, self.cfg.release_grace_s)
        out = None
        if day not in self.spent:
            try:
                out = release_day(
                    day,
                    cfg=self.cfg,
                    store=self.store,
                    feed=self.feed,
                    key=self.key,
                    redis=self.redis,
                    layout=self.layout,
                    clock=self.clock,
                )
                self.released.append(day)
                self.spent = spent_by_day(self.store.read())
            except BudgetExceeded:
                log.warning("dp: the budget of %s is spent; not released", day)
        elif latest_trending(self.redis, self.layout) is None:
            last = latest_release(records)
            if last is not None and last.items:
                publish_trending(self.redis, self.layout, from_record(last))
                log.info("dp: republished the release of %s from the ledger", last.day)
        return out
