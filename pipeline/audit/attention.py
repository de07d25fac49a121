"""The attention list: each audited figure against its threshold (``audit.*`` settings).

A figure is flagged when it lies outside its threshold; a figure that could
not be computed (no model, no holdout viewers) is listed with ``value: null``
and not flagged. Nothing here stops the pipeline: the list is for people.
"""

from __future__ import annotations

from typing import Any

from pipeline.settings import AuditSettings

__all__ = ["attention"]


def _check(name: str, value: float | None, threshold: float, rule: str, why: str) -> dict[str, Any]:
    if value is None:
        flagged = False
    elif rule == "min":
        flagged = value < threshold
    else:
        flagged = value > threshold
    return {
        "figure": name,
        "value": None if value is None else round(float(value), 6),
        "threshold": threshold,
        "rule": rule,
        "flagged": flagged,
        "why": why,
    }


def _tier_gap(by_tier: dict[str, float | None]) -> float | None:
    values = [v for v in by_tier.values() if v is not None]
    if len(values) < 2 or max(values) <= 0:
        return None
    return (max(values) - min(values)) / max(values)


def attention(report: dict[str, Any], cfg: AuditSettings) -> list[dict[str, Any]]:
    """The checks, in report order; see the README's Ethics audit table for each threshold."""
    tail = report.get("exposure_by_popularity_tier", {}).get("tail", {}).get("exposure_share")
    ndcg = report.get("ndcg_at_10")
    popular = report.get("ndcg_baselines", {}).get("popularity")
    vs_baseline = ndcg / popular if ndcg is not None and popular else None
    received = report.get("events_received") or 0
    dead = sum(sum(r.values()) for r in report.get("dlq_by_reason", {}).values())
    dlq_share = dead / received if received else None
    p95 = report.get("erasure_receipt_seconds", {}).get("p95")
    budget = report.get("epsilon_budget_per_day")
    spent = report.get("epsilon_spent_by_day", {})
    over = max(spent.values()) - budget if spent and budget is not None else None
    return [
        _check(
            "coverage_at_10",
            report.get("coverage_at_10"),
            cfg.min_coverage_at_10,
            "min",
            "share of the catalogue anyone is shown",
        ),
        _check(
            "gini_exposure",
            report.get("gini_exposure"),
            cfg.max_gini_exposure,
            "max",
            "exposure concentrated on few titles",
        ),
        _check(
            "popularity_lift",
            report.get("popularity_lift"),
            cfg.max_popularity_lift,
            "max",
            "recommendations more popular than what viewers watch",
        ),
        _check(
            "personalisation_at_10",
            report.get("personalisation_at_10"),
            cfg.min_personalisation_at_10,
            "min",
            "viewers get the same lists",
        ),
        _check(
            "tail_exposure_share",
            tail,
            cfg.min_tail_exposure_share,
            "min",
            "long-tail titles hardly ever shown",
        ),
        _check(
            "ndcg_tier_gap",
            _tier_gap(report.get("ndcg_by_activity_tier", {})),
            cfg.max_ndcg_tier_gap,
            "max",
            "quality differs by viewer activity",
        ),
        _check(
            "ndcg_vs_popularity",
            vs_baseline,
            cfg.min_ndcg_vs_baseline,
            "min",
            "model no better than recommending the most popular",
        ),
        _check(
            "erasure_receipt_p95_s", p95, cfg.max_erasure_receipt_p95_s, "max", "erasures slow to complete"
        ),
        _check("dlq_share", dlq_share, cfg.max_dlq_share, "max", "dead letters over events received"),
        _check("epsilon_over_budget", over, 0.0, "max", "a day spent more ε than its budget"),
    ]
