"""Tests for pipeline.privacy.scrub.

The hypothesis strategies for PII tokens live here and are reused by
``test_redact``; tokens are always separated from surrounding text by spaces
(a number glued to other digits is, by design, a different number).
"""

from __future__ import annotations

import ipaddress
import string
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.privacy.scrub import PLACEHOLDERS, find_pii, scrub

SETTINGS = settings(max_examples=300, deadline=None)


def luhn_ok(number: str) -> bool:
    """Independent Luhn check (not the implementation under test)."""
    digits = [int(c) for c in number][::-1]
    odd = sum(digits[0::2])
    even = sum(sum(divmod(2 * d, 10)) for d in digits[1::2])
    return (odd + even) % 10 == 0


def _digits(min_size: int, max_size: int | None = None) -> st.SearchStrategy[str]:
    return st.text(string.digits, min_size=min_size, max_size=max_size or min_size)


@st.composite
def emails(draw: st.DrawFn) -> str:
    local_chars = string.ascii_letters + string.digits + "._+-"
    local = draw(st.text(string.ascii_letters, min_size=1, max_size=1))
    local += draw(st.text(local_chars, max_size=15))
    label = st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=10)
    labels = draw(st.lists(label, min_size=1, max_size=3))
    tld = draw(st.text(string.ascii_lowercase, min_size=2, max_size=6))
    return f"{local}@{'.'.join(labels)}.{tld}"


@st.composite
def phones(draw: st.DrawFn) -> str:
    style = draw(st.sampled_from(["intl", "paren", "dashed", "dotted", "spaced", "plain"]))
    if style == "intl":
        cc = draw(st.sampled_from("123456789")) + draw(_digits(0, 2))
        sep = draw(st.sampled_from([" ", "-", "."]))
        groups = draw(st.lists(_digits(2, 4), min_size=2, max_size=4))
        while len(cc) + sum(map(len, groups)) < 7:
            groups.append(draw(_digits(3)))
        return "+" + cc + sep + sep.join(groups)
    area, mid, last = draw(_digits(3)), draw(_digits(3)), draw(_digits(4))
    if style == "paren":
        return f"({area}) {mid}-{last}"
    if style == "dashed":
        return f"{area}-{mid}-{last}"
    if style == "dotted":
        return f"{area}.{mid}.{last}"
    if style == "spaced":
        return f"0{draw(_digits(2, 4))} {draw(_digits(6, 8))}"
    return draw(_digits(7, 12))


@st.composite
def cards(draw: st.DrawFn) -> str:
    length = draw(st.sampled_from([13, 15, 16, 19]))
    body = draw(st.sampled_from("3456")) + draw(_digits(length - 2))
    number = next(body + d for d in string.digits if luhn_ok(body + d))
    sep = draw(st.sampled_from(["", " ", "-"]))
    return sep.join(number[i : i + 4] for i in range(0, length, 4))


@st.composite
def luhn_invalid_16(draw: st.DrawFn) -> str:
    body = draw(st.sampled_from("3456")) + draw(_digits(14))
    return next(body + d for d in string.digits if not luhn_ok(body + d))


ipv4s = st.integers(0, 2**32 - 1).map(lambda n: str(ipaddress.IPv4Address(n)))
ipv6s = st.one_of(
    st.integers(0, 2**128 - 1).map(lambda n: str(ipaddress.IPv6Address(n))),
    st.integers(0, 2**128 - 1).map(lambda n: ipaddress.IPv6Address(n).exploded),
    st.integers(0, 2**64 - 1).map(lambda n: f"{ipaddress.IPv6Address((0xFE80 << 112) | n)}%eth0"),
    st.just("::1"),
)
pii_tokens = st.one_of(emails(), phones(), cards(), ipv4s, ipv6s)
filler = st.text(string.ascii_letters + "äöüßé ,;!?", max_size=20)


@st.composite
def texts_with_pii(draw: st.DrawFn) -> tuple[str, list[str]]:
    """Random text with PII tokens embedded, and the tokens."""
    tokens = draw(st.lists(pii_tokens, min_size=1, max_size=4))
    parts = [draw(filler)]
    for token in tokens:
        parts += [token, draw(filler)]
    return " ".join(parts), tokens


