"""What every gateway route is built on: its dependencies, its declared policy, JSON replies.

A route handler is an ordinary aiohttp handler decorated with :func:`requires`
(or :func:`public`); the middlewares in :mod:`agents.gateway.app` read that
declaration, verify the token, check the scope and the rate limit *before* the
handler runs, and put the caller in ``request[PRINCIPAL]``. Handlers reach
clients through ``request.app[DEPS]`` and refuse with :class:`RequestRefused`
(rendered as ``{"error": reason}``). A handler without a declaration is refused
for everyone (fail closed).

Example::

    @requires(PRIVACY_SELF, limit="privacy")
    async def get_consent(request: web.Request) -> web.Response:
        deps = request.app[DEPS]
        viewer = request[PRINCIPAL].subject
        ...
        return json_response({...})
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal, Protocol

import msgspec
from aiohttp import web

from pipeline.errors import RequestRefused
from pipeline.gateway.principal import Principal
from pipeline.settings import Settings

__all__ = [
    "DEPS",
    "PRINCIPAL",
    "EventSink",
    "GatewayDeps",
    "Handler",
    "Policy",
    "RequestRefused",
    "json_response",
    "policy_of",
    "principal",
    "public",
    "requires",
    "route_name",
]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
RouteClass = Literal["events", "recs", "privacy"]
PRINCIPAL: web.RequestKey[Principal] = web.RequestKey("privrec_principal", Principal)
"""``request[PRINCIPAL]``: the verified :class:`Principal` (absent on public routes)."""


class EventSink(Protocol):
    """Produces records and returns only once the broker acknowledged them (acks=all)."""

    async def send(self, topic: str, key: bytes, value: bytes | None) -> None:
        """Produce one record; raises :class:`~pipeline.errors.ServiceUnavailable` when Kafka is down."""
        ...


@dataclass
class GatewayDeps:
    """Everything routes need, made once by :mod:`agents.gateway.process` (or a test).

    Attributes:
        settings: the process's settings.
        verifier: a :class:`~pipeline.gateway.auth.TokenVerifier`.
        sink: the idempotent Kafka producer (:class:`EventSink`).
        redis: a ``redis.asyncio.Redis`` (decode_responses=False) on privrec's Redis.
        reader: a :class:`~pipeline.serving.AsyncReader` over ``redis``.
        pseudonymizer: the configured :class:`~pipeline.privacy.pseudonym.Pseudonymizer`.
        limiter: a :class:`~agents.gateway.ratelimit.RateLimiter`, or None for no limits.
        metrics: :class:`~agents.gateway.metrics.GatewayMetrics` (own registry).
    """

    settings: Settings
    verifier: Any
    sink: EventSink
    redis: Any
    reader: Any
    pseudonymizer: Any
    limiter: Any = None
    metrics: Any = None

    def topic(self, name: str) -> str:
        return self.settings.topic(name)

    @cached_property
    def content_id_pattern(self) -> re.Pattern[str]:
        return re.compile(self.settings.stream.content_id_pattern)

    def __repr__(self) -> str:
        return "GatewayDeps(...)"


DEPS: web.AppKey[GatewayDeps] = web.AppKey("privrec_gateway_deps", GatewayDeps)


@dataclass(frozen=True, slots=True)
class Policy:
    """A route's declaration: the scope it needs (None: public) and its rate-limit class."""

    scope: str | None
    limit: RouteClass | None


_ATTR = "__gateway_policy__"


def requires(scope: str, *, limit: RouteClass) -> Callable[[Handler], Handler]:
    """Declare that a handler needs a token holding ``scope``, rate-limited as ``limit``."""

    def mark(handler: Handler) -> Handler:
        setattr(handler, _ATTR, Policy(scope, limit))
        return handler

    return mark


def public(handler: Handler) -> Handler:
    """Declare a handler that needs no token (``/healthz``, ``/openapi.json``, ``/privacy``)."""
    setattr(handler, _ATTR, Policy(None, None))
    return handler


def policy_of(handler: Any) -> Policy | None:
    return getattr(handler, _ATTR, None)


def principal(request: web.Request) -> Principal:
    """The verified caller of a route declared with :func:`requires`."""
    return request[PRINCIPAL]


_encode = msgspec.json.Encoder().encode


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON reply (msgspec encodes Structs, dataclasses and builtins); never cached."""
    merged = {"Cache-Control": "no-store"}
    if headers:
        merged.update(headers)
    return web.Response(body=_encode(data), status=status, content_type="application/json", headers=merged)


def route_name(request: web.Request) -> str:
    """The route template (``/v1/me/erasure/{request_id}``), never the path: paths can carry ids."""
    route = request.match_info.route
    resource = route.resource if route is not None else None
    return resource.canonical if resource is not None else "unmatched"
