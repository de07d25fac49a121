"""The gateway's aiohttp application: middlewares, routes, and how to serve it.

Every request passes, outermost first:

1. **CORS** — an ``Origin`` must be on ``gateway.cors_origins`` or be the
   gateway's own; preflights are answered here; other origins get 403.
2. **errors and metrics** — every refusal becomes ``{"error": reason}`` with
   its status (never a traceback, a value or an id); each answer is counted by
   route template and status.
3. **policy** — the route's declaration (:func:`~agents.gateway.deps.requires`):
   rate limit per client address, bearer token, scope, rate limit per subject;
   the caller lands in ``request[PRINCIPAL]``.

There is no access log (paths and bodies can hold ids), and request bodies are
not decompressed by aiohttp (``auto_decompress=False``): the collector does it
itself with a cap on the decompressed size. Serve the app with :func:`runner`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiohttp import web

from agents.gateway.deps import (
    DEPS,
    PRINCIPAL,
    GatewayDeps,
    Handler,
    json_response,
    policy_of,
    public,
    route_name,
)
from pipeline.errors import AuthError, RequestRefused, ServiceUnavailable

__all__ = ["make_app", "runner"]

log = logging.getLogger(__name__)

_STATUS_REASON = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
}
_CORS_METHODS = "GET, POST, PUT, OPTIONS"
_CORS_HEADERS = "Authorization, Content-Type, Content-Encoding"


def _allowed_origin(request: web.Request, origin: str, allowed: frozenset[str]) -> bool:
    return origin in allowed or origin == f"{request.scheme}://{request.host}"


def _cors_middleware(allowed: frozenset[str]) -> Any:
    @web.middleware
    async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin is None:
            return await handler(request)
        ok = _allowed_origin(request, origin, allowed)
        preflight = request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers
        if not ok:
            deps = request.app[DEPS]
            if deps.metrics is not None:
                deps.metrics.reject("origin_not_allowed")
            return json_response({"error": "origin_not_allowed"}, 403)
        if preflight:
            response: web.StreamResponse = web.Response(status=204)
            response.headers["Access-Control-Allow-Methods"] = _CORS_METHODS
            response.headers["Access-Control-Allow-Headers"] = _CORS_HEADERS
            response.headers["Access-Control-Max-Age"] = "600"
        else:
            response = await handler(request)
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = "Retry-After"
        response.headers["Vary"] = "Origin"
        return response

    return cors


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    deps = request.app[DEPS]
    started = time.perf_counter()
    reason: str | None = None
    try:
        response = await handler(request)
    except RequestRefused as exc:
        reason = exc.reason
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
        response = json_response({"error": exc.reason}, exc.status, headers)
    except AuthError as exc:
        reason = exc.reason
        code = "insufficient_scope" if exc.status == 403 else "invalid_token"
        response = json_response(
            {"error": exc.reason}, exc.status, {"WWW-Authenticate": f'Bearer error="{code}"'}
        )
    except ServiceUnavailable as exc:
        reason = "unavailable"
        log.warning(
            "gateway: %s %s answered 503: %s", request.method, route_name(request), type(exc).__name__
        )
        response = json_response({"error": "unavailable"}, 503, {"Retry-After": "5"})
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        reason = _STATUS_REASON.get(exc.status, "http_error")
        response = json_response({"error": reason}, exc.status)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a bug: say where, never what
        reason = "internal"
        log.error("gateway: %s %s failed with %s", request.method, route_name(request), type(exc).__name__)
        response = json_response({"error": "internal"}, 500)
    if deps.metrics is not None:
        deps.metrics.observe(
            route_name(request), request.method, response.status, time.perf_counter() - started
        )
        if reason is not None:
            deps.metrics.reject(reason)
    return response


def _bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization")
    if header is None:
        raise AuthError("missing")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("malformed")
    return token.strip()


async def _limit(deps: GatewayDeps, route_class: str, kind: str, identity: str) -> None:
    if deps.limiter is None:
        return
    retry = await deps.limiter.hit(route_class, kind, identity)
    if retry is not None:
        raise RequestRefused(429, "rate_limited", retry_after=max(1, int(retry + 0.999)))


@web.middleware
async def _policy(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.match_info.http_exception is not None:
        return await handler(request)  # 404/405: aiohttp raises it
    policy = policy_of(request.match_info.handler)
    if policy is None:
        raise RequestRefused(403, "forbidden")  # an undeclared route is closed
    if policy.scope is None:
        return await handler(request)
    deps = request.app[DEPS]
    assert policy.limit is not None
    await _limit(deps, policy.limit, "addr", request.remote or "")
    token = _bearer(request)
    verifier = deps.verifier
    if verifier.fetches_keys:
        caller = await asyncio.to_thread(verifier.verify, token)
    else:
        caller = verifier.verify(token)
    if not caller.has(policy.scope):
        raise AuthError("insufficient_scope")
    await _limit(deps, policy.limit, "sub", f"{caller.kind}:{caller.subject}")
    request[PRINCIPAL] = caller
    return await handler(request)


@public
async def healthz(request: web.Request) -> web.Response:
    """ok when Redis answers and the producer is started; nothing more is said."""
    deps = request.app[DEPS]
    ready = getattr(deps.sink, "ready", True)
    if ready and await deps.reader.ping():
        return json_response({"status": "ok"})
    return json_response({"status": "unavailable"}, 503)


@public
async def metrics(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    body = deps.metrics.render() if deps.metrics is not None else b""
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


@public
async def openapi(request: web.Request) -> web.Response:
    from agents.gateway.openapi import OPENAPI

    return json_response(request.app[OPENAPI])


def make_app(deps: GatewayDeps) -> web.Application:
    """The gateway over ``deps`` (whose clients the caller starts and closes).

    Routes: ``POST /v1/events``, the two recommendation routes, ``/healthz``,
    ``/metrics``, ``/openapi.json``, and gw-rights' routes when
    :mod:`agents.gateway.rights` exists (``add_rights_routes(app)``).
    """
    from agents.gateway import events, recs
    from agents.gateway import openapi as spec

    gw = deps.settings.gateway
    app = web.Application(
        middlewares=[_cors_middleware(frozenset(gw.cors_origins)), _errors, _policy],
        client_max_size=gw.max_body_bytes,
    )
    app[DEPS] = deps
    app.router.add_post("/v1/events", events.post_events)
    app.router.add_get("/v1/me/recommendations", recs.my_recommendations)
    app.router.add_get("/v1/users/{id}/recommendations", recs.user_recommendations)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/openapi.json", openapi)
    rights = spec.rights_module()
    if rights is not None:
        rights.add_rights_routes(app)
    app[spec.OPENAPI] = spec.build(deps.settings, rights)
    return app


def runner(app: web.Application) -> web.AppRunner:
    """An ``AppRunner`` without access log and without aiohttp's own body decompression."""
    return web.AppRunner(app, access_log=None, auto_decompress=False, handle_signals=False)
