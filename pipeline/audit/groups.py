"""Fairness across groups: viewer activity tiers and title popularity tiers.

**Activity tiers** (viewers): viewers sorted by history length (then by
pseudonym, for determinism) and cut into three equal parts (terciles by rank):
``light``, ``medium``, ``heavy``. Rank terciles rather than value cut-offs, so
ties on a short history (many viewers with 1–2 titles) cannot leave a tier empty.

**Popularity tiers** (titles), after Abdollahpouri et al.: titles sorted by φ
(viewers who watched them, then by id) from the most popular; ``head`` is the
shortest prefix holding at least ``head_share`` (20%) of all interactions,
``tail`` the titles after the point where the running total reaches
``1 − tail_share`` (80%) — the least popular titles holding the last 20% —
together with every title nobody watched, and ``mid`` the rest.

Only viewers who granted the ``analytics`` purpose are grouped: the caller
passes their histories and lists only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from pipeline.recs.evaluate import ndcg_at_k

__all__ = [
    "ACTIVITY_TIERS",
    "POPULARITY_TIERS",
    "activity_tiers",
    "by_activity_tier",
    "exposure_by_popularity_tier",
    "popularity_tiers",
]

ACTIVITY_TIERS = ("light", "medium", "heavy")
POPULARITY_TIERS = ("head", "mid", "tail")

Lists = Mapping[str, Sequence[str]]


def activity_tiers(histories: Lists) -> dict[str, str]:
    """Viewer → ``light|medium|heavy`` by rank terciles of history length (see module docstring)."""
    order = sorted(histories, key=lambda u: (len(set(histories[u])), u))
    n = len(order)
    out: dict[str, str] = {}
    for rank, user in enumerate(order):
        out[user] = ACTIVITY_TIERS[min(2, rank * 3 // n)]
    return out


def popularity_tiers(
    popularity: Mapping[str, int],
    catalogue: Iterable[str],
    *,
    head_share: float = 0.2,
    tail_share: float = 0.2,
) -> dict[str, str]:
    """Title → ``head|mid|tail`` by cumulative share of interactions (see module docstring)."""
    items = sorted(set(catalogue), key=lambda i: (-popularity.get(i, 0), i))
    total = sum(popularity.get(i, 0) for i in items)
    out: dict[str, str] = {}
    running = 0
    for item in items:
        count = popularity.get(item, 0)
        before = running
        running += count
        if count == 0 or total == 0:
            out[item] = "tail"
        elif before < head_share * total:
            out[item] = "head"
        elif before >= (1.0 - tail_share) * total:
            out[item] = "tail"
        else:
            out[item] = "mid"
    return out


def exposure_by_popularity_tier(
    recs: Lists, tiers: Mapping[str, str], k: int = 10
) -> dict[str, dict[str, float | int]]:
    """Per tier: share of top-k slots, share of the catalogue, and its number of titles."""
    slots = {t: 0 for t in POPULARITY_TIERS}
    for lst in recs.values():
        for i in lst[:k]:
            tier = tiers.get(i)
            if tier is not None:
                slots[tier] += 1
    n_slots = sum(slots.values())
    titles = {t: sum(1 for v in tiers.values() if v == t) for t in POPULARITY_TIERS}
    n_titles = len(tiers)
    return {
        t: {
            "exposure_share": slots[t] / n_slots if n_slots else 0.0,
            "catalogue_share": titles[t] / n_titles if n_titles else 0.0,
            "titles": titles[t],
        }
        for t in POPULARITY_TIERS
    }


def by_activity_tier(
    recs: Lists,
    tiers: Mapping[str, str],
    popularity: Mapping[str, int],
    title_tiers: Mapping[str, str],
    *,
    holdout_recs: Lists | None = None,
    heldout: Mapping[str, set[str]] | None = None,
    k: int = 10,
) -> dict[str, dict[str, float | int | None]]:
    """Per activity tier: viewers, mean NDCG@k on the holdout, ARP and tail share of their top-k.

    ``ndcg_at_10`` is the mean over the tier's viewers with held-out titles
    (``holdout_recs``: the holdout model's lists; ``heldout``: their relevant
    titles), None when no viewer of the tier has any.
    """
    out: dict[str, dict[str, float | int | None]] = {}
    for tier in ACTIVITY_TIERS:
        users = [u for u, t in tiers.items() if t == tier]
        lists = [recs.get(u, ())[:k] for u in users]
        lists = [lst for lst in lists if lst]
        arps = [sum(popularity.get(i, 0) for i in lst) / len(lst) for lst in lists]
        slots = [i for lst in lists for i in lst]
        tail = sum(1 for i in slots if title_tiers.get(i) == "tail")
        ndcgs = []
        if holdout_recs is not None and heldout is not None:
            ndcgs = [ndcg_at_k(holdout_recs.get(u, ()), heldout[u], k) for u in users if heldout.get(u)]
        out[tier] = {
            "users": len(users),
            "ndcg_at_10": sum(ndcgs) / len(ndcgs) if ndcgs else None,
            "holdout_users": len(ndcgs),
            "arp": sum(arps) / len(arps) if arps else 0.0,
            "tail_share": tail / len(slots) if slots else 0.0,
        }
    return out
