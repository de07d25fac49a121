"""Measure JSON nesting without parsing, so hostile depth is refused before a parser recurses.

msgspec, like every recursive-descent parser, recurses once per ``[``/``{``
and raises ``RecursionError`` near Python's recursion limit: a 2.4 kB value
nested 1,000 deep is enough. :func:`too_deep` answers from the bytes alone
with C-speed ``bytes``/``re`` operations, so it can run before the generic
parse, whose output (dicts of dicts) would otherwise carry the depth on to
redaction, the dead-letter encoder and every consumer of the DLQ.

Brackets inside strings do not count: escapes are removed first (a run of
backslashes pairs up left to right, exactly as JSON reads it), then strings,
then every character but brackets. What is left is reduced by deleting
innermost ``()`` pairs, one nesting level per pass, for at most ``limit``
passes.
"""

from __future__ import annotations

import re

__all__ = ["MAX_JSON_DEPTH", "too_deep"]

MAX_JSON_DEPTH = 32
"""Deepest nesting of arrays/objects accepted in any value privrec parses.

Our deepest record (an envelope, its events, an event, its client) nests 4
levels; 32 leaves room for additive nested fields and stays far below the
~1,000 levels where the parser's recursion guard fires.
"""

_BRACKETS = bytes.maketrans(b"[{]}", b"(())")
_NOT_STRUCTURE = bytes(c for c in range(256) if c not in b'[]{}"')
_STRING = re.compile(rb'"[^"]*"')


def too_deep(value: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``value`` nests arrays/objects deeper than ``limit``.

    Exact for well-formed JSON. For malformed JSON it may pass a value whose
    valid prefix nests up to ``2 * limit`` deep (the parser stops at the
    first error, so that prefix is all it recurses into), never more.

    Cost: three linear passes in C over the value plus work on its
    brackets; about a quarter of what decoding a 500-event envelope costs.
    """
    if b"\\" in value:
        value = value.replace(b"\\\\", b"").replace(b'\\"', b"")
    shape = value.translate(_BRACKETS, _NOT_STRUCTURE)
    if shape.count(b"(") <= limit:
        return False
    # Two adjacent quotes are consecutive delimiters: dropping them keeps the
    # parity of the rest and removes every bracket-free string in one pass.
    shape = _STRING.sub(b"", shape.replace(b'""', b""))
    for _ in range(limit):
        reduced = shape.replace(b"()", b"")
        if len(reduced) == len(shape):
            break
        shape = reduced
    else:
        if b"()" in shape:
            return True
    # Left: unmatched brackets only, ")))(((" at most; each "(" is a level still open.
    return shape.count(b"(") > limit
