"""``/openapi.json``: the OpenAPI 3.1 description of every gateway route.

The event schemas are derived from the wire contract's structs (as
``schemas/*.json`` are), so the description cannot drift from the validator.
gw-rights' routes are described by ``RIGHTS_OPENAPI`` in
:mod:`agents.gateway.rights` and merged in by :func:`build` when that module
exists. schemathesis checks every route against this description
(tests/integration/test_gateway_schema.py).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

import msgspec
from aiohttp import web

from pipeline.gateway.principal import EVENTS_WRITE, RECS_READ_ANY, RECS_READ_SELF, SCOPES
from pipeline.settings import Settings
from pipeline.wire.inbound import PlaybackEvent

__all__ = ["OPENAPI", "build", "error_response", "rights_module"]

OPENAPI: web.AppKey[dict[str, Any]] = web.AppKey("privrec_gateway_openapi", dict)
_REF = "#/components/schemas/{name}"


def rights_module() -> ModuleType | None:
    """gw-rights' module (``RIGHTS_OPENAPI``, ``add_rights_routes``), when it exists."""
    try:
        return importlib.import_module("agents.gateway.rights")
    except ModuleNotFoundError as exc:
        if exc.name != "agents.gateway.rights":
            raise
        return None


def error_response(description: str) -> dict[str, Any]:
    """An OpenAPI response whose body is ``{"error": reason}``."""
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


_ERRORS = {
    "401": error_response("no token, or a token that failed verification"),
    "403": error_response("the token lacks the route's scope, or the origin is not allowed"),
    "429": error_response("rate limited; see Retry-After"),
    "503": error_response("Kafka or Redis did not answer"),
}


def _secured(scope: str, responses: dict[str, Any], **op: Any) -> dict[str, Any]:
    return {**op, "security": [{"bearer": [scope]}], "responses": {**responses, **_ERRORS}}


def _event_schemas() -> dict[str, Any]:
    _, components = msgspec.json.schema_components([PlaybackEvent], ref_template=_REF)
    event = components["PlaybackEvent"]
    event["required"] = [f for f in event["required"] if f not in ("schema", "user_id")]
    event["properties"]["user_id"]["description"] = (
        "Optional: the token's viewer. Naming anyone else refuses the event (other_user)."
    )
    return components


def _recs_schema() -> dict[str, Any]:
    item = {
        "type": "object",
        "required": ["content_id", "score", "because"],
        "properties": {
            "content_id": {"type": "string"},
            "score": {"type": "number"},
            "because": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
        },
    }
    return {
        "type": "object",
        "required": ["personalized", "source", "version", "items"],
        "additionalProperties": False,
        "properties": {
            "personalized": {"type": "boolean"},
            "source": {"enum": ["full", "limited", "popular", "none"]},
            "version": {"type": ["string", "null"]},
            "items": {"type": "array", "items": item},
        },
    }


def _n_param() -> dict[str, Any]:
    return {
        "name": "n",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 10},
    }


def _core_paths(settings: Settings) -> dict[str, Any]:
    gw = settings.gateway
    batch = {
        "type": "object",
        "required": ["events"],
        "properties": {
            "schema": {"enum": ["playback.batch.v1"]},
            "events": {
                "type": "array",
                "minItems": 1,
                "maxItems": gw.max_events,
                "items": {"$ref": "#/components/schemas/PlaybackEvent"},
            },
        },
    }
    body = {"schema": batch}
    recs_ok = {
        "description": "recommendations, best first, with their explanations",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Recommendations"}}},
    }
    return {
        "/v1/events": {
            "post": _secured(
                EVENTS_WRITE,
                {
                    "202": {
                        "description": "the valid events are acknowledged by Kafka; errors by index",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Accepted"}}
                        },
                    },
                    "400": error_response("not a batch (invalid JSON, wrong shape, bad gzip)"),
                    "413": error_response(
                        f"body over {gw.max_body_bytes} bytes, or over {gw.max_events} events"
                    ),
                    "415": error_response("media type other than application/json or text/plain"),
                    "422": {
                        "description": "no event was valid",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Accepted"}}
                        },
                    },
                },
                summary="Send a batch of the viewer's playback events",
                operationId="postEvents",
                requestBody={
                    "required": True,
                    "content": {"application/json": body, "text/plain": body},
                },
            )
        },
        "/v1/me/recommendations": {
            "get": _secured(
                RECS_READ_SELF,
                {"200": recs_ok, "400": error_response("n out of range")},
                summary="The viewer's recommendations",
                operationId="getMyRecommendations",
                parameters=[_n_param()],
            )
        },
        "/v1/users/{id}/recommendations": {
            "get": _secured(
                RECS_READ_ANY,
                {"200": recs_ok, "400": error_response("n out of range or an empty id")},
                summary="Any viewer's recommendations (services only)",
                operationId="getUserRecommendations",
                parameters=[
                    {
                        "name": "id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "minLength": 1, "maxLength": 128},
                    },
                    _n_param(),
                ],
            )
        },
        "/healthz": {
            "get": {
                "summary": "ok when Redis and Kafka answer",
                "operationId": "healthz",
                "security": [],
                "responses": {
                    "200": {"description": "ok", "content": {"application/json": {"schema": _status()}}},
                    "503": {
                        "description": "unavailable",
                        "content": {"application/json": {"schema": _status()}},
                    },
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics (no user labels)",
                "operationId": "metrics",
                "security": [],
                "responses": {"200": {"description": "text exposition", "content": {"text/plain": {}}}},
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This description",
                "operationId": "openapi",
                "security": [],
                "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {}}}},
            }
        },
    }


def _status() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"enum": ["ok", "unavailable"]}},
    }


def build(settings: Settings, rights: ModuleType | None = None) -> dict[str, Any]:
    """The whole description: core paths, plus ``rights.RIGHTS_OPENAPI`` when given."""
    paths = _core_paths(settings)
    components = _event_schemas()
    components["Error"] = {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string"}},
    }
    components["Accepted"] = {
        "type": "object",
        "required": ["accepted", "errors"],
        "properties": {
            "accepted": {"type": "integer", "minimum": 0},
            "error": {"type": "string"},
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["index", "reason", "path"],
                    "properties": {
                        "index": {"type": ["integer", "null"]},
                        "reason": {"type": "string"},
                        "path": {"type": "string"},
                    },
                },
            },
        },
    }
    components["Recommendations"] = _recs_schema()
    if rights is not None:
        extra = rights.RIGHTS_OPENAPI
        paths.update(extra.get("paths", extra))  # {path: item} or a {"paths": ...} fragment
        components.update(getattr(rights, "RIGHTS_COMPONENTS", {}))
    return {
        "openapi": "3.1.0",
        "info": {"title": "privrec gateway", "version": "1"},
        "servers": [{"url": settings.gateway.public_url}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "scopes: " + ", ".join(sorted(SCOPES)),
                }
            },
        },
        "security": [{"bearer": []}],
    }
