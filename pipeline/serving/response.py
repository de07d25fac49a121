"""The reader's response and the pure rules that build it (controls, fill, fallbacks).

Kept free of Redis so the rules are unit-tested on plain records:

* the non-personalised list (the *fallback*) is the latest differentially
  private trending release when there is one (``source: "trending_dp"``, with
  ``trending_day`` and ``trending_epsilon``), else the model's popular list,
  which the trainer publishes only with titles of at least
  ``dp.fallback_min_viewers`` viewers (``source: "popular"``);
* nothing published (no model, no trending release) → ``source: "none"``, no items;
* a popularity-only version (the trainer's gate found no model that beats
  popularity, and none was live) → every response carries ``model: "popular"``;
* ``personalization: off``, or no personalised entry (cold start, no consent,
  analytics only) → the fallback, ``personalized: false``;
* ``limited`` → the ``limited`` list, ``full`` → the ``full`` list;
* hidden titles are removed from every list; a personalised list left shorter
  than ``n`` is filled from the fallback (titles not already present, with
  no ``because``); a response with no personalised item at all is reported
  with the fallback's source;
* with a re-rank policy (``serving.rerank``), the personalised candidates left
  after hiding are re-ordered by :mod:`pipeline.serving.rerank` before the cut
  to ``n`` (head = the fallback list's titles).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import msgspec

from pipeline.recs.popularity import POPULAR, is_popular_version
from pipeline.recs.types import PopularItem, Recommendation, UserRecs
from pipeline.serving.controls import Controls
from pipeline.serving.rerank import Rerank, xquad

__all__ = ["Fallback", "RecsResponse", "Source", "compose", "popular_as_recs"]

Source = Literal["full", "limited", "popular", "trending_dp", "none"]


class RecsResponse(msgspec.Struct, frozen=True, kw_only=True, gc=False, omit_defaults=True):
    """What a reader returns for one user; encodes to the HTTP/CLI JSON body.

    ``user`` is the pseudonym under which the viewer's entries (recommendations
    or controls) were found, or null: the raw user id is never echoed, and an
    unknown user id does not reveal its pseudonym. ``trending_day`` and
    ``trending_epsilon`` are present (and encoded) only when the fallback is
    the DP trending list. ``personal_items``: how many of ``items`` (always a
    prefix) come from the viewer's own list; the rest are the fallback's, whose
    ``score`` means something else (a viewer count, not the model's preference).
    Encoded only when not 0.
    """

    user: str | None
    personalized: bool
    version: str | None
    items: list[Recommendation]
    source: Source
    trending_day: str | None = None
    trending_epsilon: float | None = None
    personal_items: int = 0
    model: str | None = None
    """``"popular"`` when the live version is popularity only (no model passed the gate); else absent."""


class Fallback(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """The latest DP trending release, as the reader serves it."""

    day: str
    epsilon: float
    items: list[Recommendation]


def popular_as_recs(popular: Iterable[PopularItem]) -> list[Recommendation]:
    """The popular list in the response's item shape (no ``because``)."""
    return [Recommendation(content_id=p.content_id, score=p.score) for p in popular]


def _take(
    source: Iterable[Recommendation], hidden: frozenset[str], n: int, out: list[Recommendation]
) -> None:
    seen = {r.content_id for r in out}
    for rec in source:
        if len(out) >= n:
            return
        cid = rec.content_id
        if cid in hidden or cid in seen:
            continue
        seen.add(cid)
        out.append(rec)


def compose(
    *,
    version: str | None,
    pseudonym: str | None,
    recs: UserRecs | Iterable[Recommendation] | None,
    controls: Controls,
    popular: list[Recommendation],
    n: int,
    trending: Fallback | None = None,
    rerank: Rerank | None = None,
) -> RecsResponse:
    """Apply the viewer's controls and the fallbacks; see the module docstring.

    Args:
        version: the live version, None when nothing is published.
        pseudonym: where the viewer's entries were found, or None.
        recs: the viewer's published entry: a ``UserRecs``, or directly the items
            of the list that ``controls.personalization`` selects (the reader
            decodes only that one, lazily), or None.
        controls: the viewer's controls (defaults when none are stored).
        popular: the version's popular list, best first.
        n: how many items at most.
        trending: the latest DP trending release; when given, it replaces ``popular``.
        rerank: the read-time re-rank policy; None or ``mode="none"``: the model's order.
    """
    fallback_source: Source = "popular"
    labels: dict[str, object] = {}
    if trending is not None:
        popular, fallback_source = trending.items, "trending_dp"
        labels = {"trending_day": trending.day, "trending_epsilon": trending.epsilon}
    elif version is None:
        return RecsResponse(user=pseudonym, personalized=False, version=None, items=[], source="none")
    mode = controls.personalization
    hidden = controls.hidden
    items: list[Recommendation] = []
    if recs is not None and mode != "off":
        if isinstance(recs, UserRecs):
            recs = recs.full if mode == "full" else recs.limited
        if rerank is not None and rerank.active:
            pool: list[Recommendation] = []
            _take(recs, hidden, 1 << 30, pool)
            head = frozenset(p.content_id for p in popular)
            items = xquad(pool, head, n, rerank.lam)
        else:
            _take(recs, hidden, n, items)
    personalized = bool(items)
    personal_items = len(items)
    if len(items) < n:
        _take(popular, hidden, n, items)
    source: Source = mode if personalized else fallback_source  # type: ignore[assignment]
    if version is not None and is_popular_version(version):
        labels["model"] = POPULAR
    return RecsResponse(
        user=pseudonym,
        personalized=personalized,
        version=version,
        items=items,
        source=source,
        personal_items=personal_items,
        **labels,  # type: ignore[arg-type]
    )
