"""Text as the scrubber matches it: NFKC, without invisible characters, mapped back to the input.

Disguises such as ``jo\\u200bhn@gmail.com`` (a zero-width space inside an
address), a fullwidth ``＠`` or fullwidth digits defeat patterns written for
plain ASCII. :func:`fold` removes the invisible format characters and applies
Unicode NFKC, and keeps for every character of the result the span of input
characters it came from, so the scrubber can replace exactly the input span of
what it found and leave every other character of the input as it was.

NFKC is applied per cluster (a character and the combining marks after it),
which equals whole-string NFKC except for rare compositions across clusters
(conjoining Hangul jamo); that is enough to match contact data.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["INVISIBLE", "Folded", "fold"]

INVISIBLE = frozenset(
    "\u00ad\u034f\u180e"  # soft hyphen, combining grapheme joiner, Mongolian vowel separator
    "\u200b\u200c\u200d\u200e\u200f"  # zero-width space/non-joiner/joiner, LRM, RLM
    "\u202a\u202b\u202c\u202d\u202e"  # bidi embeddings and overrides
    "\u2060\u2061\u2062\u2063\u2064"  # word joiner, invisible operators
    "\u2066\u2067\u2068\u2069"  # bidi isolates
    "\ufeff"  # zero-width no-break space (BOM)
)
"""Format characters that change nothing a reader sees; removed before matching."""

_INVISIBLE_RE = re.compile("[" + "".join(sorted(INVISIBLE)) + "]")


class Folded:
    """The folded text and, when it differs from the input, where each character came from.

    ``starts[i]``/``ends[i]`` are the input span of folded character ``i``;
    both are None when the folded text is the input itself.
    """

    __slots__ = ("ends", "starts", "text")

    def __init__(self, text: str, starts: list[int] | None = None, ends: list[int] | None = None) -> None:
        self.text = text
        self.starts = starts
        self.ends = ends

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The input span of folded characters ``[start, end)`` (``end > start``)."""
        if self.starts is None or self.ends is None:
            return start, end
        return self.starts[start], self.ends[end - 1]


def fold(text: str) -> Folded:
    """Remove :data:`INVISIBLE` characters and apply NFKC, keeping the map to ``text``.

    ASCII text, and text already in NFKC without invisible characters, is
    returned as is after two C-speed checks; only other text pays for the
    per-character walk.
    """
    if text.isascii() or (unicodedata.is_normalized("NFKC", text) and not _INVISIBLE_RE.search(text)):
        return Folded(text)
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    combining = unicodedata.combining
    normalize = unicodedata.normalize
    i, n = 0, len(text)
    while i < n:
        if text[i] in INVISIBLE:
            i += 1
            continue
        j = i + 1
        while j < n and (text[j] in INVISIBLE or combining(text[j])):
            j += 1
        cluster = text[i:j]
        if j - i > 1:
            cluster = "".join(c for c in cluster if c not in INVISIBLE)
        folded = cluster if cluster.isascii() else normalize("NFKC", cluster)
        out.append(folded)
        starts.extend([i] * len(folded))
        ends.extend([j] * len(folded))
        i = j
    return Folded("".join(out), starts, ends)
