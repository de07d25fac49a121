"""How personal are the lists? Overlap with the popular list, and the share from the viewer's taste cluster.

For data whose taste clusters are known (the synthetic world of
:mod:`pipeline.sources.synthetic`), a list that merely repeats the popular
titles shares most of them with the popular list and draws from the viewer's
cluster no more often than the popular list does. ``privrec demo`` reports
these figures for its sample viewers and over every personalised viewer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Personalisation", "personalisation"]


@dataclass(frozen=True, slots=True)
class Personalisation:
    """Means over viewers; ``in_cluster_ratio`` is the ratio of the two in-cluster means."""

    viewers: int
    overlap_with_popular: float
    """Share of a viewer's list that is also on the popular list (of the same length)."""
    in_cluster_share: float
    """Share of a viewer's list from the viewer's own taste cluster."""
    popular_in_cluster_share: float
    """Share of the popular list from the viewer's taste cluster (what no personalisation gives)."""
    in_cluster_ratio: float | None

    def to_dict(self) -> dict[str, Any]:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


def personalisation(
    lists: Mapping[str, Sequence[str]],
    popular: Sequence[str],
    user_cluster: Mapping[str, int],
    item_cluster: Mapping[str, int],
) -> Personalisation:
    """Figures over the viewers in ``lists`` with a cluster and a non-empty list.

    Each list is compared with the popular list cut to its own length; a title
    without a known cluster counts as outside every cluster.

    Examples
    --------
    >>> p = personalisation({"u": ["a", "b"]}, ["b", "x"], {"u": 0}, {"a": 0, "b": 0, "x": 1})
    >>> (p.overlap_with_popular, p.in_cluster_share, p.popular_in_cluster_share, p.in_cluster_ratio)
    (0.5, 1.0, 0.5, 2.0)
    """
    overlap = mine = theirs = 0.0
    n = 0
    for viewer, titles in lists.items():
        cluster = user_cluster.get(viewer)
        if cluster is None or not titles:
            continue
        head = popular[: len(titles)]
        overlap += len(set(titles) & set(head)) / len(titles)
        mine += sum(item_cluster.get(c) == cluster for c in titles) / len(titles)
        theirs += sum(item_cluster.get(c) == cluster for c in head) / max(len(head), 1)
        n += 1
    if n == 0:
        return Personalisation(0, 0.0, 0.0, 0.0, None)
    return Personalisation(n, overlap / n, mine / n, theirs / n, (mine / theirs) if theirs else None)
