"""Viewer rights over HTTP: the pure rules behind ``/v1/me/consent|controls|export|erasure``.

What a viewer may change about themselves, how a request body is judged and
what a reply shows. The aiohttp shell (``agents/gateway/rights.py``) reads the
principal, calls these functions and performs the effects (Kafka, Redis).

Rules:

* every route needs the ``privacy:self`` scope on a *viewer* token; identity is
  the token's subject, never a value from the URL or the body;
* bodies are JSON objects of bounded size with known keys only (a typo must not
  silently change nothing);
* a consent change names one or more purposes as booleans; the others keep
  their current value (absent a record: denied);
* controls: a personalisation level and titles to hide/show, each title a
  catalogue id (``stream.content_id_pattern``), at most :data:`MAX_HIDDEN`
  hidden titles in all;
* an erasure status shows stage times and the receipt without the pseudonym:
  the viewer does not need it, and a leaked token must not turn into a
  pseudonym oracle.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.errors import RequestRefused
from pipeline.gateway.principal import PRIVACY_SELF, Principal
from pipeline.privacy.consent import Purpose, Purposes
from pipeline.serving.controls import MODES, Controls
from pipeline.wire.rights import STAGES

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_HIDDEN",
    "MAX_IDS_PER_REQUEST",
    "PURPOSE_DESCRIPTIONS",
    "REQUEST_ID",
    "ControlsChange",
    "Refused",
    "check_hidden_bound",
    "check_viewer",
    "consent_view",
    "controls_view",
    "erasure_view",
    "hidden_after",
    "parse_body",
    "parse_consent_change",
    "parse_controls_change",
    "parse_request_id",
]

MAX_BODY_BYTES = 16 * 1024
"""Largest request body of a rights route (a full controls change fits with room to spare)."""
MAX_HIDDEN = 200
"""Most titles a viewer may hide (each is a field of their controls hash, read on every request)."""
MAX_IDS_PER_REQUEST = 100
"""Most titles one controls change may name (hide and unhide together)."""
REQUEST_ID = re.compile(r"[0-9a-f]{32}")
"""An erasure request id: uuid4 hex, as ``erasure.v1`` records carry it."""

PURPOSE_DESCRIPTIONS: dict[Purpose, str] = {
    Purpose.ANALYTICS: "Count what you play so we can measure and improve the service. "
    "Without it nothing you watch is processed at all.",
    Purpose.PERSONALIZATION: "Use what you watch to recommend titles to you. "
    "Needs analytics as well; without it you see the same popular titles as everyone.",
    Purpose.ADVERTISING: "Use what you watch to choose the ads you see. "
    "Your browser's Global Privacy Control turns this off whatever you choose here.",
}


class Refused(RequestRefused):
    """A rights request the gateway refuses: ``status``, the JSON ``reason``, and a ``detail`` for docs."""

    def __init__(self, status: int, reason: str, detail: str = "") -> None:
        super().__init__(status, reason)
        self.detail = detail or reason


def check_viewer(principal: Principal | None) -> str:
    """The viewer id of a principal allowed to use the rights routes.

    Raises:
        Refused: 401 ``unauthenticated`` without a principal, 403
            ``insufficient_scope`` for a service or a token without ``privacy:self``.
    """
    if principal is None:
        raise Refused(401, "unauthenticated")
    if principal.kind != "viewer" or not principal.has(PRIVACY_SELF):
        raise Refused(403, "insufficient_scope", f"needs a viewer token with {PRIVACY_SELF}")
    return principal.subject


def parse_body(body: bytes, content_type: str) -> dict[str, Any]:
    """A request body as a JSON object.

    Raises:
        Refused: 413 over :data:`MAX_BODY_BYTES`, 415 not ``application/json``,
            400 not JSON or not an object.
    """
    if len(body) > MAX_BODY_BYTES:
        raise Refused(413, "body_too_large", f"at most {MAX_BODY_BYTES} bytes")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise Refused(415, "unsupported_media_type", "send application/json")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise Refused(400, "invalid_json") from None
    if not isinstance(data, dict):
        raise Refused(400, "not_an_object")
    return data


def _only(data: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = [k for k in data if k not in allowed]
    if unknown:
        raise Refused(422, "unknown_field", f"allowed fields: {', '.join(allowed)}")


def parse_consent_change(data: Mapping[str, Any], current: Purposes | None) -> Purposes:
    """The consent after applying ``data`` (``{purpose: bool}``, one or more) to ``current``.

    Raises:
        Refused: 422 for no purpose, an unknown one, or a value that is not a boolean.
    """
    _only(data, tuple(Purpose))
    if not data:
        raise Refused(422, "no_purpose", f"name one or more of {', '.join(Purpose)}")
    if not all(isinstance(v, bool) for v in data.values()):
        raise Refused(422, "not_a_boolean", "each purpose is true or false")
    merged = (current or Purposes()).as_dict() | dict(data)
    return Purposes(**merged)


def consent_view(purposes: Purposes | None, updated_at_ms: int | None) -> dict[str, Any]:
    """What ``GET /v1/me/consent`` answers; ``purposes`` None: no record (all denied)."""
    granted = (purposes or Purposes()).as_dict()
    return {
        "purposes": {
            name.value: {"granted": granted[name], "description": PURPOSE_DESCRIPTIONS[name]}
            for name in Purpose
        },
        "recorded": purposes is not None,
        "updated_at": updated_at_ms if purposes is not None else None,
    }


@dataclass(frozen=True, slots=True)
class ControlsChange:
    """A validated controls change (``personalization`` None: keep it)."""

    personalization: str | None
    hide: tuple[str, ...]
    unhide: tuple[str, ...]


def _ids(data: Mapping[str, Any], name: str, pattern: re.Pattern[str]) -> tuple[str, ...]:
    value = data.get(name, [])
    if not isinstance(value, list):
        raise Refused(422, "not_a_list", f"{name} is a list of content ids")
    for cid in value:
        if not isinstance(cid, str) or not pattern.fullmatch(cid):
            raise Refused(422, "invalid_content_id", f"{name}: content ids match stream.content_id_pattern")
    return tuple(dict.fromkeys(value))


def parse_controls_change(data: Mapping[str, Any], content_id_pattern: re.Pattern[str]) -> ControlsChange:
    """A controls change from ``{"personalization"?, "hide"?: [...], "unhide"?: [...]}``.

    Raises:
        Refused: 422 for an unknown field or level, a bad content id, too many ids, or nothing to do.
    """
    _only(data, ("personalization", "hide", "unhide"))
    mode = data.get("personalization")
    if mode is not None and mode not in MODES:
        raise Refused(422, "invalid_personalization", f"one of {', '.join(sorted(MODES))}")
    hide, unhide = _ids(data, "hide", content_id_pattern), _ids(data, "unhide", content_id_pattern)
    if len(hide) + len(unhide) > MAX_IDS_PER_REQUEST:
        raise Refused(422, "too_many_ids", f"at most {MAX_IDS_PER_REQUEST} titles a request")
    if mode is None and not hide and not unhide:
        raise Refused(422, "nothing_to_change")
    return ControlsChange(mode, hide, unhide)


def hidden_after(current: Controls, change: ControlsChange) -> int:
    """How many titles would be hidden after ``change`` (checked against :data:`MAX_HIDDEN`)."""
    return len((set(current.hidden) | set(change.hide)) - set(change.unhide))


def check_hidden_bound(current: Controls, change: ControlsChange) -> None:
    """Raises: Refused: 422 ``too_many_hidden`` when ``change`` would exceed :data:`MAX_HIDDEN`."""
    if hidden_after(current, change) > MAX_HIDDEN:
        raise Refused(422, "too_many_hidden", f"at most {MAX_HIDDEN} hidden titles")


def controls_view(controls: Controls) -> dict[str, Any]:
    """What ``GET /v1/me/controls`` answers."""
    return {
        "personalization": controls.personalization,
        "hidden": sorted(controls.hidden),
        "max_hidden": MAX_HIDDEN,
    }


def parse_request_id(raw: str) -> str:
    """An erasure request id from the URL. Raises: Refused: 404 (a malformed id names no request)."""
    if not REQUEST_ID.fullmatch(raw):
        raise Refused(404, "not_found")
    return raw


def erasure_view(
    request_id: str, stages: Mapping[str, int], receipt: Mapping[str, Any] | None
) -> dict[str, Any]:
    """What ``GET /v1/me/erasure/{id}`` answers: each stage's finish time (or null), the receipt.

    The receipt is shown without its pseudonym (see the module docstring).
    """
    done = dict(stages)
    shown = None
    if receipt is not None:
        done = {**receipt.get("stages", {}), **done}
        shown = {k: v for k, v in receipt.items() if k not in ("pseudonym", "schema")}
    return {
        "request_id": request_id,
        "stages": {s: done.get(s) for s in STAGES},
        "receipt": shown,
        "complete": shown is not None,
    }
