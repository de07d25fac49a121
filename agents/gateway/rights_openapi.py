"""OpenAPI 3.1 ``paths`` of the viewer-rights routes (merged into the gateway's ``/openapi.json``).

Schemas are inline so this dict stands alone; bounds are the ones
:mod:`pipeline.gateway.rights` enforces, so a schema-driven client (or
schemathesis) finds the same limits the server applies.
"""

from __future__ import annotations

from typing import Any

from pipeline.gateway.rights import MAX_HIDDEN, MAX_IDS_PER_REQUEST
from pipeline.privacy.consent import Purpose
from pipeline.wire.fields import CONTENT_ID_PATTERN
from pipeline.wire.rights import STAGES

__all__ = ["RIGHTS_OPENAPI", "SECURITY"]

SECURITY: list[dict[str, list[str]]] = [{"bearer": []}]  # the scope: privacy:self (see summaries)

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}},
}
_MS = {"type": "integer", "description": "epoch milliseconds"}
_CONTENT_ID = {"type": "string", "pattern": CONTENT_ID_PATTERN}

_CONSENT = {
    "type": "object",
    "required": ["purposes", "recorded", "updated_at"],
    "properties": {
        "purposes": {
            "type": "object",
            "required": [p.value for p in Purpose],
            "properties": {
                name.value: {
                    "type": "object",
                    "required": ["granted", "description"],
                    "properties": {"granted": {"type": "boolean"}, "description": {"type": "string"}},
                }
                for name in Purpose
            },
        },
        "recorded": {"type": "boolean", "description": "false: no record, every purpose denied"},
        "updated_at": {"anyOf": [_MS, {"type": "null"}]},
    },
}
_CONSENT_CHANGE = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {name.value: {"type": "boolean"} for name in Purpose},
    "description": "purposes to change; the others keep their value",
}
_CONTROLS = {
    "type": "object",
    "required": ["personalization", "hidden", "max_hidden"],
    "properties": {
        "personalization": {"enum": ["full", "limited", "off"]},
        "hidden": {"type": "array", "items": {"type": "string"}, "maxItems": MAX_HIDDEN},
        "max_hidden": {"type": "integer"},
    },
}
_CONTROLS_CHANGE = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {
        "personalization": {"enum": ["full", "limited", "off"]},
        "hide": {"type": "array", "items": _CONTENT_ID, "maxItems": MAX_IDS_PER_REQUEST},
        "unhide": {"type": "array", "items": _CONTENT_ID, "maxItems": MAX_IDS_PER_REQUEST},
    },
}
_ERASURE_ACCEPTED = {
    "type": "object",
    "required": ["request_id", "requested_at"],
    "properties": {"request_id": {"type": "string", "pattern": "^[0-9a-f]{32}$"}, "requested_at": _MS},
}
_ERASURE_STATUS = {
    "type": "object",
    "required": ["request_id", "stages", "receipt", "complete"],
    "properties": {
        "request_id": {"type": "string"},
        "stages": {
            "type": "object",
            "required": list(STAGES),
            "properties": {s: {"anyOf": [_MS, {"type": "null"}]} for s in STAGES},
        },
        "receipt": {
            "anyOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "required": ["request_id", "requested_at", "completed_at", "stages", "remains"],
                    "properties": {
                        "request_id": {"type": "string"},
                        "requested_at": _MS,
                        "completed_at": _MS,
                        "stages": {"type": "object", "additionalProperties": _MS},
                        "remains": {"type": "array", "items": {"type": "object"}},
                    },
                },
            ]
        },
        "complete": {"type": "boolean"},
    },
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    text = {
        400: "not JSON, or not an object",
        401: "no valid bearer token",
        403: "not a viewer token with privacy:self",
        404: "no such request of this viewer",
        413: "body too large",
        415: "not application/json",
        422: "a field is invalid or unknown",
        429: "rate limited",
        503: "Kafka or Redis did not answer in time",
    }
    return {str(c): _json(_ERROR, text[c]) for c in codes}


def _op(summary: str, ok: dict[str, Any], *codes: int, body: dict[str, Any] | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "tags": ["privacy"],
        "security": SECURITY,
        "responses": ok | _errors(401, 403, 429, 503, *codes),
    }
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return op


_BODY_ERRORS = (400, 413, 415, 422)

RIGHTS_OPENAPI: dict[str, Any] = {
    "/v1/me/consent": {
        "get": _op("Your consent per purpose", {"200": _json(_CONSENT, "consent in force")}),
        "put": _op(
            "Change your consent (written to the consent topic before the reply)",
            {"200": _json(_CONSENT, "the consent now in force")},
            *_BODY_ERRORS,
            body=_CONSENT_CHANGE,
        ),
    },
    "/v1/me/controls": {
        "get": _op("Your personalisation level and hidden titles", {"200": _json(_CONTROLS, "controls")}),
        "put": _op(
            "Change your personalisation level, hide or show titles",
            {"200": _json(_CONTROLS, "the controls now in force")},
            *_BODY_ERRORS,
            body=_CONTROLS_CHANGE,
        ),
    },
    "/v1/me/export": {
        "post": _op(
            "Everything privrec holds about you (export.v1), as a download",
            {"200": _json({"type": "object", "required": ["schema"]}, "the export.v1 document")},
        )
    },
    "/v1/me/erasure": {
        "post": _op(
            "Erase everything privrec holds about you",
            {"202": _json(_ERASURE_ACCEPTED, "the request is on the erasure topic")},
        )
    },
    "/v1/me/erasure/{request_id}": {
        "get": _op(
            "Where your erasure request stands, and its receipt when done",
            {"200": _json(_ERASURE_STATUS, "stages and receipt")},
            404,
        )
        | {
            "parameters": [
                {"name": "request_id", "in": "path", "required": True, "schema": {"type": "string"}}
            ]
        }
    },
    "/privacy": {
        "get": {
            "summary": "The privacy centre page (no token: its script sends the one in the URL fragment)",
            "tags": ["privacy"],
            "security": [],
            "responses": {"200": {"description": "HTML", "content": {"text/html": {}}}},
        }
    },
}
