"""Keyed pseudonyms for user ids, with key rotation.

A pseudonym is ``"<key_id>." + hex(HMAC-SHA256(secret, utf8(user_id)))[:32]``.
A keyed hash (not a plain hash) is used so that nobody without the secret can
recompute pseudonyms from a list of known user ids; the ``key_id`` prefix says
which key made a pseudonym, so keys can be rotated: the newest key signs new
pseudonyms while lookups (consent, deletion requests) try every configured key
via :meth:`Pseudonymizer.candidates`.

Every method that takes a raw user id first brings it to its canonical form
(:mod:`pipeline.privacy.identity`: NFC, trimmed, case-folded when
``casefold_user_ids``), so every spelling of one viewer's id has one pseudonym
per key, and the cache and :meth:`Pseudonymizer.forget` work on that form.

Secrets never appear in ``repr``, ``str`` or error messages.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.errors import ConfigError
from pipeline.privacy.identity import DEFAULT_CASEFOLD_USER_IDS, canonical_form

__all__ = [
    "DEFAULT_CACHE_SIZE",
    "MIN_SECRET_BYTES",
    "PseudonymKey",
    "Pseudonymizer",
    "generate_key",
    "parse_keys",
]

SETTING = "pseudonym.keys"
"""Setting name used in every :class:`~pipeline.errors.ConfigError` raised here."""

MIN_SECRET_BYTES = 16
DEFAULT_CACHE_SIZE = 65_536
_DIGEST_HEX_CHARS = 32
_BLOCK = 64  # SHA-256 block size, for the precomputed HMAC pads
_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
_BASE64_PREFIX = "base64:"


@dataclass(frozen=True, slots=True)
class PseudonymKey:
    """One HMAC key: a public ``key_id`` and a secret of at least 16 bytes.

    Raises:
        ConfigError: the key id is malformed or the secret too short; the
            message never contains the secret.
    """

    key_id: str
    secret: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.key_id, str) or not _KEY_ID.fullmatch(self.key_id):
            raise ConfigError(SETTING, "key id must match [A-Za-z0-9_-]{1,32}")
        if not isinstance(self.secret, bytes):
            raise ConfigError(SETTING, f"key {self.key_id!r}: secret must be bytes")
        if len(self.secret) < MIN_SECRET_BYTES:
            raise ConfigError(
                SETTING,
                f"key {self.key_id!r}: secret must be at least {MIN_SECRET_BYTES} bytes",
            )

    def __repr__(self) -> str:
        return f"PseudonymKey(key_id={self.key_id!r}, secret=<{len(self.secret)} bytes masked>)"

    __str__ = __repr__


class _Signer:
    """HMAC-SHA256 with the key pads hashed once, so each call costs two copies.

    ``hmac.digest`` re-derives the pads on every call and is about twice as slow.
    """

    __slots__ = ("_inner", "_outer", "prefix")

    def __init__(self, key: PseudonymKey) -> None:
        secret = key.secret
        if len(secret) > _BLOCK:
            secret = hashlib.sha256(secret).digest()
        secret = secret.ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in secret))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in secret))
        self.prefix = key.key_id + "."

    def sign(self, data: bytes) -> str:
        inner = self._inner.copy()
        inner.update(data)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return self.prefix + outer.hexdigest()[:_DIGEST_HEX_CHARS]


def _encode(user_id: str) -> bytes:
    if not isinstance(user_id, str):
        raise TypeError(f"user_id must be str, not {type(user_id).__name__}")
    # surrogatepass: a lone surrogate from JSON must not crash the hot path.
    return user_id.encode("utf-8", "surrogatepass")


class Pseudonymizer:
    """Maps user ids to pseudonyms; the newest key signs, all keys are looked up.

    Args:
        keys: configured keys, oldest first (the order :func:`parse_keys` returns).
        cache_size: entries kept in the LRU cache of :meth:`pseudonym`; ``0``
            disables it. The cache holds (canonical) user ids in process memory only.
        casefold_user_ids: fold case when canonicalising ids
            (``pseudonym.casefold_user_ids``); changing it changes every pseudonym.

    Raises:
        ConfigError: no keys, or two keys share a key id.
    """

    __slots__ = ("_cache", "_cache_size", "_casefold", "_key_ids", "_signers")

    def __init__(
        self,
        keys: Sequence[PseudonymKey],
        *,
        cache_size: int = DEFAULT_CACHE_SIZE,
        casefold_user_ids: bool = DEFAULT_CASEFOLD_USER_IDS,
    ) -> None:
        if not keys:
            raise ConfigError(SETTING, "no keys configured")
        ids = [k.key_id for k in keys]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ConfigError(SETTING, f"duplicate key ids: {', '.join(dupes)}")
        if cache_size < 0:
            raise ValueError("cache_size must be >= 0")
        self._key_ids: tuple[str, ...] = tuple(ids)
        self._signers = tuple(_Signer(k) for k in reversed(keys))  # newest first
        self._cache: OrderedDict[str, str] = OrderedDict()
        self._cache_size = cache_size
        self._casefold = casefold_user_ids

    @property
    def casefold_user_ids(self) -> bool:
        """Whether ids are case-folded before pseudonymisation."""
        return self._casefold

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Configured key ids, oldest first."""
        return self._key_ids

    @property
    def signing_key_id(self) -> str:
        """The key id new pseudonyms carry (the newest key)."""
        return self._key_ids[-1]

    def canonical(self, user_id: str) -> str:
        """The canonical form of ``user_id`` under this configuration (``""`` when blank).

        The stream compares message keys with it; producers key by
        :func:`pipeline.privacy.identity.canonical_user_id` with the same setting.
        """
        return canonical_form(user_id, casefold=self._casefold)

    def pseudonym(self, user_id: str) -> str:
        """Pseudonym of ``user_id``'s canonical form under the newest key (LRU-cached).

        Total over strings, so a dead letter can always be pseudonymised; a
        blank id is refused where records enter (emitter, stream, CLI), not here.
        """
        # Cache keys are canonical forms, and canonicalisation is idempotent: an id
        # found as it is needs no canonicalising (the common case).
        value = self._cache.get(user_id) if isinstance(user_id, str) else None
        if value is not None:
            self._cache.move_to_end(user_id)
            return value
        return self._pseudonym(canonical_form(user_id, casefold=self._casefold))

    def _pseudonym(self, user_id: str) -> str:
        cache = self._cache
        try:
            value = cache[user_id]
        except KeyError:
            pass
        else:
            cache.move_to_end(user_id)
            return value
        value = self._signers[0].sign(_encode(user_id))
        if self._cache_size:
            cache[user_id] = value
            if len(cache) > self._cache_size:
                cache.popitem(last=False)
        return value

    def candidates(self, user_id: str) -> list[str]:
        """Pseudonyms of ``user_id``'s canonical form under every key, newest first, for lookups."""
        canonical = canonical_form(user_id, casefold=self._casefold)
        data = _encode(canonical)
        return [self._pseudonym(canonical)] + [s.sign(data) for s in self._signers[1:]]

    def forget(self, user_id: str) -> None:
        """Drop ``user_id`` (any spelling) from the cache (erasure: no raw id stays in memory here)."""
        self._cache.pop(canonical_form(user_id, casefold=self._casefold), None)

    def clear_cache(self) -> None:
        """Forget cached ids (e.g. after a deletion request)."""
        self._cache.clear()

    @property
    def cached(self) -> int:
        """How many ids the cache holds now (at most ``cache_size``)."""
        return len(self._cache)

    def remembers(self, user_id: str) -> bool:
        """Whether the cache holds ``user_id`` in any spelling: after an erasure it must not."""
        return canonical_form(user_id, casefold=self._casefold) in self._cache

    def __repr__(self) -> str:
        return (
            f"Pseudonymizer(key_ids={self._key_ids!r}, cache_size={self._cache_size}, "
            f"casefold_user_ids={self._casefold})"
        )


