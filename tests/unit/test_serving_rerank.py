"""The xQuAD head/tail re-rank (serving.rerank = xquad): hand-computed orders, and the reader's compose."""

from __future__ import annotations

import pytest

from pipeline.recs.types import Recommendation, UserRecs
from pipeline.serving.controls import Controls
from pipeline.serving.layout import Layout
from pipeline.serving.rerank import Rerank, xquad
from pipeline.serving.response import compose
from pipeline.settings import load_settings


def recs(*pairs: tuple[str, float]) -> list[Recommendation]:
    return [Recommendation(content_id=c, score=s) for c, s in pairs]


# scores 1.0, 0.9, 0.8 (head), 0.5, 0.0 (tail) → rel 1, 0.8, 0.6, 0, -; min-max over [0, 1]
CANDIDATES = recs(("h1", 1.0), ("h2", 0.9), ("h3", 0.8), ("t1", 0.5), ("t2", 0.0))
HEAD = frozenset({"h1", "h2", "h3"})


def ids(items: list[Recommendation]) -> list[str]:
    return [r.content_id for r in items]


def test_lambda_zero_keeps_the_model_order() -> None:
    assert ids(xquad(CANDIDATES, HEAD, 3, 0.0)) == ["h1", "h2", "h3"]


def test_hand_computed_order() -> None:
    # λ = 0.5; |head| = 3, |tail| = 2; cover(c) = 0.5 · (1 − 1/|C|)^k
    # step 1: h1 = .5·1 + .5·.5 = .75; t1 = .5·.5 + .5·.5 = .5        → h1
    # step 2: h2 = .5·.9 + .5·.5·(2/3) = .6167; t1 = .5              → h2
    # step 3: h3 = .5·.8 + .5·.5·(4/9) = .5111; t1 = .5              → h3
    # step 4: t1 = .5 (cover .5·(1/2)^0); nothing head left above it   → t1
    assert ids(xquad(CANDIDATES, HEAD, 4, 0.5)) == ["h1", "h2", "h3", "t1"]
    # λ = 0.8: step 1 h1 = .2·1 + .8·.5 = .6; t1 = .2·.5 + .8·.5 = .5 → h1
    # step 2: h2 = .2·.9 + .8·.5·(2/3) = .4467; t1 = .5 → t1
    assert ids(xquad(CANDIDATES, HEAD, 2, 0.8)) == ["h1", "t1"]


def test_rerank_never_drops_below_n_nor_invents() -> None:
    out = xquad(CANDIDATES, HEAD, 10, 0.9)
    assert sorted(ids(out)) == sorted(ids(CANDIDATES))


def test_compose_applies_the_policy_after_hiding() -> None:
    popular = recs(("h1", 9), ("h2", 8), ("h3", 7))
    user = UserRecs(full=CANDIDATES)
    plain = compose(version="v", pseudonym=None, recs=user, controls=Controls(), popular=popular, n=2)
    assert ids(plain.items) == ["h1", "h2"]
    hidden = Controls(hidden=frozenset({"h1"}))
    reranked = compose(
        version="v",
        pseudonym=None,
        recs=user,
        controls=hidden,
        popular=popular,
        n=2,
        rerank=Rerank("xquad", 0.8),
    )
    # without h1, rel over h2, h3, t1, t2 = 1, .889, .556, 0; |head| = 2, |tail| = 2
    # step 1: h2 = .2·1 + .8·.5 = .6; t1 = .2·.556 + .8·.5 = .511 → h2
    # step 2: h3 = .2·.889 + .8·.5·(1/2) = .378; t1 = .511 → t1
    assert ids(reranked.items) == ["h2", "t1"]
    assert reranked.source == "full" and reranked.personalized


def test_layout_carries_the_setting() -> None:
    layout = Layout.from_settings(load_settings(serving={"rerank": "xquad", "rerank_lambda": 0.2}))
    assert layout.rerank == Rerank("xquad", 0.2) and layout.rerank.active
    assert not Layout.from_settings(load_settings()).rerank.active


@pytest.mark.parametrize("lam", [-0.1, 1.5])
def test_lambda_bounds(lam: float) -> None:
    from pipeline.errors import ConfigError

    with pytest.raises(ConfigError):
        load_settings(serving={"rerank_lambda": lam})