# --- examples ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail bob@example.org now", "mail [email] now"),
        ("alice.o'neil+tag@mail.example.co.uk.", "[email]."),
        ("call +1 (555) 123-4567 today", "call [phone] today"),
        ("+44 (0) 20 7946 0958", "[phone]"),
        ("ring 555.123.4567 or 0049-170-1234567", "ring [phone] or [phone]"),
        ("epoch 1700000000", "epoch [phone]"),
        ("pay 4111 1111 1111 1111 now", "pay [card] now"),
        ("pay 4111-1111-1111-1111", "pay [card]"),
        ("amex 378282246310005", "amex [card]"),
        ("from 192.168.0.1:8080", "from [ip]:8080"),
        ("v6 2001:db8::8a2e:370:7334 and ::1.", "v6 [ip] and [ip]."),
        ("link fe80::1%eth0, mapped ::ffff:192.0.2.1", "link [ip], mapped [ip]"),
        ("ADDR:FE80:0000:0000:0000:0202:B3FF:FE1E:8329", "ADDR:[ip]"),
        ("call 555 123 4567 4111111111111111", "call [phone] [card]"),
    ],
)
def test_scrubs(text: str, expected: str) -> None:
    assert scrub(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "star wars episode 4",
        "order 4111111111111112 failed",  # 16 digits, Luhn-invalid: an id
        "order 4111-1111-1111-1112 failed",
        "at 2024-05-01 12:30:45Z and 2024-05-01T12:30:45+02:00",
        "event 123e4567-e89b-12d3-a456-426614174000 and abcdef12-1234-1234-1234-123456789012",
        "ratio 3.14159265 version 1.2.3 time 12:30:45",
        "mac 00:1a:2b:3c:4d:5e",
        "not ip 256.1.1.1 nor 1.2.3.4.5",
        "token abc5551234567 and 5551234567abc",
        "user@localhost",
        "",
    ],
)
def test_leaves_alone(text: str) -> None:
    assert scrub(text) == text
    assert find_pii(text) == []


def test_find_pii_reports_kinds_and_spans() -> None:
    text = "a@b.de 10.0.0.1 +1 555 123 4567 4111111111111111"
    found = find_pii(text)
    assert [kind for kind, _ in found] == ["email", "ip", "phone", "card"]
    assert [text[a:b] for _, (a, b) in found] == ["a@b.de", "10.0.0.1", "+1 555 123 4567", "4111111111111111"]
    assert set(PLACEHOLDERS) == {"email", "phone", "card", "ip"}


# --- properties ----------------------------------------------------------------


@SETTINGS
@given(texts_with_pii())
def test_every_embedded_token_is_removed(case: tuple[str, list[str]]) -> None:
    text, tokens = case
    out = scrub(text)
    for token in tokens:
        assert token not in out


@SETTINGS
@given(filler, luhn_invalid_16(), filler)
def test_luhn_invalid_16_digits_survive(before: str, number: str, after: str) -> None:
    assert number in scrub(f"{before} {number} {after}")


@SETTINGS
@given(st.text(max_size=200))
def test_total_and_idempotent_on_any_text(text: str) -> None:
    once = scrub(text)
    assert scrub(once) == once
    if not find_pii(text):
        assert once == text


@pytest.mark.parametrize(
    "hostile",
    [
        "a." * 20_000 + "@",
        "a@" + "b." * 20_000,
        "1 " * 20_000 + "a",
        "1-" * 20_000,
        "(1)" * 15_000,
        "1:" * 20_000 + "x",
        ":" * 40_000,
        "1.1.1." * 7_000,
        "a1@b2.c3:4 5-6(7)+8 " * 2_000,
    ],
)
def test_no_catastrophic_backtracking(hostile: str) -> None:
    start = time.perf_counter()
    scrub(hostile)
    assert time.perf_counter() - start < 5.0  # linear: well under a second normally
