"""The viewer-rights routes and the privacy centre page of the gateway.

``add_rights_routes(app, settings)`` adds::

    GET  /v1/me/consent          PUT /v1/me/consent
    GET  /v1/me/controls         PUT /v1/me/controls
    POST /v1/me/export           (the export.v1 document, as a download)
    POST /v1/me/erasure          GET /v1/me/erasure/{request_id}
    GET  /privacy                (the page; its script and style sheet under /privacy/)

The API routes read the verified :class:`~pipeline.gateway.principal.Principal`
that the auth middleware put in ``request["principal"]`` and need the
``privacy:self`` scope; the page itself carries no data and needs no token (its
script sends the token from the URL fragment as ``Authorization: Bearer``).
The rules are :mod:`pipeline.gateway.rights`; Kafka and Redis are
:class:`~agents.gateway.rights_store.RightsStore`, run in threads so a slow
read never blocks the event loop. Errors are ``{"error": reason}``; nothing
logged names a viewer.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from agents.gateway.deps import DEPS, PRINCIPAL, json_response, public, requires, route_name
from agents.gateway.rights_openapi import RIGHTS_OPENAPI
from agents.gateway.rights_store import RightsStore
from pipeline.errors import ServiceUnavailable, ValidationFailed
from pipeline.gateway import rights as rules
from pipeline.gateway.principal import PRIVACY_SELF

__all__ = ["EXPORT_TIMEOUT_S", "PAGE_HEADERS", "RIGHTS_OPENAPI", "RIGHTS_STORE", "add_rights_routes"]

log = logging.getLogger(__name__)

RIGHTS_STORE: web.AppKey[RightsStore] = web.AppKey("rights_store", RightsStore)
_EXPORTS: web.AppKey[asyncio.Semaphore] = web.AppKey("rights_exports", asyncio.Semaphore)
_PATTERN: web.AppKey[re.Pattern[str]] = web.AppKey("rights_content_id", re.Pattern)

EXPORT_TIMEOUT_S = 60.0
"""Longest an export may read the topics before the route answers 503."""
CALL_TIMEOUT_S = 15.0
"""Longest any other rights call may take (one partition read, one acked write)."""
MAX_CONCURRENT_EXPORTS = 2
"""Exports read every topic: at most this many at once per gateway process, others get 503."""

STATIC = Path(__file__).parent / "static"
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": PAGE_CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-store",
}
_API_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def _json(data: Any, status: int = 200) -> web.Response:
    return json_response(data, status, _API_HEADERS)


Handler = Callable[[web.Request, RightsStore, str], Awaitable[web.StreamResponse]]


def _route(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Declare ``privacy:self`` (the gateway verifies the token and the rate limit first), check
    it is a viewer's, run ``handler(request, store, viewer_id)``; a timeout is a 503.

    Refusals (:class:`~pipeline.gateway.rights.Refused`) propagate to the gateway's error
    middleware, which renders ``{"error": reason}`` and counts the reason.
    """

    @requires(PRIVACY_SELF, limit="privacy")
    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        viewer = rules.check_viewer(request.get(PRINCIPAL))
        try:
            return await handler(request, request.app[RIGHTS_STORE], viewer)
        except TimeoutError:
            log.warning("rights route %s: a backend did not answer in time", route_name(request))
            raise ServiceUnavailable("rights: timed out") from None
        except ValidationFailed as exc:  # e.g. a subject that is blank once canonical
            raise rules.Refused(422, exc.reason) from None

    return wrapped


async def _call(fn: Callable[..., Any], *args: Any, timeout: float = CALL_TIMEOUT_S) -> Any:
    loop = asyncio.get_running_loop()
    return await asyncio.wait_for(loop.run_in_executor(None, fn, *args), timeout)


async def _body(request: web.Request) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > rules.MAX_BODY_BYTES:
        raise rules.Refused(413, "body_too_large")
    body = await request.content.read(rules.MAX_BODY_BYTES + 1)
    return rules.parse_body(body, request.headers.get("Content-Type", ""))


# -- consent ---------------------------------------------------------------------------------


@_route
async def get_consent(request: web.Request, store: RightsStore, viewer: str) -> web.StreamResponse:
    purposes, updated_at = await _call(store.consent, viewer)
    return _json(rules.consent_view(purposes, updated_at))


