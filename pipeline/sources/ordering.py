"""Put replayed events in time order and pack them into per-user batches.

The stream keeps a watermark per partition (the largest event time seen, less
an allowed lateness). Sending sessions one after another would jump the
watermark up to 50 minutes ahead with each session's last event and make the
next session's first events late, so events are merged across sessions into
one stream in event-time order (:func:`order_by_time`), and batches
(:func:`batch_sessions`) only ever hold one user's events that lie within
``max_hold_ms`` of each other. Any batch is therefore at most ``max_hold_ms``
older than what was sent before it: the stream's allowed lateness must be at
least that.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["BATCH_SCHEMA", "MAX_BATCH_EVENTS", "batch_sessions", "order_by_time"]

BATCH_SCHEMA = "playback.batch.v1"
"""Schema of the envelope ``{"schema": BATCH_SCHEMA, "events": [...]}`` a batch is sent in."""
MAX_BATCH_EVENTS = 500


def order_by_time(sessions: Iterable[list[dict[str, Any]]]) -> Iterator[dict[str, Any]]:
    """Merge sessions into one event stream in ``event_time`` order, lazily.

    Sessions must arrive in start-time order, as
    :func:`~pipeline.sources.ratings_to_sessions` yields them: then an event is
    final once a session starting after it arrives, and only the events of
    sessions still running are held (a heap merge). Ties keep arrival order, so
    each user's and each session's events keep their order.

    Raises:
        ValueError: a session starts before the one that came before it.
    """
    heap: list[tuple[int, int, dict[str, Any]]] = []
    seq = 0
    frontier: int | None = None
    for session in sessions:
        if not session:
            continue
        start = session[0]["event_time"]
        if frontier is not None and start < frontier:
            raise ValueError("sessions must arrive in start-time order")
        frontier = start
        while heap and heap[0][0] < start:
            yield heapq.heappop(heap)[2]
        for event in session:
            heapq.heappush(heap, (event["event_time"], seq, event))
            seq += 1
    while heap:
        yield heapq.heappop(heap)[2]


def batch_sessions(
    sessions: Iterable[list[dict[str, Any]]],
    max_events: int = MAX_BATCH_EVENTS,
    *,
    max_hold_ms: int = 60_000,
) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Yield ``(user_id, events)`` batches in time order, each one user's events in order.

    A user's batch opens at its first event and closes when it holds
    ``max_events`` events or when the stream passes ``max_hold_ms`` beyond that
    first event, so a batch spans at most ``max_hold_ms`` and batches go out
    roughly in time order. With ``max_hold_ms=0`` only a user's events at the
    same millisecond share a batch.

    Args:
        sessions: sessions in start-time order (see :func:`order_by_time`).
        max_events: the envelope limit.
        max_hold_ms: how long a batch may wait for more of its user's events.
    """
    if max_events < 1 or max_hold_ms < 0:
        raise ValueError("max_events must be >= 1 and max_hold_ms >= 0")
    open_batches: dict[str, tuple[int, list[dict[str, Any]]]] = {}  # insertion order = age
    for event in order_by_time(sessions):
        now = event["event_time"]
        while open_batches:
            user_id = next(iter(open_batches))
            opened, events = open_batches[user_id]
            if now - opened <= max_hold_ms:
                break
            del open_batches[user_id]
            yield user_id, events
        user_id = event["user_id"]
        batch = open_batches.get(user_id)
        if batch is None:
            batch = open_batches[user_id] = (now, [])
        batch[1].append(event)
        if len(batch[1]) >= max_events:
            del open_batches[user_id]
            yield user_id, batch[1]
    for user_id, (_, events) in open_batches.items():
        yield user_id, events
