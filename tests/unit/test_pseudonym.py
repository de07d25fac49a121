"""Tests for pipeline.privacy.pseudonym: vectors, rotation, parsing, secrecy."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.errors import ConfigError
from pipeline.privacy.identity import canonical_form
from pipeline.privacy.pseudonym import Pseudonymizer, PseudonymKey, generate_key, parse_keys

SECRET_OLD = b"old-secret-0123456789abcdef"
SECRET_NEW = b"new-secret-0123456789abcdef"
PSEUDONYM = re.compile(r"[A-Za-z0-9_-]{1,32}\.[0-9a-f]{32}")


def expected(key_id: str, secret: bytes, user_id: str) -> str:
    """The specified pseudonym, computed with the standard library's hmac."""
    digest = hmac.new(secret, user_id.encode("utf-8"), hashlib.sha256).hexdigest()
    return f"{key_id}.{digest[:32]}"


@pytest.fixture
def rotated() -> Pseudonymizer:
    return Pseudonymizer([PseudonymKey("k1", SECRET_OLD), PseudonymKey("k2", SECRET_NEW)])


def test_known_answer_vector() -> None:
    p = Pseudonymizer([PseudonymKey("k1", b"0123456789abcdef")])
    assert p.pseudonym("alice") == expected("k1", b"0123456789abcdef", "alice")
    # A literal, so a change in the derivation cannot hide behind the helper.
    assert p.pseudonym("alice") == "k1." + hmac.new(b"0123456789abcdef", b"alice", "sha256").hexdigest()[:32]


@pytest.mark.parametrize("secret", [b"s" * 16, b"s" * 64, b"s" * 65, bytes(range(256))])
def test_secret_lengths_around_the_hmac_block_size(secret: bytes) -> None:
    p = Pseudonymizer([PseudonymKey("k", secret)])
    assert p.pseudonym("user-1") == expected("k", secret, "user-1")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=64), st.binary(min_size=16, max_size=100))
def test_matches_hmac_and_is_deterministic(user_id: str, secret: bytes) -> None:
    a = Pseudonymizer([PseudonymKey("k1", secret)])
    b = Pseudonymizer([PseudonymKey("k1", secret)], cache_size=0)
    assert a.pseudonym(user_id) == a.pseudonym(user_id) == b.pseudonym(user_id)
    assert a.pseudonym(user_id) == expected("k1", secret, canonical_form(user_id))
    assert PSEUDONYM.fullmatch(a.pseudonym(user_id))


# --- canonical ids ---------------------------------------------------------------

EQUIVALENT_FORMS = [
    ["alice@example.com", "Alice@Example.com", "ALICE@EXAMPLE.COM", " alice@example.com\t"],
    ["\u00a0Alice@example.com\n", "alice@EXAMPLE.com"],
    ["josé", "jose\u0301", "José", "JOSE\u0301", "  Jos\u00e9 "],
    ["straße", "STRASSE", "strasse", "Straße"],
    ["ǰ", "J\u030c", "j\u030c"],
]  # fmt: skip


@pytest.mark.parametrize("forms", EQUIVALENT_FORMS)
def test_every_equivalent_form_has_one_pseudonym(forms: list[str]) -> None:
    p = Pseudonymizer([PseudonymKey("k1", SECRET_OLD)])
    uncached = Pseudonymizer([PseudonymKey("k1", SECRET_OLD)], cache_size=0)
    assert len({p.pseudonym(f) for f in forms} | {uncached.pseudonym(f) for f in forms}) == 1


@pytest.mark.parametrize("forms", EQUIVALENT_FORMS)
def test_candidates_agree_for_every_form_under_rotation(forms: list[str], rotated: Pseudonymizer) -> None:
    lists = {tuple(rotated.candidates(f)) for f in forms}
    assert len(lists) == 1
    [names] = lists
    old_only = Pseudonymizer([PseudonymKey("k1", SECRET_OLD)])
    assert {old_only.pseudonym(f) for f in forms} == {names[1]}  # made before rotation, found after
    assert names[0] == rotated.pseudonym(forms[-1])


def test_forget_drops_every_spelling_from_the_cache() -> None:
    p = Pseudonymizer([PseudonymKey("k1", SECRET_OLD)])
    p.pseudonym(" Alice@Example.com")
    p.pseudonym("jose\u0301")
    assert p.cached == 2 and p.remembers("alice@example.com") and p.remembers("JOSÉ")
    p.forget("alice@example.com")
    p.forget("JOSÉ ")
    assert p.cached == 0 and not p.remembers(" Alice@Example.com") and not p.remembers("jose\u0301")


def test_case_is_kept_when_casefold_is_off() -> None:
    p = Pseudonymizer([PseudonymKey("k1", SECRET_OLD)], casefold_user_ids=False)
    assert p.pseudonym("Alice") != p.pseudonym("alice")
    assert p.pseudonym(" Alice ") == p.pseudonym("Alice") == expected("k1", SECRET_OLD, "Alice")
    assert p.pseudonym("Jose\u0301") == p.pseudonym("José") != p.pseudonym("josé")
    assert "casefold_user_ids=False" in repr(p)


def test_different_users_and_keys_differ(rotated: Pseudonymizer) -> None:
    assert rotated.pseudonym("alice") != rotated.pseudonym("bob")
    old, new = rotated.candidates("alice")[::-1]
    assert old != new


