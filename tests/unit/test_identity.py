"""Tests for pipeline.privacy.identity: one canonical form per viewer id."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.errors import ValidationFailed
from pipeline.privacy.identity import (
    DEFAULT_CASEFOLD_USER_IDS,
    INVALID_USER_ID,
    canonical_form,
    canonical_user_id,
    user_key,
)
from pipeline.settings import PseudonymSettings

SETTINGS = settings(max_examples=500, deadline=None)


@pytest.mark.parametrize(
    ("raw", "casefold", "expected"),
    [
        ("alice@example.com", True, "alice@example.com"),
        ("Alice@Example.com", True, "alice@example.com"),
        (" \tAlice@Example.com\n", True, "alice@example.com"),
        ("Alice@Example.com", False, "Alice@Example.com"),
        (" Alice ", False, "Alice"),
        ("Jose\u0301", False, "Jos\u00e9"),  # NFD -> NFC
        ("JOSE\u0301", True, "jos\u00e9"),
        ("\u3000straße\u00a0", True, "strasse"),  # ideographic space and NBSP are whitespace
        ("user-0001", True, "user-0001"),
        ("a b", True, "a b"),  # inner whitespace is part of the id
    ],
)
def test_canonical_form(raw: str, casefold: bool, expected: str) -> None:
    assert canonical_form(raw, casefold=casefold) == expected


@pytest.mark.parametrize("blank", ["", " ", "\t\n", "\u00a0\u3000"])
def test_blank_id_is_invalid_where_records_enter(blank: str) -> None:
    assert canonical_form(blank) == ""
    for fn in (canonical_user_id, user_key):
        with pytest.raises(ValidationFailed) as err:
            fn(blank)
        assert err.value.reason == INVALID_USER_ID


def test_user_key_is_utf8_of_the_canonical_form() -> None:
    assert user_key(" Alice@Example.com ") == b"alice@example.com"
    assert user_key("Jose\u0301", casefold=False) == "Jos\u00e9".encode()
    with pytest.raises(ValidationFailed, match=INVALID_USER_ID) as err:
        user_key("ab\ud800")
    assert "ab" not in err.value.detail


def test_non_str_is_rejected_without_echo() -> None:
    with pytest.raises(TypeError) as err:
        canonical_form(12345)  # type: ignore[arg-type]
    assert "12345" not in str(err.value)


def test_setting_default_is_the_library_default() -> None:
    assert PseudonymSettings().casefold_user_ids is DEFAULT_CASEFOLD_USER_IDS is True


ids = st.one_of(
    st.text(max_size=40),
    st.text(st.sampled_from("aAeEıİßẞǰJ\u030c\u0301\u0327 \t\u00a0\u3000ﬁΣσς"), max_size=12),
)


@SETTINGS
@given(ids, st.booleans())
def test_canonicalisation_is_idempotent(raw: str, casefold: bool) -> None:
    once = canonical_form(raw, casefold=casefold)
    assert canonical_form(once, casefold=casefold) == once
    assert once == once.strip()
    assert unicodedata.is_normalized("NFC", once)


@SETTINGS
@given(ids, st.booleans())
def test_spellings_share_one_form(raw: str, casefold: bool) -> None:
    canonical = canonical_form(raw, casefold=casefold)
    variants = [unicodedata.normalize("NFD", raw), unicodedata.normalize("NFC", raw), f" {raw}\t\u00a0"]
    if casefold and raw.isascii():
        variants += [raw.swapcase(), raw.upper()]
    for variant in variants:
        assert canonical_form(variant, casefold=casefold) == canonical
