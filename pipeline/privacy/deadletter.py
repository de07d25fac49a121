"""Build ``dlq.v2`` dead letters from an allow-list: what failed and where, never a value.

A record that failed validation has no trustworthy shape, so nothing of it is
copied: a dead letter carries a reason code, a fixed text for that reason, the
schema path of the failure, the NAMES of the fields present, the source
coordinates, sizes, and the keyed pseudonym of the user id when one parsed.
Any field the producer sends (a phone number, a card number, coordinates, a
``name``, ``mac``, ``idfa`` or an address) can therefore only show up as its
name, and only if that name is identifier-shaped.

The raw bytes of a dead message go elsewhere or nowhere: with
``stream.dlq_include_raw`` the caller produces them to the quarantine topic
under :attr:`DeadLetterBuilder.quarantine_key` (see :func:`quarantine_key`).

Example::

    >>> from pipeline.privacy.pseudonym import Pseudonymizer
    >>> from pipeline.wire import DlqSource
    >>> pz = Pseudonymizer({"k1": b"0" * 32})
    >>> letter = dead_letter(
    ...     reason="schema_violation",
    ...     detail="Invalid enum value 'call me on 555-0100' - at `$.event_type`",
    ...     source=DlqSource(topic="playback.raw", partition=0, offset=7),
    ...     at=0,
    ...     event={"user_id": "alice", "event_type": "call me on 555-0100", "mac": "00:11:22:33:44:55"},
    ...     pseudonymizer=pz,
    ... )
    >>> letter.detail, letter.fields
    ('field does not match the schema - at `$.event_type`', ['event_type', 'mac', 'user_id'])
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

import msgspec

from pipeline.privacy.pseudonym import Pseudonymizer
from pipeline.wire.outbound import MAX_DLQ_FIELDS, DeadLetter, DlqSource

__all__ = ["OTHER_FIELD", "REASON_TEXT", "dead_letter", "field_names", "quarantine_key", "schema_path"]

OTHER_FIELD = "other"
"""Listed in place of every field name that is not identifier-shaped."""

REASON_TEXT: dict[str, str] = {
    "oversize": "value larger than stream.max_message_bytes",
    "invalid_json": "value is not valid UTF-8 JSON",
    "unknown_schema": "missing or unsupported schema tag",
    "schema_violation": "field does not match the schema",
    "envelope_mixed_users": "envelope holds events of several users",
    "future_event_time": "event_time is later than now plus the tolerance",
    "key_mismatch": "message key is not the canonical form of the record's user_id",
    "invalid_user_id": "user_id is empty once canonicalised",
    "out_of_range": "position_ms or watched_ms exceeds duration_ms plus the tolerance",
    "invalid_content_id": "content_id does not match stream.content_id_pattern",
    "too_deep": "JSON nests deeper than the limit",
    "invalid_consent": "consent record could not be decoded",
    "invalid_control": "malformed control marker",
    "invalid_erasure": "erasure request could not be decoded",
    "internal_error": "processing raised an unexpected error",
    "invalid_interaction": "interaction record could not be decoded",
    "unfit_interaction": "interaction values do not fit the model",
    "invalid_stage": "erasure stage record could not be decoded",
    "invalid_receipt": "erasure receipt could not be decoded",
}
"""Fixed texts per reason code; any other code reads as itself with spaces."""

_REASON = re.compile(r"[a-z][a-z0-9_]{0,63}\Z")
_AT = re.compile(r" - at `([^`]*)`\Z")
_PATH = re.compile(r"\$(?:\.[A-Za-z_][A-Za-z0-9_]*|\[\d{1,6}\]|\[\.\.\.\])*\Z")
_MAX_PATH = 128
# Short, and few digits: a name like "_4111111111111111" or "p5551234567" is a value in disguise.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,31}\Z")
_MAX_NAME_DIGITS = 4
_MAX_USER_ID = 128


def schema_path(detail: str) -> str:
    """The schema path at the end of a decoder detail (``... - at `$.x[3].y```), or ``$``.

    Only paths made of identifier-shaped names and indices are kept: they come
    from our schema, never from the input.
    """
    match = _AT.search(detail)
    if match is None:
        return "$"
    path = match.group(1)
    return path if len(path) <= _MAX_PATH and _PATH.match(path) else "$"


def _name(key: object) -> str:
    if isinstance(key, str) and _NAME.match(key) and sum(c.isdigit() for c in key) <= _MAX_NAME_DIGITS:
        return key
    return OTHER_FIELD


def field_names(obj: Any) -> list[str]:
    """Sorted names of the fields of ``obj``, top level and one level down (``client.ip``).

    Names that are not identifier-shaped (at most 32 characters of letters,
    digits and ``_``, at most four digits) become :data:`OTHER_FIELD`; at most
    :data:`~pipeline.wire.outbound.MAX_DLQ_FIELDS` names are returned. Values
    are never looked at except to see whether they are objects.
    """
    if isinstance(obj, msgspec.Struct):
        obj = msgspec.to_builtins(obj)
    if not isinstance(obj, Mapping):
        return []
    names: set[str] = set()
    for key, value in obj.items():
        top = _name(key)
        names.add(top)
        if isinstance(value, Mapping) and top != OTHER_FIELD:
            for inner in value:
                child = _name(inner)
                names.add(f"{top}.{child}" if child != OTHER_FIELD else OTHER_FIELD)
        if len(names) >= 4 * MAX_DLQ_FIELDS:  # enough to fill the list; stop reading a huge object
            break
    return sorted(names)[:MAX_DLQ_FIELDS]


def _user_id(event: Any) -> str | None:
    """The user id of a parsed event, if it has a usable one (a string or an integer)."""
    value = event.get("user_id") if isinstance(event, Mapping) else getattr(event, "user_id", None)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    text = str(value)
    return text if 0 < len(text) <= _MAX_USER_ID else None


def quarantine_key() -> str:
    """A fresh random key linking a dead letter to its raw bytes in the quarantine topic."""
    return uuid.uuid4().hex


def dead_letter(
    *,
    reason: str,
    source: DlqSource,
    at: int,
    detail: str = "",
    event: Any = None,
    user_id: str | None = None,
    pseudonymizer: Pseudonymizer | None = None,
    pseudonym: str | None = None,
    value_bytes: int = 0,
    events: int | None = None,
    quarantine: str | None = None,
) -> DeadLetter:
    """The ``dlq.v2`` record of one dead message (or one dead event of an envelope).

    Args:
        reason: a reason code (``[a-z][a-z0-9_]*``; anything else becomes ``invalid``).
        source: where the record was read.
        at: epoch ms now.
        detail: the decoder's detail; only its schema path is kept (see
            :func:`schema_path`): the text is :data:`REASON_TEXT`'s.
        event: the parsed event (a dict or a struct) or ``None``; only its
            field names and user id are read.
        user_id: the user id when the caller knows it (e.g. a record key);
            otherwise the event's ``user_id`` is used. Either appears only as
            its pseudonym, and only when ``pseudonymizer`` is given.
        pseudonym: a pseudonym the record already carries (e.g. an
            interaction's ``user``); used as it is when no user id is known.
        value_bytes: size of the record value.
        events: events the value held; defaults to 1 with an event, else 0.
        quarantine: key of the raw bytes in the quarantine topic, if copied there.
    """
    if not _REASON.match(reason):
        reason = "invalid"
    path = schema_path(detail)
    text = REASON_TEXT.get(reason, reason.replace("_", " "))
    uid = user_id if user_id is not None else _user_id(event)
    if uid and pseudonymizer is not None:
        pseudonym = pseudonymizer.pseudonym(uid)
    elif not (isinstance(pseudonym, str) and 0 < len(pseudonym) <= _MAX_USER_ID):
        pseudonym = None
    return DeadLetter(
        reason=reason,
        detail=f"{text} - at `{path}`",
        path=path,
        source=source,
        at=max(0, at),
        value_bytes=max(0, value_bytes),
        events=(1 if event is not None else 0) if events is None else max(0, events),
        fields=field_names(event) if event is not None else [],
        pseudonym=pseudonym,
        quarantine=quarantine,
    )
