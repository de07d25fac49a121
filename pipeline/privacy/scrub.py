"""Remove contact and payment data from free text (search queries, error messages).

:func:`scrub` replaces e-mail addresses with ``[email]``, phone numbers with
``[phone]``, Luhn-valid card numbers with ``[card]`` and IPv4/IPv6 addresses
with ``[ip]``. It is pure and uses precompiled patterns only.

Design notes:

* Three passes, in priority order, each over the text the previous passes left:
  e-mails (anchored on each ``@``), IPv6 (only if the text has a ``:``), then
  number runs (only if it has a digit), which also yield IPv4 addresses. Text
  without ``@``, ``:`` or digits is returned after one cheap check.
* Patterns start with a character class (so the regex engine skips other
  positions in C), forbid starting inside a longer token with a lookbehind,
  and consume with possessive quantifiers: matching is linear in the text
  length, with no catastrophic backtracking on hostile input.
* A number run (digit groups joined by one space, dot, dash or parenthesis) is
  classified in Python: card-shaped runs (13-19 digits, only space/dash
  separators) are ``[card]`` when the Luhn check passes and left alone when a
  16-19 digit run fails it (an order or account id); runs of 7-15 digits are
  ``[phone]``; longer runs are split into their longest card or phone spans.
  This errs towards scrubbing: bare 7-15 digit numbers such as epoch seconds
  count as phones. A run with a single dot is a decimal, not a phone.
* ISO dates/times and UUIDs are kept, so error messages stay readable and
  event ids survive. A number glued to a following letter (``5551234567abc``)
  is part of an identifier: its last group is not scrubbed.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from typing import Literal

__all__ = ["PLACEHOLDERS", "PiiKind", "find_pii", "scrub"]

PiiKind = Literal["email", "phone", "card", "ip"]

PLACEHOLDERS: dict[PiiKind, str] = {
    "email": "[email]",
    "phone": "[phone]",
    "card": "[card]",
    "ip": "[ip]",
}

_MIN_PHONE, _MAX_PHONE = 7, 15
_MIN_CARD, _MAX_CARD = 13, 19

_ATEXT = r"\w.!#$%&'*+/=?^`{|}~-"  # characters of an e-mail local part
_HEX = "[0-9A-Fa-f]"

_LOCAL_REVERSED = re.compile(rf"[{_ATEXT}]++")
_DOMAIN = re.compile(r"(?:[\w-]+\.)+[^\W\d_]{2,}")
# Loose candidates, validated by ipaddress; starting after ":" is allowed ("addr:fe80::1").
_IPV6 = re.compile(r"(?s)[0-9A-Fa-f:](?<![\w.%].)[0-9A-Fa-f:]*+(?:\.[0-9]{1,3}){0,3}(?:%[\w-]+)?")
# A run of digit groups joined by one separator: " ", ".", "-", NBSP, "(" or ")".
_NUMBER = re.compile(
    r"(?s)[+(\d](?<![\w+].)(?:(?<=\()\+?\d++|(?<=\+)\d++|(?<=\d)\d*+)"
    r"(?:(?:\)?[ .\-\u00a0]\(?|\)|\()\d++)*+\)?"
)
_UUID = re.compile(
    rf"(?s)[0-9A-Fa-f](?<![\w-].){_HEX}{{7}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}(?![\w-])"
)
_DIGIT = re.compile(r"\d")
_DIGITS = re.compile(r"\d+")
_CARD_SEPS = frozenset({" ", "-"})

_Span = tuple[PiiKind, int, int]


def scrub(text: str) -> str:
    """Return ``text`` with e-mails, phones, cards and IP addresses replaced.

    >>> scrub("mail bob@example.org or call +1 (555) 123-4567 from 10.0.0.1")
    'mail [email] or call [phone] from [ip]'
    """
    spans = _find(text)
    if not spans:
        return text
    parts: list[str] = []
    last = 0
    for kind, start, end in spans:
        parts.append(text[last:start])
        parts.append(PLACEHOLDERS[kind])
        last = end
    parts.append(text[last:])
    return "".join(parts)


def find_pii(text: str) -> list[tuple[PiiKind, tuple[int, int]]]:
    """Kinds and ``(start, end)`` spans of what :func:`scrub` replaces, in order."""
    return [(kind, (start, end)) for kind, start, end in _find(text)]


def _find(text: str) -> list[_Span]:
    has_at = "@" in text
    has_colon = ":" in text
    has_digit = _DIGIT.search(text) is not None
    if not (has_at or has_colon or has_digit):
        return []
    spans: list[_Span] = list(_emails(text)) if has_at else []
    if has_colon:
        spans = _merge(spans, [s for a, b in _gaps(spans, len(text)) for s in _ipv6(text, a, b)])
    if has_digit:
        spans = _merge(spans, [s for a, b in _gaps(spans, len(text)) for s in _numeric(text, a, b)])
    return spans


def _gaps(spans: list[_Span], length: int) -> Iterator[tuple[int, int]]:
    """The ranges between already found spans."""
    last = 0
    for _, start, end in spans:
        if start > last:
            yield last, start
        last = end
    if last < length:
        yield last, length


def _merge(a: list[_Span], b: list[_Span]) -> list[_Span]:
    return sorted(a + b, key=lambda s: s[1]) if a and b else a or b


def _emails(text: str) -> Iterator[_Span]:
    """E-mails, found from each ``@``: the local part backwards, the domain forwards."""
    reversed_text = ""
    at = text.find("@")
    last_end = 0
    while at != -1:
        domain = _DOMAIN.match(text, at + 1)
        if domain and at > last_end:
            reversed_text = reversed_text or text[::-1]
            local = _LOCAL_REVERSED.match(reversed_text, len(text) - at, len(text) - last_end)
            if local:
                start = at - local.end() + local.start()
                yield "email", start, domain.end()
                last_end = domain.end()
        at = text.find("@", max(at + 1, last_end))


def _ipv6(text: str, pos: int, endpos: int) -> Iterator[_Span]:
    for m in _IPV6.finditer(text, pos, endpos):
        candidate, end = m.group(), m.end()
        if _ipv6_glued(text, end):
            continue
        colons = candidate.count(":")
        if colons < 2 or ("::" not in candidate and colons not in (6, 7)):
            continue  # times like 12:30:45 and MAC addresses: skip the costly parse
        try:
            ipaddress.IPv6Address(candidate)
        except ValueError:
            continue
        yield "ip", m.start(), end


def _ipv6_glued(text: str, end: int) -> bool:
    """Whether the candidate ending at ``end`` continues into a longer token."""
    nxt = text[end : end + 1]
    if nxt == ".":
        return text[end + 1 : end + 2].isdigit()  # a sentence dot is fine
    return nxt != "" and (nxt in ":%_" or nxt.isalnum())


def _numeric(text: str, pos: int, endpos: int) -> Iterator[_Span]:
    """Number runs: IPv4, cards and phones; dates and UUIDs are kept."""
    ranges = [(pos, endpos)]
    if text.find("-", pos, endpos) != -1:
        uuids: list[_Span] = [("ip", m.start(), m.end()) for m in _UUID.finditer(text, pos, endpos)]
        if uuids:
            ranges = [(max(a, pos), b) for a, b in _gaps(uuids, endpos)]
    for a, b in ranges:
        for m in _NUMBER.finditer(text, a, b):
            if m.end() - m.start() >= _MIN_PHONE:
                yield from _classify_run(text, m.start(), m.end())


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _classify_run(text: str, start: int, end: int) -> Iterator[_Span]:
    """Split a number run into digit groups; yield its IPv4, card and phone spans."""
    groups = [(m.start(), m.end()) for m in _DIGITS.finditer(text, start, end)]
    if end < len(text) and (text[end].isalnum() or text[end] == "_"):
        groups.pop()  # glued to a word: the last group belongs to an identifier
        if not groups:
            return
        end = groups[-1][1]
    seps = [text[groups[k][1] : groups[k + 1][0]] for k in range(len(groups) - 1)]
    n = len(groups)
    plain = 0  # first group not yet classified
    i = 0
    while i < n:
        size = _date_at(text, groups, seps, i) or _ipv4_at(text, groups, seps, i)
        if not size:
            i += 1
            continue
        if plain < i:
            yield from _classify_groups(text, groups, seps, plain, i, start, end)
        if size == 4:
            yield "ip", groups[i][0], groups[i + 3][1]
        plain = i = i + size
    if plain < n:
        yield from _classify_groups(text, groups, seps, plain, n, start, end)


def _date_at(text: str, groups: list[tuple[int, int]], seps: list[str], i: int) -> int:
    """3 if groups ``i..i+2`` are an ISO date such as 2024-05-01 (kept), else 0."""
    if i + 3 > len(groups) or (i and seps[i - 1] == "-") or (i + 3 < len(groups) and seps[i + 2] == "-"):
        return 0
    if seps[i] != "-" or seps[i + 1] != "-":
        return 0
    (ya, yb), (ma, mb), (da, db) = groups[i : i + 3]
    if yb - ya != 4 or mb - ma != 2 or db - da != 2:
        return 0
    year, month, day = int(text[ya:yb]), int(text[ma:mb]), int(text[da:db])
    return 3 if 1900 <= year < 2200 and 1 <= month <= 12 and 1 <= day <= 31 else 0


def _ipv4_at(text: str, groups: list[tuple[int, int]], seps: list[str], i: int) -> int:
    """4 if groups ``i..i+3`` are a dotted IPv4 address, else 0."""
    if i + 4 > len(groups) or (i and seps[i - 1] == ".") or (i + 4 < len(groups) and seps[i + 3] == "."):
        return 0
    if any(seps[k] != "." for k in range(i, i + 3)):
        return 0
    for a, b in groups[i : i + 4]:
        if b - a > 3 or int(text[a:b]) > 255:
            return 0
    return 4


def _classify_groups(
    text: str,
    groups: list[tuple[int, int]],
    seps: list[str],
    lo: int,
    hi: int,
    start: int,
    end: int,
) -> Iterator[_Span]:
    """Card and phone spans among groups ``lo..hi-1`` of a run ``[start, end)``.

    The whole sub-run is classified first; only a sub-run too long for a phone
    or card is split into its longest card (preferred) or phone spans.
    """

    def span(i: int, j: int) -> tuple[int, int]:
        return (start if i == 0 else groups[i][0], end if j == len(groups) - 1 else groups[j][1])

    plus = lo == 0 and "+" in text[start : groups[0][0]]
    digits = "".join(text[a:b] for a, b in groups[lo:hi])
    count = len(digits)
    card_seps = not plus and all(s in _CARD_SEPS for s in seps[lo : hi - 1])
    if card_seps and _MIN_CARD <= count <= _MAX_CARD:
        if _luhn(digits):
            yield ("card", *span(lo, hi - 1))
            return
        if count > _MAX_PHONE:
            return  # a 16-19 digit id that fails Luhn: no card, no phone
    if count <= _MAX_PHONE:
        if count >= _MIN_PHONE and not (hi - lo == 2 and seps[lo] == "."):  # one dot: a decimal
            yield ("phone", *span(lo, hi - 1))
        return
    i = lo
    while i < hi:
        best: tuple[PiiKind, int] | None = None
        digits = ""
        card_seps = not (plus and i == 0)
        for j in range(i, hi):
            if j > i:
                card_seps = card_seps and seps[j - 1] in _CARD_SEPS
            digits += text[groups[j][0] : groups[j][1]]
            count = len(digits)
            if count > _MAX_CARD:
                break
            if card_seps and count >= _MIN_CARD and _luhn(digits):
                best = ("card", j)
            elif _MIN_PHONE <= count <= _MAX_PHONE and (best is None or best[0] == "phone"):
                best = ("phone", j)
        if best is None:
            i += 1
            continue
        kind, j = best
        yield (kind, *span(i, j))
        i = j + 1
