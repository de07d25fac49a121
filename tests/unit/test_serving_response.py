"""The read-time rules: controls, hidden titles, fill from popular, fallbacks, JSON shape."""

from __future__ import annotations

import msgspec
import pytest

from pipeline.recs.types import PopularItem, Recommendation, UserRecs
from pipeline.serving.controls import Controls
from pipeline.serving.response import RecsResponse, compose, popular_as_recs

FULL = [Recommendation(content_id=f"f{i}", score=1 - i / 100, because=(f"w{i}",)) for i in range(20)]
LIMITED = [Recommendation(content_id=f"l{i}", score=1 - i / 100) for i in range(5)]
RECS = UserRecs(full=FULL, limited=LIMITED)
POPULAR = popular_as_recs([PopularItem(content_id=f"p{i}", score=100 - i) for i in range(30)])
P = "k1." + "0" * 32


NO_CONTROLS = Controls()


def run(recs=RECS, controls=NO_CONTROLS, n=10, version="v1", popular=POPULAR, pseudonym=P):
    return compose(version=version, pseudonym=pseudonym, recs=recs, controls=controls, popular=popular, n=n)


def ids(resp: RecsResponse) -> list[str]:
    return [i.content_id for i in resp.items]


def test_full_is_the_top_n():
    resp = run()
    assert resp.source == "full" and resp.personalized and resp.version == "v1" and resp.user == P
    assert ids(resp) == [f"f{i}" for i in range(10)]
    assert resp.items[0].because == ("w0",)


def test_nothing_published_is_source_none():
    resp = run(version=None, pseudonym=None)
    assert resp == RecsResponse(user=None, personalized=False, version=None, items=[], source="none")


def test_cold_start_gets_popular():
    resp = run(recs=None, pseudonym=None)
    assert resp.source == "popular" and not resp.personalized and resp.user is None
    assert ids(resp) == [f"p{i}" for i in range(10)]
    assert all(i.because == () for i in resp.items)


def test_off_gets_popular_even_with_recs():
    resp = run(controls=Controls(personalization="off"))
    assert resp.source == "popular" and not resp.personalized
    assert ids(resp) == [f"p{i}" for i in range(10)]


def test_limited_gets_limited_list_then_popular():
    resp = run(controls=Controls(personalization="limited"))
    assert resp.source == "limited" and resp.personalized
    assert ids(resp) == [f"l{i}" for i in range(5)] + [f"p{i}" for i in range(5)]


def test_limited_without_a_limited_list_is_popular():
    resp = run(recs=UserRecs(full=FULL), controls=Controls(personalization="limited"))
    assert resp.source == "popular" and not resp.personalized


@pytest.mark.parametrize("mode", ["full", "limited", "off"])
def test_hidden_titles_never_served(mode):
    hidden = frozenset({"f0", "f3", "l1", "p0", "p2"})
    resp = run(controls=Controls(personalization=mode, hidden=hidden), n=25)
    assert not hidden & set(ids(resp))
    assert len(resp.items) == 25


def test_hidden_filter_fills_from_the_rest_of_the_list():
    resp = run(controls=Controls(hidden=frozenset({"f0", "f1"})))
    assert ids(resp) == [f"f{i}" for i in range(2, 12)]


def test_fill_from_popular_skips_titles_already_listed():
    popular = popular_as_recs([PopularItem(content_id=c, score=1.0) for c in ["l0", "p1", "l2", "p2"]])
    resp = run(controls=Controls(personalization="limited"), popular=popular, n=8)
    assert ids(resp) == ["l0", "l1", "l2", "l3", "l4", "p1", "p2"]


def test_everything_hidden_gives_what_is_left():
    hidden = frozenset(i.content_id for i in FULL + POPULAR)
    resp = run(controls=Controls(hidden=hidden))
    assert resp.items == [] and resp.source == "popular"


def test_n_bounds_the_items():
    assert len(run(n=1).items) == 1
    assert len(run(n=40).items) == 40  # 20 personalised + 20 popular


def test_accepts_an_iterable_of_the_selected_list():
    resp = run(recs=iter(FULL))
    assert ids(resp) == [f"f{i}" for i in range(10)]


def test_json_shape():
    body = msgspec.json.decode(msgspec.json.encode(run(n=2)))
    assert body == {
        "user": P,
        "personalized": True,
        "version": "v1",
        "items": [
            {"content_id": "f0", "score": 1.0, "because": ["w0"]},
            {"content_id": "f1", "score": 0.99, "because": ["w1"]},
        ],
        "source": "full",
        "personal_items": 2,  # the prefix from the viewer's own list; omitted when 0
    }


def test_a_popularity_only_version_is_labelled_popular():
    """The gate found no model that beats popularity: every response says so (and the JSON carries it)."""
    resp = run(recs=None, version="20260101T000000Z-abcdef-popular")
    assert resp.source == "popular" and not resp.personalized and resp.model == "popular"
    assert ids(resp) == [f"p{i}" for i in range(10)]
    assert msgspec.to_builtins(resp)["model"] == "popular"
    assert "model" not in msgspec.to_builtins(run())  # a model's version carries no label
