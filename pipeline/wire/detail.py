"""Turn msgspec validation messages into details that are safe to log.

msgspec messages are mostly a path plus an expectation ("Expected `int` >= 0 -
at `$.position_ms`"), but a few quote the offending input: ``Invalid enum value
'...'``, ``Invalid value '...'`` (a bad tag) and ``Object contains unknown
field `...```. Since any string a producer sends may be personal data, we keep
a message only when it matches a known value-free template and fall back to a
generic one otherwise. The path is kept only if it is made of field names and
indices, which come from our own schema.
"""

from __future__ import annotations

import re

from pipeline.wire.fields import BEFORE_EPOCH

__all__ = ["safe_detail"]

_AT = re.compile(r" - at `([^`]*)`\Z")
_SAFE_PATH = re.compile(r"\$(?:\.[A-Za-z_][A-Za-z0-9_]*|\[\d+\]|\[\.\.\.\])*\Z")
_SAFE_HEAD = re.compile(
    r"(?:Expected `[^`']+`(?:, got `[^`']+`)?"
    r"(?: of length [<>]=? \d+| [<>]=? -?\d+| that is a multiple of \d+"
    r"| matching regex '[^']*'| with a timezone component"
    r"| without a timezone component)?"
    r"|Object missing required field `[A-Za-z_][A-Za-z0-9_]*`"
    r"|Invalid RFC3339 encoded (?:datetime|date|time)"
    r"|Invalid (?:UUID|base64 encoded string|epoch timestamp)"
    r"|Input data was truncated"
    r"|JSON is malformed: [a-z ]+ \(byte \d+\)"
    r"|timestamp has no UTC offset|" + re.escape(BEFORE_EPOCH) + r")\Z"
)
_REDACT_PREFIXES = (
    "Invalid enum value",
    "Invalid value",
    "Object contains unknown field",
)


def safe_detail(message: str, prefix: str = "") -> str:
    """Return ``message`` with anything that could be a payload value removed.

    Args:
        message: ``str()`` of a ``msgspec.DecodeError``/``ValidationError``.
        prefix: path segment to insert after ``$``, e.g. ``.events[3]`` when
            an event was validated on its own but lives inside an envelope.

    Returns:
        ``"<expectation> - at `$<path>`"``, value-free by construction.
    """
    match = _AT.search(message)
    if match is not None:
        head, path = message[: match.start()], match.group(1)
        if not _SAFE_PATH.match(path):
            path = "$"
    else:
        head, path = message, "$"
    if not _SAFE_HEAD.match(head):
        head = next((p for p in _REDACT_PREFIXES if head.startswith(p)), "Invalid value")
    return f"{head} - at `${prefix}{path[1:]}`"
