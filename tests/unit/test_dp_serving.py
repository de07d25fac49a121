"""The trending list replaces raw popularity in responses; the fallback floor; the ε gauge; topics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from pipeline.kafka.topics import TOPICS, Topic
from pipeline.ops.metrics import PipelineMetrics, update_dp_spent
from pipeline.recs.types import Recommendation, UserRecs
from pipeline.serving.controls import DEFAULT
from pipeline.serving.response import Fallback, compose
from pipeline.settings import Settings

POPULAR = [Recommendation(content_id="pop-1", score=9.0)]
TRENDING = Fallback(day="2024-03-05", epsilon=1.0, items=[Recommendation(content_id="dp-1", score=300.0)])


def test_cold_start_gets_the_dp_list_labelled() -> None:
    r = compose(
        version="v1", pseudonym=None, recs=None, controls=DEFAULT, popular=POPULAR, n=5, trending=TRENDING
    )
    assert [i.content_id for i in r.items] == ["dp-1"]
    assert (r.source, r.trending_day, r.trending_epsilon, r.personalized) == (
        "trending_dp",
        "2024-03-05",
        1.0,
        False,
    )


def test_dp_list_is_served_even_before_a_model_exists() -> None:
    r = compose(version=None, pseudonym=None, recs=None, controls=DEFAULT, popular=[], n=5, trending=TRENDING)
    assert r.source == "trending_dp" and [i.content_id for i in r.items] == ["dp-1"]


def test_personalised_lists_are_filled_from_the_dp_list_not_popularity() -> None:
    recs = UserRecs(full=[Recommendation(content_id="mine", score=1.0)])
    r = compose(
        version="v1", pseudonym="k.x", recs=recs, controls=DEFAULT, popular=POPULAR, n=3, trending=TRENDING
    )
    assert [i.content_id for i in r.items] == ["mine", "dp-1"] and r.source == "full"


def test_without_a_release_the_popular_list_is_served_as_before() -> None:
    r = compose(version="v1", pseudonym=None, recs=None, controls=DEFAULT, popular=POPULAR, n=5)
    assert r.source == "popular" and r.trending_day is None


def test_fallback_popular_list_has_a_viewer_floor() -> None:
    """Until a first release the trainer publishes ``popular(n, min_users=dp.fallback_min_viewers)``."""
    import numpy as np
    import scipy.sparse as sp

    from pipeline.recs.model import Model
    from pipeline.settings import TrainerSettings

    floor = Settings().dp.fallback_min_viewers
    assert floor == 10
    rows = np.array([0, *range(12)])
    cols = np.array([1, *([0] * 12)])
    matrix = sp.csr_matrix((np.ones(13), (rows, cols)), shape=(12, 2))
    model = Model(
        user_factors=np.zeros((12, 2)),
        item_factors=np.zeros((2, 2)),
        user_ids=[f"u{i}" for i in range(12)],
        item_ids=["many", "single"],
        matrix=matrix,
        last_seen=None,
        settings=TrainerSettings(),
    )
    assert [p.content_id for p in model.popular(10)] == ["many", "single"]
    assert [p.content_id for p in model.popular(10, min_users=floor)] == ["many"]


def test_epsilon_spent_gauge_per_day() -> None:
    registry = CollectorRegistry()
    m = PipelineMetrics(registry, sections={"trainer"})
    update_dp_spent(m, {"2024-03-05": (1.0, 1e-6), "bad day": (9.0, 0.0)}, 1.0)
    text = generate_latest(registry).decode()
    assert 'privrec_dp_epsilon_spent{day="2024-03-05"} 1.0' in text
    assert "bad day" not in text and "privrec_dp_epsilon_budget 1.0" in text
    update_dp_spent(m, {}, 1.0)
    assert "2024-03-05" not in generate_latest(registry).decode()


def test_ledger_topic_is_compacted_and_kept() -> None:
    spec = next(t for t in TOPICS if t.name == Topic.DP_LEDGER)
    assert spec.config(Settings()) == {"cleanup.policy": "compact"}
