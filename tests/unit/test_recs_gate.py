"""The quality gate: a candidate must beat popularity and not be clearly worse than the live model."""

from __future__ import annotations

import math

import pytest

from pipeline.recs.gate import GateDecision, publish_gate, quality_gate


def test_refuses_a_degraded_model_with_the_numbers() -> None:
    decision = quality_gate(0.30, 0.40, 0.05)
    assert decision == GateDecision(False, decision.reason, "keep_live")
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


# -- the stricter gate: popularity first, then the live model -----------------------------


def test_a_candidate_that_beats_popularity_and_no_live_model_is_published() -> None:
    decision = publish_gate(0.20, 0.12, None, 0.05)
    assert decision.publish and decision.outcome == "publish"
    assert "no live model" in decision.reason and "popularity 0.1200" in decision.reason


def test_a_candidate_that_cannot_beat_popularity_without_a_live_model_serves_popularity() -> None:
    decision = publish_gate(0.10, 0.12, None, 0.05)
    assert decision == GateDecision(False, decision.reason, "serve_popular")
    assert (
        "0.1000" in decision.reason
        and "0.1200" in decision.reason
        and "serving popularity" in decision.reason
    )


def test_a_tie_with_popularity_is_not_a_win() -> None:
    assert publish_gate(0.12, 0.12, None, 0.05).outcome == "serve_popular"
    assert publish_gate(0.1201, 0.12, None, 0.05).outcome == "publish"


def test_a_candidate_below_popularity_keeps_the_live_model() -> None:
    decision = publish_gate(0.10, 0.12, 0.30, 0.05)
    assert decision == GateDecision(False, decision.reason, "keep_live")
    assert "live model stays" in decision.reason


def test_a_candidate_above_popularity_but_clearly_worse_than_live_keeps_it() -> None:
    decision = publish_gate(0.20, 0.12, 0.30, 0.05)
    assert decision == GateDecision(False, decision.reason, "keep_live")
    assert "0.2850" in decision.reason  # the floor: live - 5%


def test_a_candidate_within_the_margin_of_live_is_published() -> None:
    decision = publish_gate(0.29, 0.12, 0.30, 0.05)
    assert decision.publish and decision.outcome == "publish"


@pytest.mark.parametrize(("live", "outcome"), [(None, "serve_popular"), (0.3, "keep_live")])
def test_non_finite_candidate_never_goes_live(live: float | None, outcome: str) -> None:
    decision = publish_gate(math.nan, 0.12, live, 0.05)
    assert not decision.publish and decision.outcome == outcome


def test_publish_gate_negative_margin_is_an_error() -> None:
    with pytest.raises(ValueError):
        publish_gate(0.4, 0.1, 0.4, -0.1)


def test_without_the_popularity_test_only_the_live_model_counts() -> None:
    assert publish_gate(0.10, None, None, 0.05).outcome == "publish"
    assert publish_gate(0.10, None, 0.30, 0.05).outcome == "keep_live"
