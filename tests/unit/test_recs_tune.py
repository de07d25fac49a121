"""Self-tuning (pipeline.recs.tune): the budget, the validation split, and a choice that beats popularity.

The fixture is a store of windows over four taste clusters with a popular
head that everyone watches: a tuned model must find the clusters, which the
popular list cannot.
"""

from __future__ import annotations

import itertools
import random

import pytest

from pipeline.recs import tune as tune_module
from pipeline.recs.compare import Popularity
from pipeline.recs.evaluate import evaluate
from pipeline.recs.matrix import InteractionStore
from pipeline.recs.search_space import RECENCY_PROBES
from pipeline.recs.tune import TuneResult, apply_setting, tune, validation_split
from pipeline.settings import TrainerSettings
from pipeline.sources.ratings import Rating

HOUR = 3_600_000
CLUSTERS, USERS_PER, TITLES_PER, HEAD = 4, 25, 15, 5


def cluster_store(seed: int = 0) -> tuple[InteractionStore, list[Rating]]:
    """Each user watches the popular head and a random half of their cluster's titles, one per hour."""
    rng = random.Random(seed)
    store, ratings = InteractionStore(), []
    for c, u in itertools.product(range(CLUSTERS), range(USERS_PER)):
        user = f"u{c}-{u}"
        titles = [f"h{i}" for i in range(HEAD)] + rng.sample([f"c{c}-{i}" for i in range(TITLES_PER)], 8)
        rng.shuffle(titles)
        for hour, title in enumerate(titles):
            end = (hour + 1) * HOUR
            store.add(
                {
                    "user": user,
                    "content_id": title,
                    "window_start": end - HOUR,
                    "window_end": end,
                    "watched_ms": rng.randint(5, 45) * 60_000,
                    "plays": 1,
                    "completed": rng.random() < 0.5,
                    "events": 3,
                }
            )
            ratings.append(Rating(user, title, 5.0, end // 1000))
    return store, ratings


def settings(**kw: object) -> TrainerSettings:
    return TrainerSettings(threads=1, factors=8, iterations=5, **kw)  # type: ignore[arg-type]


def test_a_tiny_budget_stops_after_the_first_trial_with_a_valid_setting() -> None:
    store, _ = cluster_store()
    result = tune(store, settings(tune_budget_s=1e-9, tune_trials=50))
    assert result.trials == 1 and result.reason == "budget"
    assert result.validation_ndcg_at_10 is not None
    assert result.setting["factors"] == 8  # the setting in force: always valid
    apply_setting(TrainerSettings(), result)  # it applies (pydantic validates every field)


def test_the_budget_holds_on_a_fake_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each trial costs 1 s on the clock; a 5.5 s budget never lets a trial end past it."""
    store, _ = cluster_store()
    now = [0.0]

    def one_second(*_: object) -> float:
        now[0] += 1.0
        return 0.5

    monkeypatch.setattr(tune_module, "_score", one_second)
    result = tune(store, settings(tune_budget_s=5.5, tune_trials=50), clock=lambda: now[0])
    assert result.trials == 5 and result.reason == "budget" and result.seconds <= 5.5


def test_tuning_off_keeps_the_setting_in_force() -> None:
    store, _ = cluster_store()
    result = tune(store, settings(tune_budget_s=0))
    assert result.trials == 0 and result.reason == "tuning off" and result.validation_ndcg_at_10 is None
    assert apply_setting(settings(), result) == settings()


def test_too_little_data_is_not_tuned() -> None:
    result = tune(InteractionStore(), settings())
    assert result.trials == 0 and result.reason == "too little data"


def test_the_validation_split_holds_out_whole_newest_titles_of_the_training_part_only() -> None:
    store, _ = cluster_store()
    train_store, evaluation = store.temporal_split(0.2)  # what the caller keeps for itself
    pairs = train_store.pairs()
    fit, validation = validation_split(pairs, 0.2)
    seen = {(fit.user_ids[u], fit.item_ids[i]) for u, i in zip(fit.user, fit.item, strict=True)}
    held = {(u, c) for u, titles in validation.items() for c in titles}
    trained = {(pairs.user_ids[u], pairs.item_ids[i]) for u, i in zip(pairs.user, pairs.item, strict=True)}
    assert held and not held & seen  # whole titles out of the fit
    assert held <= trained  # only the training part's titles
    assert not held & {(u, c) for u, titles in evaluation.items() for c in titles}
    started = {
        (pairs.user_ids[u], pairs.item_ids[i]): (t, q)
        for u, i, t, q in zip(pairs.user, pairs.item, pairs.first_start, pairs.first_seq, strict=True)
    }
    for user, titles in validation.items():  # the ones started last, in arrival order within an hour
        kept = [t for (u, c), t in started.items() if u == user and (u, c) in seen]
        assert min(started[(user, c)] for c in titles) > max(kept)


def test_the_chosen_setting_beats_popularity_on_known_clusters() -> None:
    store, ratings = cluster_store()
    train_store, heldout = store.temporal_split(0.2)
    result = tune(train_store, settings(tune_trials=12, tune_budget_s=120))
    assert isinstance(result, TuneResult) and result.family == "als" and result.trials == 12
    from pipeline.recs.als import train

    model = train(train_store, apply_setting(settings(), result))
    ours = evaluate(model, heldout)["ndcg_at_10"]
    held = {(u, c) for u, titles in heldout.items() for c in titles}
    popular = evaluate(Popularity([r for r in ratings if (r.user_id, r.content_id) not in held]), heldout)
    assert ours > 1.5 * popular["ndcg_at_10"], (ours, popular)


def test_a_seed_makes_the_choice_deterministic() -> None:
    store, _ = cluster_store()
    a = tune(store, settings(tune_trials=6, tune_budget_s=120))
    b = tune(store, settings(tune_trials=6, tune_budget_s=120))
    assert (a.family, a.setting, a.validation_ndcg_at_10) == (b.family, b.setting, b.validation_ndcg_at_10)


@pytest.mark.parametrize("family", ["ease", "itemknn"])
def test_enabled_families_are_searched(family: str) -> None:
    store, _ = cluster_store()
    result = tune(store, settings(tune_trials=10, tune_budget_s=120, families=["als", family]))
    assert result.family in {"als", family} and result.validation_ndcg_at_10 is not None


@pytest.mark.parametrize("in_force", [None, 50.0])
def test_recency_is_searched_and_probed_right_after_the_setting_in_force(
    monkeypatch: pytest.MonkeyPatch, in_force: float | None
) -> None:
    store, _ = cluster_store()
    tried: list[tuple[float | None, float]] = []

    def score(pairs: object, heldout: object, family: str, s: TrainerSettings) -> float:
        tried.append((s.recency_half_life_titles, s.alpha))
        return 0.5 if s.recency_half_life_titles in (None, 50.0) else 0.9  # only another half-life helps

    monkeypatch.setattr(tune_module, "_score", score)
    base = settings(tune_trials=12, tune_budget_s=60, recency_half_life_titles=in_force)
    result = tune(store, base)
    assert tried[0] == (in_force, base.alpha)  # the setting in force first
    probes = [(half_life, pytest.approx(base.alpha * factor)) for half_life, factor in RECENCY_PROBES]
    assert tried[1:3] == probes  # then recency at each probe's half-life, alpha raised to match
    assert None in [h for h, _ in tried[3:]]  # off stays a candidate of the sampler
    half_life = result.setting["recency_half_life_titles"]
    assert half_life is not None and 2.0 <= half_life <= 500.0 and half_life != in_force
    assert apply_setting(TrainerSettings(), result).recency_half_life_titles == half_life


@pytest.mark.parametrize(("other", "replaced"), [(0.505, False), (0.6, True)])
def test_the_setting_in_force_is_replaced_only_when_clearly_better(
    monkeypatch: pytest.MonkeyPatch, other: float, replaced: bool
) -> None:
    store, _ = cluster_store()

    def score(pairs: object, heldout: object, family: str, s: TrainerSettings) -> float:
        return 0.5 if s.factors == 8 and s.weighting == "log" else other

    monkeypatch.setattr(tune_module, "_score", score)
    result = tune(store, settings(tune_trials=4, tune_budget_s=60, tune_min_gain=0.02))
    assert result.default_ndcg_at_10 == 0.5
    assert result.validation_ndcg_at_10 == (other if replaced else 0.5)
    assert ("setting in force kept" in result.reason) is not replaced


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_on_data_unlike_movielens_the_tuned_pipeline_beats_every_baseline() -> None:
    """The synthetic world (the demo's): the fixed defaults lose to a grid-tuned ALS, the tuner does not.

    The pipeline is simulated without Kafka (sessions → hourly windows → store), the
    baselines are ``privrec eval``'s on the raw training ratings of the same split.
    """
    from pipeline.recs.als import train
    from pipeline.recs.compare import compare_baselines
    from pipeline.recs.evaluate import temporal_split
    from pipeline.sources import synthetic_ratings
    from tests.support.pipeline_eval import windows_from_ratings

    ratings = synthetic_ratings(users=2000, items=400, events_target=50_000, seed=5)
    split = temporal_split(ratings, 0.2)
    store, _ = windows_from_ratings(split.train, seed=7)
    base = TrainerSettings(tune_budget_s=240)  # trials, not the shared machine's speed, decide
    result = tune(store, base)
    assert result.reason == "trials" and result.trials == base.tune_trials
    ours = evaluate(train(store, apply_setting(base, result)), split.heldout)["ndcg_at_10"]
    baselines = compare_baselines(split.train, split.heldout, seed=42)
    best = max(b["ndcg_at_10"] for b in baselines.values() if b["ndcg_at_10"] is not None)
    assert ours >= best, (ours, {k: b["ndcg_at_10"] for k, b in baselines.items()})


def test_a_user_sample_keeps_each_sampled_users_pairs_renumbered_and_their_heldout_only() -> None:
    from pipeline.recs.tune import sample_users

    store = InteractionStore()
    for u in range(6):
        for t in range(u + 1):  # user u has u + 1 titles: each user's pair count is distinct
            store.add(
                {
                    "user": f"u{u}",
                    "content_id": f"t{t}",
                    "window_start": HOUR * t,
                    "window_end": HOUR * (t + 1),
                    "watched_ms": 60_000,
                    "plays": 1,
                    "completed": False,
                }
            )
    pairs = store.pairs()
    heldout = {f"u{u}": {"t0"} for u in range(6)}
    sub, kept = sample_users(pairs, heldout, max_users=3, seed=1)
    assert len(sub.user_ids) == 3 and set(kept) == set(sub.user_ids)
    assert sub.item_ids == pairs.item_ids  # titles keep their columns
    for row, user in enumerate(sub.user_ids):
        count = int(user[1:]) + 1
        assert int((sub.user == row).sum()) == count  # every pair of a sampled user, under its new row
    assert len(sub) == sum(int(u[1:]) + 1 for u in sub.user_ids)
    assert sample_users(pairs, heldout, max_users=6, seed=1)[0] is pairs  # under the cap: unchanged


def test_the_sampler_is_told_the_probes_scores(monkeypatch: pytest.MonkeyPatch) -> None:
    """TPE learns from every trial in its study: the probes, run outside it, are added to it."""
    import optuna

    store, _ = cluster_store()
    studies: list[optuna.Study] = []
    create = optuna.create_study

    def capture(*args: object, **kwargs: object) -> optuna.Study:
        studies.append(create(*args, **kwargs))  # type: ignore[arg-type]
        return studies[-1]

    monkeypatch.setattr(optuna, "create_study", capture)

    def score(pairs: object, heldout: object, family: str, s: TrainerSettings) -> float:
        return 0.3 + 0.01 * (s.recency_half_life_titles or 0)

    monkeypatch.setattr(tune_module, "_score", score)
    base = TrainerSettings(tune_trials=5, tune_budget_s=60, factors=64)
    tune(store, base)
    told = [t for t in studies[0].trials if t.user_attrs.get("probe")]
    assert [(t.params["recency_half_life_titles"], t.value) for t in told] == [
        (half_life, pytest.approx(0.3 + 0.01 * half_life)) for half_life, _ in RECENCY_PROBES
    ]
    assert len(studies[0].trials) == 2 + (5 - 3)  # the probes, then the sampler's remaining trials
