"""The recommendation routes: a viewer's own, and any viewer's for services.

The reply is the reader's answer *without* the pseudonym (``user``): the
pseudonym links every topic and artefact back to the viewer, so it never leaves
privrec. A caller without ``recs:read:any`` is refused on
``/v1/users/{id}/recommendations`` by the policy middleware before any lookup,
so known and unknown ids get the same 403.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from agents.gateway.deps import DEPS, json_response, principal, requires
from pipeline.errors import RequestRefused
from pipeline.gateway.principal import RECS_READ_ANY, RECS_READ_SELF
from pipeline.serving.response import RecsResponse

__all__ = ["DEFAULT_N", "MAX_N", "my_recommendations", "public_view", "user_recommendations"]

DEFAULT_N = 10
MAX_N = 100


def parse_n(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_N
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_N:
        raise RequestRefused(400, "invalid_n")
    return int(raw)


def public_view(response: RecsResponse) -> dict[str, Any]:
    """The reader's response as the gateway shows it: no pseudonym."""
    return {
        "personalized": response.personalized,
        "source": response.source,
        "version": response.version,
        "items": [
            {"content_id": r.content_id, "score": r.score, "because": list(r.because)} for r in response.items
        ],
    }


async def _answer(request: web.Request, user_id: str) -> web.Response:
    n = parse_n(request.query.get("n"))
    response = await request.app[DEPS].reader.get(user_id, n)
    return json_response(public_view(response))


@requires(RECS_READ_SELF, limit="recs")
async def my_recommendations(request: web.Request) -> web.Response:
    return await _answer(request, principal(request).subject)


@requires(RECS_READ_ANY, limit="recs")
async def user_recommendations(request: web.Request) -> web.Response:
    user_id = request.match_info["id"]
    if not user_id.strip() or len(user_id) > 128:
        raise RequestRefused(400, "invalid_user_id")
    return await _answer(request, user_id)
