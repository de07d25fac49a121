"""Every audit figure against a hand computation on a five-title, four-viewer fixture.

The expected numbers are worked out in the comments, not by calling the code.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from pipeline.audit import BudgetView, assemble, recommender_figures
from pipeline.audit.data import (
    ConsentEvent,
    consent_changes_by_day,
    consent_mix,
    drops_by_reason,
    percentiles,
    receipt_seconds,
)
from pipeline.audit.exposure import gini, personalisation_at_k
from pipeline.audit.groups import popularity_tiers
from pipeline.audit.holdout import split_matrix
from pipeline.settings import AuditSettings

CATALOGUE = ["a", "b", "c", "d", "e"]
# φ: a=4, b=2, c=1, d=1, e=0 (8 interactions)
HISTORIES = {"u1": ["a", "b"], "u2": ["a", "c"], "u3": ["a", "b", "d"], "u4": ["a"]}
RECS = {"u1": ["a", "c"], "u2": ["a", "b"], "u3": ["a", "e"], "u4": ["b", "c"]}
ANALYTICS = {"u1", "u2", "u3"}  # u4 did not grant analytics: left out of group figures
HOLDOUT_RECS = {"u1": ["b", "c"], "u2": ["c", "d"], "u3": ["a", "b"]}
HELDOUT = {"u1": {"c"}, "u2": {"c"}, "u3": {"d"}}


@pytest.fixture(scope="module")
def figures() -> dict:
    return recommender_figures(
        RECS, HISTORIES, CATALOGUE, analytics=ANALYTICS, holdout_recs=HOLDOUT_RECS, heldout=HELDOUT
    )


def test_coverage(figures: dict) -> None:
    assert figures["coverage_at_10"] == pytest.approx(4 / 5)  # a, b, c, e shown; d never


def test_gini_of_exposure(figures: dict) -> None:
    # exposure a=3 b=2 c=2 d=0 e=1 → sorted 0,1,2,2,3; Σ(2j−6)x = 0−2+0+4+12 = 14; 14/(5·8)
    assert figures["gini_exposure"] == pytest.approx(0.35)
    assert gini([1, 1, 1]) == 0.0
    assert gini([0, 0, 0, 4]) == pytest.approx(0.75)  # (2·4−5)·4/(4·4) = 12/16


def test_arp_and_lift(figures: dict) -> None:
    # recs: u1 (4+1)/2, u2 (4+2)/2, u3 (4+0)/2, u4 (2+1)/2 → 9/4
    assert figures["arp"] == pytest.approx(2.25)
    # histories: 3, 2.5, 7/3, 4 → 71/24
    assert figures["arp_history"] == pytest.approx(71 / 24)
    assert figures["popularity_lift"] == pytest.approx(54 / 71)


def test_novelty(figures: dict) -> None:
    # −log2(φ/4) per slot: a 0, c 2, b 1, e (φ floored to 1) 2 → (0+2+0+1+0+2+1+2)/8
    assert figures["novelty"] == pytest.approx(1.0)


def test_personalisation(figures: dict) -> None:
    # five pairs share one title of three (1/3), u3–u4 share none: mean 5/18
    assert figures["personalisation_at_10"] == pytest.approx(13 / 18)


def test_personalisation_sampled_is_close() -> None:
    rng = np.random.default_rng(3)
    recs = {f"u{i}": [f"t{x}" for x in rng.choice(30, 10, replace=False)] for i in range(300)}
    exact = personalisation_at_k(recs, max_pairs=10**9)
    assert personalisation_at_k(recs, max_pairs=5000) == pytest.approx(exact, abs=0.01)


def test_popularity_tiers_and_exposure(figures: dict) -> None:
    # a: 0 before it (<1.6) → head; b: 4 before, c: 6 before (<6.4) → mid;
    # d: 7 ≥ 6.4 → tail; e unwatched → tail
    tiers = popularity_tiers({"a": 4, "b": 2, "c": 1, "d": 1}, CATALOGUE)
    assert tiers == {"a": "head", "b": "mid", "c": "mid", "d": "tail", "e": "tail"}
    # analytics viewers' slots: a a a | c b | e → 3/6, 2/6, 1/6
    tier = figures["exposure_by_popularity_tier"]
    assert tier["head"] == {"exposure_share": pytest.approx(0.5), "catalogue_share": 0.2, "titles": 1}
    assert tier["mid"]["exposure_share"] == pytest.approx(2 / 6)
    assert tier["mid"]["catalogue_share"] == pytest.approx(0.4)
    assert tier["tail"]["exposure_share"] == pytest.approx(1 / 6)
    assert figures["fairness_viewers"] == 3


def test_activity_tiers_and_ndcg(figures: dict) -> None:
    # u1 (2 titles) light, u2 (2) medium, u3 (3) heavy;
    # NDCG: u1 hit at rank 2 = 1/log2(3), u2 at rank 1, u3 none
    by = figures["ndcg_by_activity_tier"]
    assert by["light"] == pytest.approx(1 / math.log2(3))
    assert by["medium"] == pytest.approx(1.0)
    assert by["heavy"] == 0.0
    assert figures["ndcg_at_10"] == pytest.approx((1 / math.log2(3) + 1) / 3)
    tiers = figures["activity_tiers"]
    assert [tiers[t]["arp"] for t in ("light", "medium", "heavy")] == pytest.approx([2.5, 3.0, 2.0])
    assert [tiers[t]["tail_share"] for t in ("light", "medium", "heavy")] == pytest.approx([0, 0, 0.5])


CONSENT = [
    ConsentEvent("alice", 1000, {"analytics": True, "personalization": True, "advertising": False}),
    ConsentEvent("bob", 2000, {"analytics": True, "personalization": False, "advertising": False}),
    ConsentEvent("carol", 86_400_010, None),
    ConsentEvent("alice", 86_400_005, {"analytics": True, "personalization": False, "advertising": False}),
    ConsentEvent("dave", 3000, {"analytics": False, "personalization": False, "advertising": False}),
]


def test_consent_mix() -> None:
    mix = consent_mix(CONSENT)
    assert mix == {
        "viewers": 4,
        "classes": {"personalization": 0, "analytics_only": 2, "none": 1, "withdrawn": 1},
        "purposes": {"analytics": 2, "personalization": 0, "advertising": 0},
    }


def test_consent_changes_by_day() -> None:
    days = consent_changes_by_day(CONSENT)
    first, second = days["1970-01-01"], days["1970-01-02"]
    assert first["records"] == 3 and first["withdrawn"] == 0
    assert first["granted"] == {"analytics": 2, "personalization": 1, "advertising": 0}
    assert first["mix"] == {"personalization": 1, "analytics_only": 1, "none": 1, "withdrawn": 0}
    assert second["records"] == 2 and second["withdrawn"] == 1
    assert second["revoked"] == {"analytics": 0, "personalization": 1, "advertising": 0}
    assert second["mix"] == {"personalization": 0, "analytics_only": 2, "none": 1, "withdrawn": 1}


def test_drops_and_receipts() -> None:
    assert drops_by_reason({"dropped:no_consent": 5, "received": 100, "dlq:x": 2}) == {"no_consent": 5}
    # 1.5 s, 0.5 s, 10 s; r4 pending. Nearest rank: p50 = 2nd of 3, p95 = 3rd
    out = receipt_seconds(
        {"r1": 1000, "r2": 2000, "r3": 5000, "r4": 9000}, {"r1": 2500, "r2": 2500, "r3": 15000}
    )
    assert out == {"requests": 4, "receipts": 3, "pending": 1, "p50": 1.5, "p95": 10.0, "max": 10.0}
    assert percentiles([]) == {"p50": None, "p95": None, "max": None}


def test_holdout_split_holds_newest() -> None:
    m = sp.csr_matrix(np.array([[1, 2, 3, 0, 4], [0, 5, 0, 0, 0], [6, 0, 0, 7, 0]], np.float32))
    # last_seen aligned with data: row 0 entries (cols 0,1,2,4) newest is col 1; row 2 newest col 0
    last_seen = np.array([10, 40, 20, 30, 5, 9, 1], np.int64)
    train, held = split_matrix(m, last_seen, 0.2)
    # row 0: 4 entries → int(0.8)=0 → at least 1 held: the newest (col 1); row 1: 1 entry stays; row 2: col 0
    assert held == {0: {1}, 2: {0}}
    assert train.toarray().tolist() == [[1, 0, 3, 0, 4], [0, 5, 0, 0, 0], [0, 0, 0, 7, 0]]


def test_assemble_keys_and_attention(figures: dict) -> None:
    data = {
        "consent_mix": consent_mix(CONSENT),
        "drops_by_reason": {},
        "dlq_by_reason": {"playback.dlq": {"invalid_json": 2}},
        "events_received": 100,
        "erasure_receipt_seconds": {"p95": 90.0},
    }
    report = assemble(
        generated_at_ms=0,
        model={"version": "v1"},
        figures=figures,
        ndcg_baselines={"popularity": 0.5},
        data=data,
        budget=BudgetView(epsilon_budget_per_day=1.0, epsilon_spent_by_day={"2024-01-01": 1.5}),
        cfg=AuditSettings(),
    )
    for key in (
        "coverage_at_10",
        "gini_exposure",
        "arp",
        "popularity_lift",
        "personalisation_at_10",
        "ndcg_by_activity_tier",
        "exposure_by_popularity_tier",
        "consent_mix",
        "drops_by_reason",
        "dlq_by_reason",
        "erasure_receipt_seconds",
        "epsilon_spent_by_day",
        "attention",
    ):
        assert key in report, key
    flags = {a["figure"]: a["flagged"] for a in report["attention"]}
    assert flags["ndcg_tier_gap"] is True  # (1 − 0)/1 > 0.5
    assert flags["dlq_share"] is True  # 2/100 > 1%
    assert flags["erasure_receipt_p95_s"] is True  # 90 s > 60 s
    assert flags["epsilon_over_budget"] is True  # 1.5 spent on a day of 1.0
    assert flags["coverage_at_10"] is False  # 0.8 ≥ 0.1
    assert flags["popularity_lift"] is False  # 0.76 ≤ 2


def test_trade_off_figures() -> None:
    from pipeline.audit.report import trade_off

    # tiers over φ a=4 b=2 c=1 d=1: head a, mid b c, tail d e
    # slots: a c | a b | a e | b c → e is the one tail slot of eight
    out = trade_off(RECS, HELDOUT, {"a": 4, "b": 2, "c": 1, "d": 1}, CATALOGUE)
    assert out["coverage_at_10"] == pytest.approx(0.8)
    assert out["tail_share"] == pytest.approx(1 / 8)
    assert out["arp"] == pytest.approx(2.25)
    # NDCG of RECS on HELDOUT: u1 has c at rank 2, u2 none (c not in a, b), u3 none
    assert out["ndcg_at_10"] == pytest.approx((1 / math.log2(3)) / 3)