def test_newest_key_signs_and_candidates_cover_all(rotated: Pseudonymizer) -> None:
    assert rotated.key_ids == ("k1", "k2")
    assert rotated.signing_key_id == "k2"
    assert rotated.pseudonym("alice") == expected("k2", SECRET_NEW, "alice")
    assert rotated.candidates("alice") == [
        expected("k2", SECRET_NEW, "alice"),
        expected("k1", SECRET_OLD, "alice"),
    ]


def test_old_pseudonyms_still_found_after_rotation() -> None:
    before = Pseudonymizer([PseudonymKey("k1", SECRET_OLD)]).pseudonym("alice")
    after = Pseudonymizer([PseudonymKey("k1", SECRET_OLD), PseudonymKey("k2", SECRET_NEW)])
    assert after.pseudonym("alice") != before
    assert before in after.candidates("alice")


def test_cache_is_bounded_and_transparent() -> None:
    p = Pseudonymizer([PseudonymKey("k", SECRET_OLD)], cache_size=2)
    first = [p.pseudonym(f"user-{i}") for i in range(5)]
    assert p.cached == 2 and p.remembers("user-4") and not p.remembers("user-0")
    assert [p.pseudonym(f"user-{i}") for i in range(5)] == first
    p.clear_cache()
    assert p.cached == 0


def test_lone_surrogate_does_not_crash() -> None:
    p = Pseudonymizer([PseudonymKey("k", SECRET_OLD)])
    assert PSEUDONYM.fullmatch(p.pseudonym("\ud800"))


def test_non_str_user_id_is_rejected_without_echo() -> None:
    p = Pseudonymizer([PseudonymKey("k", SECRET_OLD)])
    with pytest.raises(TypeError) as err:
        p.pseudonym(12345)  # type: ignore[arg-type]
    assert "12345" not in str(err.value)


@pytest.mark.parametrize(
    ("keys", "problem"),
    [([], "no keys"), ([PseudonymKey("k", SECRET_OLD), PseudonymKey("k", SECRET_NEW)], "duplicate")],
)
def test_pseudonymizer_rejects_bad_key_sets(keys: list[PseudonymKey], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        Pseudonymizer(keys)


# --- secrecy -------------------------------------------------------------------


def test_secret_not_in_repr_or_str(rotated: Pseudonymizer) -> None:
    key = PseudonymKey("k1", SECRET_OLD)
    for text in (repr(key), str(key), repr(rotated), str(rotated), repr([key])):
        assert SECRET_OLD.decode() not in text
        assert "old-secret" not in text
        assert SECRET_NEW.decode() not in text
    assert "k1" in repr(key)


@pytest.mark.parametrize(
    ("key_id", "secret"),
    [("bad id!", b"super-secret-value-123"), ("k", b"short-secret"), ("", b"super-secret-value-123")],
)
def test_key_validation_does_not_leak_secret(key_id: str, secret: bytes) -> None:
    with pytest.raises(ConfigError) as err:
        PseudonymKey(key_id, secret)
    assert secret.decode() not in str(err.value)
    assert err.value.setting == "pseudonym.keys"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("k1:tooshort", "tooshort"),
        ("a-bare-secret-without-any-colon-here", "a-bare-secret-without-any-colon-here"),
        ("bad id:the-secret-that-must-not-leak", "the-secret-that-must-not-leak"),
        ("k1:base64:!!!not-base64-secret!!!", "not-base64-secret"),
        ("k1:base64:c2hvcnQ=", "c2hvcnQ="),  # decodes to 6 bytes: too short
        ("k1:first-secret-0123456789\nk1:second-secret-0123456789", "secret-0123456789"),
        ("", None),
        ("# only a comment\n\n", None),
    ],
)
def test_parse_errors_never_contain_the_secret(text: str, secret: str | None) -> None:
    with pytest.raises(ConfigError) as err:
        parse_keys(text)
    assert err.value.setting == "pseudonym.keys"
    assert str(err.value).startswith("pseudonym.keys: ")
    if secret is not None:
        assert secret not in str(err.value)
        assert secret not in repr(err.value)
    assert err.value.__cause__ is None
    assert err.value.__suppress_context__ or err.value.__context__ is None


# --- parsing -------------------------------------------------------------------


def test_parse_lines_commas_comments_and_base64() -> None:
    b64 = base64.b64encode(b"\x00\x01binary-secret-bytes\xff").decode()
    text = f"""
    # rotated 2024-05, oldest first (a comment line may hold commas: k9:not-a-key)
    k1:plain-secret-0123456789, k2:base64:{b64}

    k3: spaced-secret-0123456789
    """
    keys = parse_keys(text)
    assert [k.key_id for k in keys] == ["k1", "k2", "k3"]
    assert keys[0].secret == b"plain-secret-0123456789"
    assert keys[1].secret == b"\x00\x01binary-secret-bytes\xff"
    assert keys[2].secret == b"spaced-secret-0123456789"
    assert Pseudonymizer(keys).signing_key_id == "k3"


def test_secret_may_contain_colons() -> None:
    (key,) = parse_keys("k1:a:b:c:0123456789abcdef")
    assert key.secret == b"a:b:c:0123456789abcdef"


def test_generate_key_round_trips() -> None:
    line = generate_key("dev")
    assert line.startswith("dev:base64:")
    (key,) = parse_keys(line)
    assert key.key_id == "dev"
    assert len(key.secret) == 32
    assert generate_key("dev") != line


def test_generate_key_rejects_bad_id() -> None:
    with pytest.raises(ConfigError):
        generate_key("no spaces")
