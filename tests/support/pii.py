"""Hypothesis strategies for PII tokens, and independent checks they are built with.

Shared by the scrubber's and the redaction's tests. Each token is valid by
its own rules (Luhn for cards, ISO 13616 for IBANs), computed here without the
code under test.
"""

from __future__ import annotations

import ipaddress
import string

from hypothesis import strategies as st

__all__ = [
    "IBAN_EXAMPLES",
    "cards",
    "emails",
    "filler",
    "iban_check_digits",
    "ibans",
    "ipv4s",
    "ipv6s",
    "luhn_invalid_16",
    "luhn_ok",
    "macs",
    "phones",
    "pii_tokens",
]


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
IBAN_EXAMPLES = ["DE89 3704 0044 0532 0130 00", "GB82WEST12345698765432", "FR1420041010050500013M02606"]
_IBAN_SHAPES = {
    "DE": "n" * 18,
    "GB": "aaaa" + "n" * 14,
    "NL": "aaaa" + "n" * 10,
    "FR": "n" * 23,
    "ES": "n" * 20,
}


def iban_check_digits(country: str, bban: str) -> str:
    """Independent ISO 13616 check digits (not the implementation under test)."""
    number = "".join(str(int(c, 36)) for c in bban + country + "00")
    return f"{98 - int(number) % 97:02d}"


@st.composite
def ibans(draw: st.DrawFn) -> str:
    country = draw(st.sampled_from(sorted(_IBAN_SHAPES)))
    shape = _IBAN_SHAPES[country]
    bban = "".join(
        draw(st.sampled_from(string.ascii_uppercase if k == "a" else string.digits)) for k in shape
    )
    iban = country + iban_check_digits(country, bban) + bban
    if draw(st.booleans()):
        iban = " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
    return iban.lower() if draw(st.booleans()) else iban


@st.composite
def macs(draw: st.DrawFn) -> str:
    octets = draw(st.lists(st.integers(0, 255), min_size=6, max_size=6))
    hexes = "".join(f"{o:02x}" for o in octets)
    if draw(st.booleans()):
        hexes = hexes.upper()
    style = draw(st.sampled_from([":", "-", "."]))
    if style == ".":
        return ".".join(hexes[i : i + 4] for i in range(0, 12, 4))
    return style.join(hexes[i : i + 2] for i in range(0, 12, 2))


pii_tokens = st.one_of(emails(), phones(), cards(), ipv4s, ipv6s, ibans(), macs())
filler = st.text(string.ascii_letters + "äöüßé ,;!?", max_size=20)
