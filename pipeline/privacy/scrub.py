"""Remove contact and payment data from free text (search queries, error messages).

:func:`scrub` replaces e-mail addresses with ``[email]``, phone numbers with
``[phone]``, Luhn-valid card numbers with ``[card]``, IPv4/IPv6 addresses
with ``[ip]``, IBANs with ``[iban]`` and MAC addresses with ``[mac]``. It is
pure and uses precompiled patterns only.

Design notes:

* Matching runs on the *folded* text (:mod:`pipeline.privacy._fold`: NFKC,
  zero-width and bidi controls removed), so ``jo\u200bhn@gmail.com``, a
  fullwidth ``＠`` or fullwidth digits are found; the replaced spans are mapped
  back and everything else of the input is returned untouched.
* Passes, in priority order, each over the text the previous passes left:
  e-mails (anchored on each ``@``, one space allowed on either side), spelled
  e-mails (``john dot doe at gmail dot com``, ``john(at)gmail(dot)com``; only
  with at least one spelled ``dot`` or a bracketed ``at``, so "look at
  netflix.com" stays), MAC addresses (``00:1a:..``, ``00-1a-..``,
  ``001a.2b3c.4d5e``), IBANs (country code, mod-97 check, at least 8 digits),
  IPv6 (only if the text has a ``:``), then number runs (only if it has a
  digit), which also yield IPv4 addresses. Text without ``@``, ``:``, a
  spelled "at" or digits is returned after cheap checks.
* Patterns start with a character class (so the regex engine skips other
  positions in C), forbid starting inside a longer token with a lookbehind,
  and consume with possessive quantifiers: matching is linear in the text
  length, with no catastrophic backtracking on hostile input.
* A number run (digit groups joined by one space, dot, dash, slash or parenthesis) is
  classified in Python: card-shaped runs (13-19 digits, only space/dash/dot
  separators) are ``[card]`` when the Luhn check passes and left alone when a
  16-19 digit run fails it (an order or account id); runs of 7-15 digits are
  ``[phone]``; longer runs are split into their longest card or phone spans.
  This errs towards scrubbing: bare 7-15 digit numbers such as epoch seconds
  count as phones. A run with a single dot is a decimal, not a phone; a run
  joined by ``/`` is a phone only with three groups or more (``555/123/4567``,
  not ``1920/1080``); two years (``1999 2024``) are not a phone.
* Dates (``2024-05-01``, ``01.05.2024``, ``5/1/24``), times and UUIDs are
  kept, so error messages stay readable and event ids survive. A number
  glued to a following letter (``5551234567abc``) is part of an identifier:
  its last group is not scrubbed.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from typing import Literal

from pipeline.privacy._fold import fold

__all__ = ["PLACEHOLDERS", "PiiKind", "find_pii", "scrub"]

PiiKind = Literal["email", "phone", "card", "ip", "iban", "mac"]

PLACEHOLDERS: dict[PiiKind, str] = {
    "email": "[email]",
    "phone": "[phone]",
    "card": "[card]",
    "ip": "[ip]",
    "iban": "[iban]",
    "mac": "[mac]",
}

_MIN_PHONE, _MAX_PHONE = 7, 15
_MIN_CARD, _MAX_CARD = 13, 19

_ATEXT = r"\w.!#$%&'*+/=?^`{|}~-"  # characters of an e-mail local part
_HEX = "[0-9A-Fa-f]"

_LOCAL_REVERSED = re.compile(rf"[{_ATEXT}]++")
_DOMAIN = re.compile(r"(?:[\w-]+\.)+[^\W\d_]{2,}")
# Loose candidates, validated by ipaddress; starting after ":" is allowed ("addr:fe80::1").
_IPV6 = re.compile(r"(?s)[0-9A-Fa-f:](?<![\w.%].)[0-9A-Fa-f:]*+(?:\.[0-9]{1,3}){0,3}(?:%[\w-]+)?")
# A run of digit groups joined by one separator: " ", ".", "-", "/", NBSP, "(" or ")".
_NUMBER = re.compile(
    r"(?s)[+(\d](?<![\w+].)(?:(?<=\()\+?\d++|(?<=\+)\d++|(?<=\d)\d*+)"
    r"(?:(?:\)?[ .\-\u00a0/]\(?|\)|\()\d++)*+\)?"
)
_UUID = re.compile(
    rf"(?s)[0-9A-Fa-f](?<![\w-].){_HEX}{{7}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}(?![\w-])"
)
_DIGIT = re.compile(r"\d")
_DIGITS = re.compile(r"\d+")
_CARD_SEPS = frozenset({" ", "-", "."})
_DATE_SEPS = frozenset({"-", ".", "/"})

# Spelled e-mails: "at"/"dot" as words or in brackets ("(at)", "[dot]").
_SPELLED_AT = re.compile(r"(?i)\s+at\s+|\s*[(\[{<]\s*at\s*[)\]}>]\s*")
_SPELLED_DOT = r"\s+dot\s+|\s*+[(\[{<]\s*+dot\s*+[)\]}>]\s*+"
_SPELLED_DOMAIN = re.compile(rf"(?i)[\w-]++(?:(?:{_SPELLED_DOT}|\.)[\w-]++)++")
_SPELLED_DOT_RE = re.compile(rf"(?i){_SPELLED_DOT}|\.")
_SPELLED_LOCAL_REVERSED = re.compile(
    r"(?i)[\w.+-]++(?:(?:\s+tod\s+|\s*+[)\]}>]\s*+tod\s*+[(\[{<]\s*+)[\w.+-]++)*+"
)
# MAC-48: six hex pairs joined by ":" or "-", or three dotted quads (Cisco); not inside a longer chain.
_MAC = re.compile(
    r"(?s)[0-9A-Fa-f](?<![\w.].)(?<![0-9A-Fa-f][:\-].)[0-9A-Fa-f]"
    r"(?:([:-])[0-9A-Fa-f]{2}(?:\1[0-9A-Fa-f]{2}){4}|[0-9A-Fa-f]{2}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4})"
    r"(?!\w|[:\-][0-9A-Fa-f]|\.[0-9A-Za-z])"
)
# IBAN candidates: country code, check digits, up to 30 more characters with optional single spaces.
_IBAN = re.compile(r"(?s)[A-Za-z](?<![\w].)[A-Za-z][0-9]{2}(?: ?[0-9A-Za-z]){11,30}+")
_IBAN_COUNTRY_CODES = (
    "AD AE AL AT AZ BA BE BG BH BI BR BY CH CR CY CZ DE DJ DK DO EE EG ES FI FK FO FR GB GE GI GL GR "
    "GT HR HU IE IL IQ IS IT JO KW KZ LB LC LI LT LU LV LY MC MD ME MK MN MR MT MU NI NL NO OM PK PL "
    "PS PT QA RO RS RU SA SC SD SE SI SK SM SO ST SV TL TN TR UA VA VG XK YE"
)
_IBAN_COUNTRIES = frozenset(_IBAN_COUNTRY_CODES.split())
_IBAN_LETTERS = {ord(c): str(v) for v, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZ", start=10)}
_MIN_IBAN, _MAX_IBAN = 15, 34
_MIN_IBAN_DIGITS = 8  # in the account part: real BBANs are mostly digits, words are not

_Span = tuple[PiiKind, int, int]


def scrub(text: str) -> str:
    """Return ``text`` with e-mails, phones, cards, IP, IBAN and MAC addresses replaced.

    >>> scrub("mail bob@example.org or call +1 (555) 123-4567 from 10.0.0.1")
    'mail [email] or call [phone] from [ip]'
    >>> scrub("john dot doe at gmail dot com, iban GB82WEST12345698765432")
    '[email], iban [iban]'
    """
    spans = _find_input(text)
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
    return [(kind, (start, end)) for kind, start, end in _find_input(text)]


def _find_input(text: str) -> list[_Span]:
    """Spans in ``text`` of what is found in its folded form."""
    folded = fold(text)
    spans = _find(folded.text)
    if folded.starts is None or not spans:
        return spans
    out: list[_Span] = []
    for kind, a, b in spans:
        start, end = folded.span(a, b)
        if out and start < out[-1][2]:  # two finds inside one input character: one span
            out[-1] = (out[-1][0], out[-1][1], max(end, out[-1][2]))
        else:
            out.append((kind, start, end))
    return out


def _find(text: str) -> list[_Span]:
    has_at = "@" in text
    has_colon = ":" in text
    has_digit = _DIGIT.search(text) is not None
    spelled = "at" in text.lower() and _SPELLED_AT.search(text) is not None
    maybe_mac = has_digit or has_colon or "-" in text or "." in text  # all-letter hex pairs: ba:ca:..
    if not (has_at or has_colon or has_digit or spelled or maybe_mac):
        return []
    spans: list[_Span] = list(_emails(text)) if has_at else []
    if spelled:
        spans = _merge(spans, [s for a, b in _gaps(spans, len(text)) for s in _spelled_emails(text, a, b)])
    if maybe_mac:
        spans = _merge(spans, [s for a, b in _gaps(spans, len(text)) for s in _macs(text, a, b)])
    if has_digit:
        spans = _merge(spans, [s for a, b in _gaps(spans, len(text)) for s in _ibans(text, a, b)])
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
        after = at + 2 if text[at + 1 : at + 2] == " " else at + 1  # "j.doe @ gmail.com"
        before = at - 1 if at > last_end and text[at - 1] == " " else at
        domain = _DOMAIN.match(text, after)
        if domain and before > last_end:
            reversed_text = reversed_text or text[::-1]
            local = _LOCAL_REVERSED.match(reversed_text, len(text) - before, len(text) - last_end)
            if local:
                start = len(text) - local.end()
                yield "email", start, domain.end()
                last_end = domain.end()
        at = text.find("@", max(at + 1, last_end))


def _spelled_emails(text: str, pos: int, endpos: int) -> Iterator[_Span]:
    """``john dot doe at gmail dot com``: from each spelled "at", the domain forwards, the local backwards."""
    reversed_text = text[::-1]
    last_end = pos
    for at in _SPELLED_AT.finditer(text, pos, endpos):
        if at.start() < last_end:
            continue
        domain = _SPELLED_DOMAIN.match(text, at.end(), endpos)
        if not domain:
            continue
        end = _domain_end(
            text, domain.start(), domain.end(), bracketed="(" in at.group() or "[" in at.group()
        )
        if end is None:
            continue
        local = _SPELLED_LOCAL_REVERSED.match(reversed_text, len(text) - at.start(), len(text) - last_end)
        if not local:
            continue
        start = len(text) - local.end()
        yield "email", start, end
        last_end = end


def _domain_end(text: str, start: int, end: int, *, bracketed: bool) -> int | None:
    """End of a spelled domain: labels up to the last alphabetic top-level one, with a spelled dot."""
    seps = list(_SPELLED_DOT_RE.finditer(text, start, end))
    while seps:
        tld = text[seps[-1].end() : end]
        if len(tld) >= 2 and tld.isalpha():
            spelled = bracketed or any(m.group() != "." for m in seps)
            return end if spelled else None
        end = seps.pop().start()
    return None


def _macs(text: str, pos: int, endpos: int) -> Iterator[_Span]:
    if (
        text.find(":", pos, endpos) == -1
        and text.find("-", pos, endpos) == -1
        and text.find(".", pos, endpos) == -1
    ):
        return
    for m in _MAC.finditer(text, pos, endpos):
        yield "mac", m.start(), m.end()


def _ibans(text: str, pos: int, endpos: int) -> Iterator[_Span]:
    """IBANs, compact or in groups: the longest candidate ending at a word boundary that checks out."""
    m = _IBAN.search(text, pos, endpos)
    while m:
        start, candidate = m.start(), m.group()
        end = _iban_end(text, start, candidate) if candidate[:2].upper() in _IBAN_COUNTRIES else None
        if end is not None:
            yield "iban", start, end
        # A candidate runs on into the next words: look for the next one inside it too.
        m = _IBAN.search(text, end if end is not None else start + 2, endpos)


def _iban_end(text: str, start: int, candidate: str) -> int | None:
    for cut in range(len(candidate), 3, -1):
        if candidate[cut - 1] == " ":
            continue
        nxt = text[start + cut : start + cut + 1]
        if nxt.isalnum() or nxt == "_":
            continue  # not a word boundary
        compact = candidate[:cut].replace(" ", "").upper()
        if len(compact) < _MIN_IBAN:
            return None
        if len(compact) <= _MAX_IBAN and _iban_ok(compact):
            return start + cut
    return None


def _iban_ok(compact: str) -> bool:
    """ISO 13616: enough digits in the account part and the mod-97 check."""
    if sum(c.isdigit() for c in compact[4:]) < _MIN_IBAN_DIGITS:
        return False
    return int((compact[4:] + compact[:4]).translate(_IBAN_LETTERS)) % 97 == 1


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
    """3 if groups ``i..i+2`` are a date (kept), else 0.

    ISO ``2024-05-01`` (also with ``.`` or ``/``), and day/month first
    ``01.05.2024``, ``5/1/24``, ``01-05-2024`` (either order of day and month).
    """
    if i + 3 > len(groups):
        return 0
    sep = seps[i]
    if sep not in _DATE_SEPS or seps[i + 1] != sep:
        return 0
    if (i and seps[i - 1] == sep) or (i + 3 < len(groups) and seps[i + 2] == sep):
        return 0
    (a0, a1), (b0, b1), (c0, c1) = groups[i : i + 3]
    first, second, third = int(text[a0:a1]), int(text[b0:b1]), int(text[c0:c1])
    if a1 - a0 == 4 and b1 - b0 <= 2 and c1 - c0 <= 2:
        return 3 if 1900 <= first < 2200 and 1 <= second <= 12 and 1 <= third <= 31 else 0
    if a1 - a0 <= 2 and b1 - b0 <= 2 and c1 - c0 in (2, 4):
        year_ok = c1 - c0 == 2 or 1900 <= third < 2200
        day_month = 1 <= min(first, second) <= 12 and max(first, second) <= 31
        return 3 if year_ok and day_month else 0
    return 0


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


def _not_a_phone(text: str, groups: list[tuple[int, int]], seps: list[str], lo: int, hi: int) -> bool:
    """A decimal (one dot), a ratio (``1920/1080``) or two years (``1999 2024``)."""
    if hi - lo != 2:
        return False
    if seps[lo] in "./":
        return True
    return all(b - a == 4 and 1900 <= int(text[a:b]) < 2100 for a, b in groups[lo:hi])


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
        if count >= _MIN_PHONE and not _not_a_phone(text, groups, seps, lo, hi):
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
