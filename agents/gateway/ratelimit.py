"""Rate limits per route class, per token subject and per client address, kept in privrec's Redis.

The ``limits`` library's fixed-window strategy on its Redis storage (redis-py
implementation, the same client library privrec uses): one Lua round trip per
identity, shared by every gateway process. Keys never hold a raw viewer id or
address: both are replaced by a keyed pseudonym first. When Redis does not
answer, requests are refused with 503 rather than let through unlimited.
"""

from __future__ import annotations

import time
from typing import Any

from limits import RateLimitItem, parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import FixedWindowRateLimiter

from pipeline.errors import ServiceUnavailable
from pipeline.settings import Settings

__all__ = ["RateLimiter", "storage_uri"]


def storage_uri(redis_url: str) -> str:
    """The ``limits`` async storage URI for a ``redis://``/``rediss://``/``unix://`` URL."""
    if redis_url.startswith("unix://"):
        return "async+redis+unix://" + redis_url.removeprefix("unix://")
    return "async+" + redis_url


class RateLimiter:
    """``hit(route_class, identity)``: None when allowed, else the seconds until retry.

    Args:
        settings: ``gateway.limits`` (one rate per route class) and ``app_id`` (key prefix).
        redis_url: privrec's Redis (with its password; never logged).
        pseudonymizer: hashes identities before they become keys.
    """

    def __init__(self, settings: Settings, redis_url: str, pseudonymizer: Any) -> None:
        self._items: dict[str, RateLimitItem] = {
            name: parse(rate) for name, rate in settings.gateway.limits.model_dump().items()
        }
        self._storage = RedisStorage(
            storage_uri(redis_url),
            implementation="redispy",
            wrap_exceptions=True,
            key_prefix=f"{settings.app_id}:gw:rl",
            socket_timeout=2,
            socket_connect_timeout=2,
        )
        self._limiter = FixedWindowRateLimiter(self._storage)
        self._pz = pseudonymizer

    def __repr__(self) -> str:
        return "RateLimiter(...)"

    async def hit(self, route_class: str, kind: str, identity: str) -> float | None:
        """Count one request of ``identity`` (``kind``: ``sub`` or ``addr``) against its class."""
        item = self._items[route_class]
        key = self._pz.pseudonym(f"{kind}:{identity}")
        try:
            if await self._limiter.hit(item, route_class, kind, key):
                return None
            stats = await self._limiter.get_window_stats(item, route_class, kind, key)
        except Exception as exc:  # limits wraps every storage failure in StorageError
            raise ServiceUnavailable(f"redis: rate-limit storage failed ({type(exc).__name__})") from None
        return max(1.0, stats.reset_time - time.time())

    async def reset(self) -> None:
        """Forget every counter (tests)."""
        await self._storage.reset()
