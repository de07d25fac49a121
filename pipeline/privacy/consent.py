"""Consent values and the pure decision of what may happen to one event.

Rules, in order:

1. No consent record: the configured ``default`` applies; no default means
   deny (``drop``, reason ``no_consent_record``).
2. No analytics consent: ``drop`` (``no_analytics_consent``). Events are only
   processed at all under analytics consent, so personalization granted
   *without* analytics also drops: recommendations are built from processed
   events, and processing needs the analytics purpose.
3. Analytics without personalization: ``analytics_only`` (the event goes to
   the redacted topic with ``personalization=false``, never to interactions).
4. Analytics and personalization: ``personalize``.

Global Privacy Control (``gpc``) is an opt-out of sale/sharing for targeted
advertising: it forces ``advertising`` off in the purposes in force and
changes nothing else (first-party personalization is not sale or sharing).

:mod:`pipeline.privacy.consent_history` applies these rules at an event's
time as well as now (``not_granted_at_event_time``).

This module is the home of a purpose: :class:`Purpose` names each one and
:class:`Purposes` holds a viewer's grants. Everything else is derived from
them (the consent table's bits, the gateway's lists, the CLI's names) or
checked against them (the wire structs, by ``tests/unit/test_consent.py``);
the conversions from and to the wire structs are :meth:`Purposes.from_wire`
and :meth:`Purposes.to_wire`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from enum import StrEnum
from typing import Literal

from pipeline.wire.inbound import ConsentPurposes
from pipeline.wire.outbound import Purposes as WirePurposes

__all__ = [
    "Action",
    "Decision",
    "Purpose",
    "Purposes",
    "Reason",
    "apply_update",
    "decide",
]


class Purpose(StrEnum):
    """A consent purpose by name, as records, the API and the CLI spell it.

    The order is the bit order of the consent table's value
    (:mod:`pipeline.privacy.consent_history`): append a new purpose, never
    insert or reorder, or stored histories would decode differently.
    """

    ANALYTICS = "analytics"
    PERSONALIZATION = "personalization"
    ADVERTISING = "advertising"


Action = Literal["drop", "analytics_only", "personalize"]
Reason = Literal[
    "no_consent_record",
    "no_analytics_consent",
    "no_personalization_consent",
    "not_granted_at_event_time",
    "consented",
]


@dataclass(frozen=True, slots=True)
class Purposes:
    """What a user agreed to; every purpose defaults to denied."""

    analytics: bool = False
    personalization: bool = False
    advertising: bool = False

    def as_dict(self) -> dict[str, bool]:
        """A fresh ``{purpose: bool}`` dict in :class:`Purpose` order, as ``consent.v1`` carries it."""
        return {p.value: getattr(self, p.value) for p in Purpose}

    def __and__(self, other: Purposes) -> Purposes:
        """The purposes granted in both (e.g. at an event's time and now)."""
        return Purposes(*(getattr(self, p.value) and getattr(other, p.value) for p in Purpose))

    @classmethod
    def from_wire(cls, purposes: ConsentPurposes) -> Purposes:
        """The grants of a decoded ``consent.v1`` (or redacted record's) ``purposes``."""
        return cls(*(getattr(purposes, p.value) for p in Purpose))

    def to_wire(self) -> WirePurposes:
        """The ``purposes`` of a redacted record: what was in force when it was made."""
        return WirePurposes(**self.as_dict())

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Purposes:
        """Build from a stored dict; missing purposes are denied.

        Unknown keys are ignored: schemas grow additively, so a newer writer
        may store a purpose this reader does not know and must not act on.

        Raises:
            ValueError: a known purpose whose value is not a bool.
        """
        values: dict[str, bool] = {}
        for name in Purpose:
            if name not in data:
                continue
            value = data[name]
            if not isinstance(value, bool):
                raise ValueError(f"purpose {name.value!r} must be a bool")
            values[name.value] = value
        return cls(**values)


if tuple(f.name for f in fields(Purposes)) != tuple(Purpose):
    raise TypeError("Purposes must have one field per Purpose, in Purpose order")


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with one event, why, and the consent in force.

    ``purposes`` is what downstream records carry: the record's (or default's)
    purposes with advertising forced off under GPC; all denied on ``drop``
    for lack of any consent. ``defaulted`` says the configured default was used.
    """

    action: Action
    reason: Reason
    purposes: Purposes
    defaulted: bool = False


_DENY = Purposes()


def decide(consent: Purposes | None, *, gpc: bool, default: Purposes | None) -> Decision:
    """Decide what may happen to an event under ``consent`` (see module rules)."""
    defaulted = consent is None
    if consent is None:
        if default is None:
            return Decision("drop", "no_consent_record", _DENY)
        consent = default
    if gpc and consent.advertising:
        consent = replace(consent, advertising=False)
    if not consent.analytics:
        return Decision("drop", "no_analytics_consent", consent, defaulted)
    if not consent.personalization:
        return Decision("analytics_only", "no_personalization_consent", consent, defaulted)
    return Decision("personalize", "consented", consent, defaulted)


def apply_update(current: Purposes | None, grant: Iterable[str], revoke: Iterable[str]) -> Purposes:
    """Apply a CLI update (``--grant personalization --revoke advertising``).

    ``current=None`` starts from everything denied.

    Raises:
        ValueError: an unknown purpose name (the message lists the valid
            ones), or a purpose both granted and revoked.
    """
    grant, revoke = set(grant), set(revoke)
    unknown = sorted((grant | revoke) - set(Purpose))
    if unknown:
        raise ValueError(f"unknown purposes {unknown}; valid: {', '.join(Purpose)}")
    both = sorted(grant & revoke)
    if both:
        raise ValueError(f"purposes both granted and revoked: {', '.join(both)}")
    changes = {name: True for name in grant} | {name: False for name in revoke}
    return replace(current or _DENY, **changes)
