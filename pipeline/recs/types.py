"""Records shared by the trainer (which produces them) and the serving side (which reads them)."""

from __future__ import annotations

import msgspec


class Recommendation(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One recommended title for one user, with up to three "because you watched" titles."""

    content_id: str
    score: float
    because: tuple[str, ...] = ()


class PopularItem(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One title of the non-personalised list (aggregate counts, no user data)."""

    content_id: str
    score: float


class UserRecs(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """What the trainer publishes for one pseudonymous user.

    ``full``: recommendations from the whole profile. ``limited``: the same model, with
    the user's vector recomputed from recent history only (personalization=limited).
    """

    full: list[Recommendation]
    limited: list[Recommendation] = []
