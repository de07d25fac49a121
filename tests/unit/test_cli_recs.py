"""What `privrec recs` makes of a reader response: a status per user, one meaning per score."""

from __future__ import annotations

from agents.cli.recs import recs_view, user_status
from pipeline.recs.types import Recommendation
from pipeline.serving.response import RecsResponse

OWN = [Recommendation(content_id="c1", score=0.8, because=("c9",))]
POPULAR = [Recommendation(content_id="c2", score=40.0)]


def response(**kw) -> RecsResponse:
    base = {"user": "k1.p", "personalized": True, "version": "v1", "items": OWN + POPULAR, "source": "full"}
    return RecsResponse(**(base | kw))


def test_a_filled_personal_list_names_each_items_score():
    view = recs_view(response(personal_items=1), {"c1": "Dark Night", "c9": "Burning Canyon"})
    assert view["status"] == "personalized" and "personal_items" not in view
    assert [(i["title"], i["from"], i["score_kind"]) for i in view["items"]] == [
        ("Dark Night", "model", "affinity"),
        (None, "popular", "viewers"),
    ]
    assert view["items"][0]["because_titles"] == ["Burning Canyon"]


def test_statuses():
    assert user_status(response(personal_items=1)) == "personalized"
    known = response(personalized=False, items=POPULAR, source="popular")
    assert user_status(known) == "popular"
    unknown = response(user=None, personalized=False, items=POPULAR, source="popular")
    assert user_status(unknown) == "unknown" and recs_view(unknown, {})["items"] == []  # no silent list
    nothing = response(user=None, personalized=False, version=None, items=[], source="none")
    assert user_status(nothing) == "none"


def test_the_dp_trending_fallback_is_its_own_score_kind():
    day = {"trending_day": "2026-11-29", "trending_epsilon": 1.0}
    dp = response(personalized=False, items=POPULAR, source="trending_dp", **day)
    assert [i["score_kind"] for i in recs_view(dp, {})["items"]] == ["viewers_dp"]
