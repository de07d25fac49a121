"""The released trending list in Redis: one key per day, the latest non-empty day served.

Each release is stored as ``<ns>:trending:<release id>`` (msgpack
:class:`TrendingList`; a release id starts with its day) and, when it holds at
least one title, entered in ``<ns>:trending:days`` (scored by its day, then its
release time), which the reader reads to find the list to serve: the latest
release of the latest day that has titles. Skipping empty days is
post-processing of the DP output (costs no privacy) and keeps a quiet day
from replacing a useful list with nothing. Only ``keep`` days are kept.

Redis is a cache here: the ledger record of each release holds the same items,
and :class:`~pipeline.dp.service.TrendingJob` republishes the latest one when
Redis lost it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from pipeline.dp.bounding import DAY_MS, day_start_ms
from pipeline.dp.ledger import LedgerRecord
from pipeline.recs.types import PopularItem

if TYPE_CHECKING:  # at run time only its methods are used (and serving imports this module)
    from pipeline.serving.layout import Layout

__all__ = ["TrendingList", "decode_trending", "from_record", "latest_trending", "publish_trending"]


class TrendingList(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """What the reader serves in place of raw popularity; ``score`` is the noisy count."""

    day: str
    epsilon: float
    delta: float
    release_id: str
    released_at_ms: int
    items: list[PopularItem]


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(TrendingList)


def decode_trending(blob: bytes) -> TrendingList:
    return _DECODER.decode(blob)


def from_record(record: LedgerRecord, n: int | None = None) -> TrendingList:
    """The list of a ``released`` ledger record (its first ``n`` titles)."""
    items = [PopularItem(content_id=i.content_id, score=float(i.count)) for i in record.items]
    return TrendingList(
        day=record.day,
        epsilon=record.epsilon,
        delta=record.delta,
        release_id=record.release_id,
        released_at_ms=record.at_ms,
        items=items[:n] if n is not None else items,
    )


def _score(trending: TrendingList) -> float:
    """Day first, release time (s) second: exact in a float for the next few centuries."""
    return float(day_start_ms(trending.day) // DAY_MS * 10**10 + trending.released_at_ms // 1000 % 10**10)


def _str(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def publish_trending(redis: Any, layout: Layout, trending: TrendingList, *, keep: int = 14) -> None:
    """Store ``trending``; serve it if it is the latest release of the latest non-empty day.

    Empty releases are stored but never served; only the newest ``keep`` served ones are kept.
    """
    key = layout.trending(trending.release_id)
    pipe = redis.pipeline(transaction=True)
    pipe.set(key, _ENCODER.encode(trending))
    if trending.items:
        pipe.zadd(layout.trending_days, {trending.release_id: _score(trending)})
    else:
        pipe.expire(key, 7 * 86_400)
    pipe.execute()
    old = [_str(d) for d in redis.zrange(layout.trending_days, 0, -(keep + 1))]
    if old:
        redis.unlink(*[layout.trending(d) for d in old])
        redis.zrem(layout.trending_days, *old)


def latest_trending(redis: Any, layout: Layout, day: str | None = None) -> TrendingList | None:
    """The served list (``day`` None), or the latest served release of ``day``; None when absent."""
    members = [_str(m) for m in redis.zrevrange(layout.trending_days, 0, -1 if day else 0)]
    if day is not None:
        members = [m for m in members if m.startswith(day + ".")][:1]
    if not members:
        return None
    blob = redis.get(layout.trending(members[0]))
    return decode_trending(blob) if blob is not None else None