def parse_keys(text: str) -> list[PseudonymKey]:
    """Parse a key file or env value into keys, oldest first.

    Items are ``key_id:secret``, one per line or comma-separated; blank items
    and items starting with ``#`` are ignored. A secret is taken as UTF-8 text
    unless it starts with ``base64:``, in which case the rest is decoded (use
    that for secrets holding commas, ``#`` or whitespace).

    Raises:
        ConfigError: an item is malformed, a key id repeats, or no key is
            given. Messages name the line and key id, never the secret.
    """
    keys: list[PseudonymKey] = []
    seen: set[str] = set()
    for lineno, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith("#"):  # a comment line, commas and all
            continue
        for item in line.split(","):
            item = item.strip()
            if not item or item.startswith("#"):
                continue
            key_id, sep, raw = item.partition(":")
            key_id = key_id.strip()
            if not sep or not _KEY_ID.fullmatch(key_id):
                # The item may be a bare secret: do not echo any of it.
                raise ConfigError(
                    SETTING,
                    f"line {lineno}: expected key_id:secret with key_id matching [A-Za-z0-9_-]{{1,32}}",
                )
            if key_id in seen:
                raise ConfigError(SETTING, f"line {lineno}: duplicate key id {key_id!r}")
            secret = _decode_secret(raw.strip(), key_id, lineno)
            if len(secret) < MIN_SECRET_BYTES:
                raise ConfigError(
                    SETTING,
                    f"line {lineno}: key {key_id!r}: secret must be at least {MIN_SECRET_BYTES} bytes",
                )
            seen.add(key_id)
            keys.append(PseudonymKey(key_id, secret))
    if not keys:
        raise ConfigError(SETTING, "no keys configured")
    return keys


def _decode_secret(raw: str, key_id: str, lineno: int) -> bytes:
    if not raw.startswith(_BASE64_PREFIX):
        return raw.encode("utf-8")
    try:
        return base64.b64decode(raw[len(_BASE64_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(SETTING, f"line {lineno}: key {key_id!r}: secret is not valid base64") from None


def generate_key(key_id: str) -> str:
    """A fresh ``key_id:base64:<32 random bytes>`` line for dev setups."""
    if not _KEY_ID.fullmatch(key_id):
        raise ConfigError(SETTING, "key id must match [A-Za-z0-9_-]{1,32}")
    return f"{key_id}:{_BASE64_PREFIX}{base64.b64encode(secrets.token_bytes(32)).decode('ascii')}"
