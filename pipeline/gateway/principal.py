"""Who is calling: the verified identity behind an HTTP request to the gateway.

A :class:`Principal` is made only by the token verifier (``pipeline.gateway.auth``) from a
bearer token whose signature, issuer, audience and expiry checked out; handlers read it from
``request[PRINCIPAL]`` and never take a user id from the URL or the body for themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "EVENTS_WRITE",
    "PRIVACY_SELF",
    "RECS_READ_ANY",
    "RECS_READ_SELF",
    "SCOPES",
    "SERVICE_SCOPES",
    "VIEWER_SCOPES",
    "Principal",
]

EVENTS_WRITE = "events:write"
"""A viewer's client may send that viewer's playback events."""
RECS_READ_SELF = "recs:read:self"
"""A viewer may read their own recommendations."""
PRIVACY_SELF = "privacy:self"
"""A viewer may read and change their consent and controls, export and erase their data."""
RECS_READ_ANY = "recs:read:any"
"""A service may read any viewer's recommendations."""

VIEWER_SCOPES = frozenset({EVENTS_WRITE, RECS_READ_SELF, PRIVACY_SELF})
SERVICE_SCOPES = frozenset({RECS_READ_ANY})
SCOPES = VIEWER_SCOPES | SERVICE_SCOPES


@dataclass(frozen=True, slots=True)
class Principal:
    """A verified caller. ``subject`` is the canonical viewer id for viewers, a name for services.

    The ``repr`` leaves the subject out: a principal may end up in a log line or a traceback,
    and a viewer id must not.
    """

    kind: Literal["viewer", "service"]
    subject: str
    scopes: frozenset[str]
    token_id: str | None = None

    def has(self, scope: str) -> bool:
        """Whether the token granted ``scope``."""
        return scope in self.scopes

    def __repr__(self) -> str:
        return f"Principal(kind={self.kind!r}, scopes={sorted(self.scopes)!r})"
