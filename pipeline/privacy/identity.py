"""The one canonical form of a user id, used for pseudonyms and Kafka keys alike.

``Alice@Example.com``, ``alice@example.com``, `` alice@example.com `` and a
"José" typed with a decomposed accent name one viewer. If they gave different
pseudonyms, erasure and export of one form would miss the data held under the
other, and if they gave different Kafka keys, one viewer's consent, events and
erasure would land on different partitions (so on different workers). So every
producer keys by :func:`canonical_user_id` and every pseudonym is computed from
it (:class:`~pipeline.privacy.pseudonym.Pseudonymizer` applies it itself).

The canonical form: Unicode NFC, whitespace trimmed at both ends, and, when
``pseudonym.casefold_user_ids`` is on (the default), :meth:`str.casefold`
followed by NFC again (case folding can leave a string unnormalised).
"""

from __future__ import annotations

import unicodedata

from pipeline.errors import ValidationFailed

__all__ = [
    "DEFAULT_CASEFOLD_USER_IDS",
    "INVALID_USER_ID",
    "canonical_form",
    "canonical_user_id",
    "user_key",
]

DEFAULT_CASEFOLD_USER_IDS = True
"""The default of ``pseudonym.casefold_user_ids`` (see README: Canonical user ids)."""

INVALID_USER_ID = "invalid_user_id"
"""The :class:`~pipeline.errors.ValidationFailed` reason (and dead-letter reason) of a blank id."""


def canonical_form(user_id: str, *, casefold: bool = DEFAULT_CASEFOLD_USER_IDS) -> str:
    """The canonical form of ``user_id``; total: a blank id gives ``""``.

    For the pseudonymiser, which must pseudonymise whatever a dead letter
    carried. Producers and validators use :func:`canonical_user_id`, which
    refuses an empty result.

    >>> canonical_form("  Jose\\u0301@Example.COM ")
    'josé@example.com'
    """
    if not isinstance(user_id, str):
        raise TypeError(f"user_id must be str, not {type(user_id).__name__}")
    if user_id.isascii():  # the common case: no normalisation can change it
        user_id = user_id.strip()
        return user_id.lower() if casefold else user_id
    user_id = unicodedata.normalize("NFC", user_id).strip()
    if casefold:
        user_id = unicodedata.normalize("NFC", user_id.casefold()).strip()
    return user_id


def canonical_user_id(user_id: str, *, casefold: bool = DEFAULT_CASEFOLD_USER_IDS) -> str:
    """The canonical form of ``user_id``, which must not be blank.

    Raises:
        ValidationFailed: ``invalid_user_id`` when nothing is left; the
            message never quotes the id.
    """
    canonical = canonical_form(user_id, casefold=casefold)
    if not canonical:
        raise ValidationFailed(INVALID_USER_ID, "user id is empty after canonicalisation")
    return canonical


def user_key(user_id: str, *, casefold: bool = DEFAULT_CASEFOLD_USER_IDS) -> bytes:
    """The Kafka key of a viewer's records (``playback.raw``, ``consent``, ``erasure``).

    Raises:
        ValidationFailed: ``invalid_user_id`` for a blank id or one that is not
            valid Unicode (a lone surrogate cannot be a UTF-8 key).
    """
    try:
        return canonical_user_id(user_id, casefold=casefold).encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationFailed(INVALID_USER_ID, "user id is not valid Unicode") from None
