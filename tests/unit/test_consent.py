"""Tests for pipeline.privacy.consent: the decision table, GPC, CLI updates, one home per purpose."""

from __future__ import annotations

import dataclasses

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.gateway.rights import PURPOSE_DESCRIPTIONS
from pipeline.privacy.consent import (
    Decision,
    Purpose,
    Purposes,
    apply_update,
    decide,
)
from pipeline.wire import ConsentPurposes, decode_consent
from pipeline.wire import Purposes as WirePurposes
from tests.support.events import consent as consent_example

ALL = Purposes(analytics=True, personalization=True, advertising=True)
purposes = st.builds(Purposes, st.booleans(), st.booleans(), st.booleans())


@pytest.mark.parametrize(
    ("consent", "action", "reason"),
    [
        (Purposes(), "drop", "no_analytics_consent"),
        (Purposes(personalization=True), "drop", "no_analytics_consent"),
        (Purposes(advertising=True), "drop", "no_analytics_consent"),
        (Purposes(analytics=True), "analytics_only", "no_personalization_consent"),
        (Purposes(analytics=True, advertising=True), "analytics_only", "no_personalization_consent"),
        (Purposes(analytics=True, personalization=True), "personalize", "consented"),
        (ALL, "personalize", "consented"),
    ],
)
def test_decision_table(consent: Purposes, action: str, reason: str) -> None:
    decision = decide(consent, gpc=False, default=None)
    assert (decision.action, decision.reason) == (action, reason)
    assert decision.purposes == consent
    assert not decision.defaulted


def test_no_record_and_no_default_denies() -> None:
    assert decide(None, gpc=False, default=None) == Decision("drop", "no_consent_record", Purposes())


def test_no_record_uses_default() -> None:
    decision = decide(None, gpc=False, default=Purposes(analytics=True))
    assert (decision.action, decision.reason, decision.defaulted) == (
        "analytics_only",
        "no_personalization_consent",
        True,
    )


def test_record_wins_over_default() -> None:
    decision = decide(Purposes(), gpc=False, default=ALL)
    assert decision.action == "drop"
    assert not decision.defaulted


def test_gpc_forces_advertising_off_only() -> None:
    decision = decide(ALL, gpc=True, default=None)
    assert decision.action == "personalize"
    assert decision.purposes == Purposes(analytics=True, personalization=True, advertising=False)
    assert decide(None, gpc=True, default=ALL).purposes.advertising is False


@given(st.one_of(st.none(), purposes), st.booleans(), st.one_of(st.none(), purposes))
def test_decision_invariants(consent: Purposes | None, gpc: bool, default: Purposes | None) -> None:
    decision = decide(consent, gpc=gpc, default=default)
    in_force = decision.purposes
    if gpc:
        assert not in_force.advertising
    if decision.action != "drop":
        assert in_force.analytics
    assert (decision.action == "personalize") == (in_force.analytics and in_force.personalization)
    assert decision.defaulted == (consent is None and default is not None)


def test_values_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        ALL.analytics = False  # type: ignore[misc]


def test_purposes_dict_round_trip() -> None:
    assert Purposes.from_dict(ALL.as_dict()) == ALL
    assert Purposes.from_dict({"analytics": True}) == Purposes(analytics=True)
    assert Purposes.from_dict({"analytics": True, "future_purpose": True}) == Purposes(analytics=True)
    assert list(ALL.as_dict()) == list(Purpose)
    with pytest.raises(ValueError, match="bool"):
        Purposes.from_dict({"analytics": "yes"})


def test_apply_update() -> None:
    assert apply_update(None, {"analytics", "personalization"}, set()) == Purposes(True, True, False)
    assert apply_update(ALL, set(), {"advertising"}) == Purposes(True, True, False)
    assert apply_update(Purposes(analytics=True), {"personalization"}, {"advertising"}) == Purposes(
        True, True, False
    )
    assert apply_update(ALL, set(), set()) == ALL


def test_apply_update_rejects_unknown_names_listing_valid_ones() -> None:
    with pytest.raises(ValueError) as err:
        apply_update(None, {"personalisation"}, set())
    for name in ("personalisation", *Purpose):
        assert name in str(err.value)


def test_apply_update_rejects_contradiction() -> None:
    with pytest.raises(ValueError, match="advertising"):
        apply_update(None, {"advertising"}, {"advertising"})


def test_every_purpose_is_named_once_and_found_everywhere() -> None:
    """Adding a :class:`Purpose` fails here until the value, the wire and the privacy centre know it."""
    names = tuple(p.value for p in Purpose)
    assert tuple(f.name for f in dataclasses.fields(Purposes)) == names
    assert tuple(f.name for f in msgspec.structs.fields(ConsentPurposes)) == names
    assert tuple(f.name for f in msgspec.structs.fields(WirePurposes)) == names
    assert set(PURPOSE_DESCRIPTIONS) == set(Purpose)


@given(purposes)
def test_wire_conversions_round_trip(p: Purposes) -> None:
    wire = p.to_wire()
    assert isinstance(wire, WirePurposes)
    assert Purposes.from_wire(wire) == p
    assert msgspec.json.decode(msgspec.json.encode(wire)) == p.as_dict()
    record = decode_consent(msgspec.json.encode(consent_example(purposes=p.as_dict())))
    assert record is not None
    assert Purposes.from_wire(record.purposes) == p


@given(purposes, purposes)
def test_and_keeps_what_both_grant(a: Purposes, b: Purposes) -> None:
    both = a & b
    for name in Purpose:
        assert getattr(both, name.value) == (getattr(a, name.value) and getattr(b, name.value))
