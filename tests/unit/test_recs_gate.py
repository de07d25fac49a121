"""The quality gate refuses a clearly degraded model and says why."""

from __future__ import annotations

import math

import pytest

from pipeline.recs.gate import GateDecision, quality_gate


def test_refuses_a_degraded_model_with_the_numbers() -> None:
    decision = quality_gate(0.30, 0.40, 0.05)
    assert decision == GateDecision(False, decision.reason)
    assert "0.3000" in decision.reason and "0.3800" in decision.reason and "0.4000" in decision.reason


def test_publishes_within_the_margin_and_improvements() -> None:
    assert quality_gate(0.381, 0.40, 0.05).publish
    assert quality_gate(0.38, 0.40, 0.05).publish  # exactly at the floor
    assert quality_gate(0.45, 0.40, 0.05).publish
    assert not quality_gate(0.3799, 0.40, 0.05).publish


def test_zero_margin_refuses_any_drop() -> None:
    assert not quality_gate(0.3999, 0.40, 0.0).publish
    assert quality_gate(0.40, 0.40, 0.0).publish


def test_first_model_is_published() -> None:
    decision = quality_gate(0.12, None, 0.05)
    assert decision.publish and "no live model" in decision.reason


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_candidate_is_refused(bad: float) -> None:
    assert not quality_gate(bad, 0.4, 0.05).publish
    assert not quality_gate(bad, None, 0.05).publish


def test_negative_margin_is_an_error() -> None:
    with pytest.raises(ValueError):
        quality_gate(0.4, 0.4, -0.1)
