"""The HTTP edge's pure core: verified principals, token rules, request validation.

aiohttp wiring lives in ``agents/gateway``; this package never imports it.
"""

from pipeline.gateway.principal import (
    EVENTS_WRITE,
    PRIVACY_SELF,
    RECS_READ_ANY,
    RECS_READ_SELF,
    SCOPES,
    SERVICE_SCOPES,
    VIEWER_SCOPES,
    Principal,
)

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
