"""One audit report (``audit.v1``) from plain inputs: the figures, then the attention list.

:func:`recommender_figures` computes the model and fairness figures from
viewer → list mappings; :func:`assemble` puts them together with the data,
consent and budget sections. :mod:`agents.audit` reads the live stores and
calls both; tests call them on hand-sized fixtures.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from pipeline.audit.attention import attention
from pipeline.audit.budget import BudgetView
from pipeline.audit.exposure import (
    arp,
    coverage_at_k,
    exposure_counts,
    gini,
    item_popularity,
    novelty,
    personalisation_at_k,
    popularity_lift,
)
from pipeline.audit.groups import (
    activity_tiers,
    by_activity_tier,
    exposure_by_popularity_tier,
    popularity_tiers,
)
from pipeline.recs.evaluate import ndcg_at_k
from pipeline.settings import AuditSettings

__all__ = ["AUDIT_SCHEMA", "assemble", "lorenz", "mean_ndcg", "recommender_figures", "trade_off"]

AUDIT_SCHEMA = "audit.v1"

Lists = Mapping[str, Sequence[str]]


def mean_ndcg(recs: Lists, heldout: Mapping[str, set[str]], k: int = 10) -> float | None:
    """Mean NDCG@k over viewers with held-out titles (None when there are none)."""
    scores = [ndcg_at_k(recs.get(u, ()), rel, k) for u, rel in heldout.items() if rel]
    return sum(scores) / len(scores) if scores else None


def trade_off(
    recs: Lists,
    heldout: Mapping[str, set[str]],
    popularity: Mapping[str, int],
    catalogue: Iterable[str],
    k: int = 10,
) -> dict[str, float | None]:
    """What a re-rank trades: NDCG@k on the holdout against coverage@k, tail share (APLT) and ARP."""
    catalogue = list(catalogue)
    tiers = popularity_tiers(popularity, catalogue)
    return {
        "ndcg_at_10": mean_ndcg(recs, heldout, k),
        "coverage_at_10": coverage_at_k(recs, catalogue, k),
        "tail_share": exposure_by_popularity_tier(recs, tiers, k)["tail"]["exposure_share"],
        "arp": arp(recs, popularity, k),
    }


def recommender_figures(
    recs: Lists,
    histories: Lists,
    catalogue: Iterable[str],
    *,
    analytics: Collection[str],
    holdout_recs: Lists | None = None,
    heldout: Mapping[str, set[str]] | None = None,
    k: int = 10,
    max_pairs: int = 20_000,
) -> dict[str, Any]:
    """Model figures over every viewer of the model; group figures over ``analytics`` viewers only.

    Args:
        recs: viewer → served list, best first (cut to ``k``).
        histories: viewer → titles in their history (the model's training data).
        catalogue: every title of the model.
        analytics: viewers who granted the ``analytics`` purpose (group figures).
        holdout_recs / heldout: a holdout model's lists and the held-out titles, for NDCG.
    """
    catalogue = list(catalogue)
    popularity = item_popularity(histories)
    exposure = exposure_counts(recs, catalogue, k)
    title_tiers = popularity_tiers(popularity, catalogue)
    group = {u: histories[u] for u in histories if u in analytics}
    group_recs = {u: recs[u] for u in group if u in recs}
    tiers = activity_tiers(group)
    per_tier = by_activity_tier(
        group_recs, tiers, popularity, title_tiers, holdout_recs=holdout_recs, heldout=heldout, k=k
    )
    return {
        "coverage_at_10": coverage_at_k(recs, catalogue, k),
        "gini_exposure": gini(exposure.values()),
        "arp": arp(recs, popularity, k),
        "arp_history": arp(histories, popularity),
        "popularity_lift": popularity_lift(recs, histories, popularity, k),
        "novelty": novelty(recs, popularity, len(histories), k),
        "personalisation_at_10": personalisation_at_k(recs, k, max_pairs=max_pairs),
        "ndcg_at_10": mean_ndcg(holdout_recs, heldout, k) if holdout_recs and heldout else None,
        "ndcg_by_activity_tier": {t: v["ndcg_at_10"] for t, v in per_tier.items()},
        "activity_tiers": per_tier,
        "exposure_by_popularity_tier": exposure_by_popularity_tier(group_recs, title_tiers, k),
        "exposure_by_popularity_tier_all": exposure_by_popularity_tier(recs, title_tiers, k),
        "viewers": len(histories),
        "fairness_viewers": len(group),
        "catalogue": len(catalogue),
        "exposure_lorenz": lorenz(exposure.values()),
    }


def lorenz(values: Iterable[float], points: int = 20) -> list[list[float]]:
    """``[[share of titles, share of exposure]]`` at ``points`` + 1 steps, least exposed titles first."""
    xs = sorted(float(v) for v in values)
    total, n = sum(xs), len(xs)
    if not n or total <= 0:
        return []
    cum = [0.0]
    for x in xs:
        cum.append(cum[-1] + x)
    return [[j / points, cum[round(j / points * n)] / total] for j in range(points + 1)]


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def assemble(
    *,
    generated_at_ms: int,
    model: Mapping[str, Any] | None,
    figures: Mapping[str, Any] | None,
    ndcg_baselines: Mapping[str, float | None],
    data: Mapping[str, Any],
    budget: BudgetView,
    cfg: AuditSettings,
    rerank: str = "none",
) -> dict[str, Any]:
    """The report: model facts, figures, data sections, budget, then the attention list."""
    report: dict[str, Any] = {
        "schema": AUDIT_SCHEMA,
        "generated_at": generated_at_ms,
        "model": dict(model) if model else None,
        "rerank": rerank,
        "ndcg_baselines": dict(ndcg_baselines),
    }
    empty_tier = {"ndcg_at_10": None}
    report.update(
        figures
        or {
            "coverage_at_10": None,
            "gini_exposure": None,
            "arp": None,
            "popularity_lift": None,
            "novelty": None,
            "personalisation_at_10": None,
            "ndcg_at_10": None,
            "ndcg_by_activity_tier": {t: None for t in ("light", "medium", "heavy")},
            "activity_tiers": {t: empty_tier for t in ("light", "medium", "heavy")},
            "exposure_by_popularity_tier": {},
        }
    )
    report.update(data)
    report["epsilon_budget_per_day"] = budget.epsilon_budget_per_day
    report["epsilon_spent_by_day"] = dict(budget.epsilon_spent_by_day)
    report["dp_releases"] = list(budget.releases)
    report["dp_ledger"] = budget.source
    report = _rounded(report)
    report["attention"] = attention(report, cfg)
    return report
