"""The HTTP endpoint: ``GET /recommendations/{user_id}?n=10`` and ``GET /healthz``.

Responses are JSON; errors too (``{"error": "..."}`` with 400, 404, 405 or
503). aiohttp's access log would write request paths, which hold raw user
ids, so :func:`serve` runs without it: logs say where, never who.

Example::

    reader = AsyncReader(redis.asyncio.Redis.from_url(url), pseudonymizer(settings),
                         Layout.from_settings(settings))
    web.run_app(make_app(reader), access_log=None)
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from aiohttp import web

from pipeline.errors import ServiceUnavailable
from pipeline.serving.reader import MAX_N, AsyncReader

__all__ = ["DEFAULT_N", "make_app", "serve"]

log = logging.getLogger(__name__)

DEFAULT_N = 10
READER: web.AppKey[AsyncReader] = web.AppKey("reader", AsyncReader)
_encode = msgspec.json.Encoder().encode


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=_encode(data), status=status, content_type="application/json")


def _error(status: int, message: str) -> web.Response:
    return _json({"error": message}, status)


def _parse_n(raw: str | None) -> int | None:
    if raw is None:
        return DEFAULT_N
    try:
        n = int(raw)
    except ValueError:
        return None
    return n if 1 <= n <= MAX_N else None


async def recommendations(request: web.Request) -> web.Response:
    n = _parse_n(request.query.get("n"))
    if n is None:
        return _error(400, f"n must be an integer between 1 and {MAX_N}")
    user_id = request.match_info["user_id"]
    if not user_id.strip():
        return _error(400, "user_id must not be empty")
    response = await request.app[READER].get(user_id, n)
    return _json(response)


async def healthz(request: web.Request) -> web.Response:
    if await request.app[READER].ping():
        return _json({"status": "ok"})
    return _error(503, "redis: no answer")


@web.middleware
async def _json_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _error(exc.status, exc.reason)
    except ServiceUnavailable as exc:
        log.warning("recommendation read failed: %s", exc)
        return _error(503, str(exc))


def make_app(reader: AsyncReader) -> web.Application:
    """The aiohttp application over ``reader`` (whose Redis client the caller owns)."""
    app = web.Application(middlewares=[_json_errors])
    app[READER] = reader
    app.router.add_get("/recommendations/{user_id}", recommendations)
    app.router.add_get("/healthz", healthz)
    return app


def serve(app: web.Application | Awaitable[web.Application], host: str, port: int, **kwargs: Any) -> None:
    """Run ``app`` (or a coroutine building it) until interrupted, without an access log."""
    web.run_app(app, host=host, port=port, access_log=None, **kwargs)