@_route
async def put_consent(request: web.Request, store: RightsStore, viewer: str) -> web.StreamResponse:
    data = await _body(request)
    rules.parse_consent_change(data, None)  # refuse a bad body before any read
    current, _ = await _call(store.consent, viewer)
    purposes = rules.parse_consent_change(data, current)
    updated_at = await _call(store.set_consent, viewer, purposes)
    return _json(rules.consent_view(purposes, updated_at))


# -- controls --------------------------------------------------------------------------------


@_route
async def get_controls(request: web.Request, store: RightsStore, viewer: str) -> web.StreamResponse:
    return _json(rules.controls_view(await _call(store.controls, viewer)))


@_route
async def put_controls(request: web.Request, store: RightsStore, viewer: str) -> web.StreamResponse:
    change = rules.parse_controls_change(await _body(request), request.app[_PATTERN])
    if change.hide:
        rules.check_hidden_bound(await _call(store.controls, viewer), change)
    controls = await _call(store.set_controls, viewer, change.personalization, change.hide, change.unhide)
    return _json(rules.controls_view(controls))


# -- export ----------------------------------------------------------------------------------


@_route
async def post_export(request: web.Request, store: RightsStore, viewer: str) -> web.StreamResponse:
    from pipeline.rights.export import render

    exports = request.app[_EXPORTS]
    if exports.locked():
        raise rules.Refused(503, "busy")
    async with exports:
        document = await _call(store.export, viewer, EXPORT_TIMEOUT_S, timeout=EXPORT_TIMEOUT_S + 10)
    headers = _API_HEADERS | {"Content-Disposition": 'attachment; filename="privrec-export.json"'}
    return web.Response(text=render(document), content_type="application/json", headers=headers)


# -- erasure ---------------------------------------------------------------------------------


@_route
async def post_erasure(request: web.Request, store: RightsStore, viewer: str) -> web.StreamResponse:
    request_id, requested_at = await _call(store.erase, viewer)
    return _json({"request_id": request_id, "requested_at": requested_at}, 202)


@_route
async def get_erasure(request: web.Request, store: RightsStore, viewer: str) -> web.StreamResponse:
    request_id = rules.parse_request_id(request.match_info["request_id"])
    found = await _call(store.erasure_status, viewer, request_id)
    if found is None:  # unknown and someone else's look the same
        raise rules.Refused(404, "not_found")
    stages, receipt = found
    return _json(rules.erasure_view(request_id, stages, receipt))


# -- the page --------------------------------------------------------------------------------

_ASSETS = {
    "/privacy": ("privacy.html", "text/html"),
    "/privacy/privacy.js": ("privacy.js", "text/javascript"),
    "/privacy/privacy.css": ("privacy.css", "text/css"),
}


@public
async def page(request: web.Request) -> web.StreamResponse:
    name, content_type = _ASSETS[request.path]
    body = (STATIC / name).read_bytes()
    return web.Response(body=body, content_type=content_type, charset="utf-8", headers=PAGE_HEADERS)


def add_rights_routes(app: web.Application) -> None:
    """Add the rights routes and the privacy centre to the gateway ``app``.

    The store is made at startup from ``app[DEPS].settings`` (over the resolved
    endpoints) and closed at cleanup, unless ``app[RIGHTS_STORE]`` was set
    before startup (tests put a fake there).
    """
    settings = app[DEPS].settings
    app[_PATTERN] = re.compile(settings.stream.content_id_pattern)

    async def lifecycle(app: web.Application) -> Any:
        from pipeline.services.connect import resolve

        app[_EXPORTS] = asyncio.Semaphore(MAX_CONCURRENT_EXPORTS)
        made = RIGHTS_STORE not in app
        if made:
            app[RIGHTS_STORE] = RightsStore(settings, resolve(settings))
        yield
        if made:
            app[RIGHTS_STORE].close()

    app.cleanup_ctx.append(lifecycle)
    r = app.router
    r.add_get("/v1/me/consent", get_consent)
    r.add_put("/v1/me/consent", put_consent)
    r.add_get("/v1/me/controls", get_controls)
    r.add_put("/v1/me/controls", put_controls)
    r.add_post("/v1/me/export", post_export)
    r.add_post("/v1/me/erasure", post_erasure)
    r.add_get("/v1/me/erasure/{request_id}", get_erasure)
    for path in _ASSETS:
        r.add_get(path, page)
