"""Consent for replayed users: a mix of full, analytics-only and missing consent.

Each user's share is decided by a hash of ``(seed, user_id)``, not by a
shuffle, so a user keeps their consent whichever subset of users a run
replays; the shares are therefore met within sampling error, not exactly.
Nobody consents to advertising: privrec never needs it, and a replay that
granted it would hide bugs that leak into advertising.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pipeline.errors import ConfigError, ValidationFailed
from pipeline.privacy.consent import Purpose, Purposes
from pipeline.sources._stable import stable_unit

__all__ = ["CONSENT_SCHEMA", "DEFAULT_MIX", "consent_mix", "consent_record", "parse_mix"]

CONSENT_SCHEMA = "consent.v1"
_PERSONALIZATION = Purposes(analytics=True, personalization=True)
_ANALYTICS_ONLY = Purposes(analytics=True)
DEFAULT_MIX = "0.8,0.1,0.1"
"""The demo mix: 80% personalization (and analytics), 10% analytics only, 10% no record."""


def parse_mix(spec: str) -> tuple[float, float, float]:
    """Shares ``(personalization, analytics_only, none)`` described by ``spec``.

    ``"all"`` is everyone personalization, ``"none"`` nobody has a record, a single
    fraction ``"0.8"`` is that share personalization with the rest split evenly
    between analytics-only and no record, and ``"p,a,n"`` gives all three (sum 1).

    Raises:
        ConfigError: the spec is none of these.
    """
    text = spec.strip().lower()
    if text == "all":
        return (1.0, 0.0, 0.0)
    if text == "none":
        return (0.0, 0.0, 1.0)
    try:
        parts = [float(part) for part in text.split(",")]
    except ValueError:
        raise ConfigError(
            "consent_mix", f"{spec!r} is not all, none, a fraction or three fractions"
        ) from None
    if not all(0.0 <= part <= 1.0 for part in parts):
        raise ConfigError("consent_mix", "fractions must lie in [0, 1]")
    if len(parts) == 1:
        rest = (1.0 - parts[0]) / 2.0
        return (parts[0], rest, rest)
    if len(parts) != 3 or abs(sum(parts) - 1.0) > 1e-6:
        raise ConfigError(
            "consent_mix", "three fractions (personalization, analytics-only, none) summing to 1"
        )
    return (parts[0], parts[1], parts[2])


def consent_mix(
    user_ids: Iterable[str], *, spec: str = DEFAULT_MIX, seed: int
) -> dict[str, dict[str, bool] | None]:
    """``user_id -> purposes`` (or ``None`` for no consent record) for each user, fixed per seed.

    Every user gets a fresh dict, so callers may mutate one without touching another.
    """
    personalization, analytics_only, _ = parse_mix(spec)
    out: dict[str, dict[str, bool] | None] = {}
    for user in user_ids:
        roll = stable_unit(seed, "consent", user)
        if roll < personalization:
            out[user] = _PERSONALIZATION.as_dict()
        elif roll < personalization + analytics_only:
            out[user] = _ANALYTICS_ONLY.as_dict()
        else:
            out[user] = None
    return out


def consent_record(
    user_id: str, purposes: Mapping[str, bool], *, updated_at_ms: int, source: str = "replay"
) -> dict[str, object]:
    """A ``consent.v1`` record granting exactly ``purposes``.

    Raises:
        ValidationFailed: ``purposes`` does not name each :class:`~pipeline.privacy.consent.Purpose`
            with a bool.
    """
    if set(purposes) != set(Purpose) or not all(isinstance(v, bool) for v in purposes.values()):
        raise ValidationFailed("purposes", f"needs exactly {', '.join(Purpose)} as booleans")
    return {
        "schema": CONSENT_SCHEMA,
        "user_id": user_id,
        "purposes": {name.value: purposes[name] for name in Purpose},
        "updated_at": updated_at_ms,
        "source": source,
    }
