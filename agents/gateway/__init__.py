"""The gateway's aiohttp shell: app, routes, rate limits, metrics, process assembly.

Routes are built on :mod:`agents.gateway.deps` (``DEPS``, ``PRINCIPAL``,
``requires``); the pure rules live in :mod:`pipeline.gateway`.
"""

from agents.gateway.app import make_app, runner
from agents.gateway.deps import (
    DEPS,
    PRINCIPAL,
    EventSink,
    GatewayDeps,
    Policy,
    json_response,
    principal,
    public,
    requires,
)

__all__ = [
    "DEPS",
    "PRINCIPAL",
    "EventSink",
    "GatewayDeps",
    "Policy",
    "json_response",
    "make_app",
    "principal",
    "public",
    "requires",
    "runner",
]
