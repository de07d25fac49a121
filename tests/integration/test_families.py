"""Every model family in production, on the real Redis: publish, explain, fold in, erase, export; the gate.

The trainer runs in this process on records handed to it (as its tail would),
so its model can be inspected; ALS is covered by the rest of the suite, so the
opt-in families run here. The last test shows the stricter gate: a candidate
that cannot beat popularity is refused and the popular list is served,
labelled as such in responses and in ``privrec status``.
"""

from __future__ import annotations

import json

import pytest
import redis as redis_lib

from agents.export import read_serving
from agents.procs import settings_env
from agents.trainer import Trainer
from pipeline.keys import pseudonymizer
from pipeline.recs.family import load_family
from pipeline.recs.history import read_runs
from pipeline.services.connect import resolve
from pipeline.serving import live_meta, live_version
from pipeline.serving.reader import Reader
from pipeline.sources import synthetic_ratings
from tests.cli import privrec
from tests.support.trainer_records import TrainerRecords

pytestmark = pytest.mark.integration

HOUR = 3_600_000
T0 = 1_700_000_000_000 - 1_700_000_000_000 % HOUR
FULL = {"analytics": True, "personalization": True, "advertising": False}


@pytest.fixture
def make_trainer(make_settings, redis_url):
    made: list[Trainer] = []
    client = redis_lib.Redis.from_url(redis_url)

    def make(**trainer: object) -> Trainer:
        settings = make_settings(trainer={"factors": 8, "iterations": 5, **trainer})
        t = Trainer(settings, tail=None, redis=client, pseudonymizer=pseudonymizer(settings))
        made.append(t)
        return t

    yield make
    for t in made:
        for key in client.scan_iter(match=t.layout.all_pattern(), count=1000):
            client.unlink(key)
    client.close()


def _feed(trainer: Trainer, views: list[tuple[str, str, int]]) -> TrainerRecords:
    """Consent for every viewer, then their windows ``(viewer, title, hour)``, through the core."""
    log = TrainerRecords(trainer.topics, trainer.pz)
    viewers = sorted({v for v, _, _ in views})
    records = [log.consent(v, FULL, updated=1, at=1) for v in viewers]
    records += [log.window(v, T0 + hour * HOUR, at=T0, content=c) for v, c, hour in views]
    trainer.apply(records)
    return log


def _synthetic_views(users: int = 120, items: int = 60) -> list[tuple[str, str, int]]:
    ratings = synthetic_ratings(users=users, items=items, events_target=8_000, seed=5)
    return [(r.user_id, r.content_id, k) for k, r in enumerate(ratings)]


def _mentions(client: redis_lib.Redis, pattern: str, needle: str) -> list[str]:
    found = []
    for key in client.scan_iter(match=pattern, count=1000):
        if needle in key.decode() or (
            client.type(key) == b"string" and needle.encode() in (client.get(key) or b"")
        ):
            found.append(key.decode())
    return found


@pytest.mark.parametrize("family", ["ease", "itemknn"])
def test_a_family_publishes_explains_folds_in_erases_and_exports(make_trainer, family):
    trainer = make_trainer(families=[family])
    log = _feed(trainer, _synthetic_views())
    s, client, layout = trainer.settings, trainer.redis, trainer.layout

    report = trainer.train_and_publish()
    assert report.published and report.serving == family, report.reason
    assert report.metrics["ndcg_at_10"] > report.metrics["popularity_ndcg_at_10"]
    meta = live_meta(client, layout)
    assert meta is not None and meta["family"] == family and meta["version"] == report.version
    assert trainer.model is not None and trainer.model.name == family
    (run,) = read_runs(client, layout.model_runs, 1)  # privrec models names the family
    assert run.family == family and run.version == report.version

    reader = Reader(client, trainer.pz, layout)
    viewers = sorted({v for v, _, _ in _synthetic_views()})
    responses = [reader.get(v, 10) for v in viewers[:20]]
    assert all(r.personalized and r.source == "full" and r.model is None for r in responses)
    reasons = {b for r in responses for item in r.items for b in item.because}
    assert all(item.because for r in responses for item in r.items if item.score > 0)
    assert len(reasons) > 10  # the reasons differ between viewers and titles

    # a viewer's new windows are folded in and republished without a retrain
    newcomer = "viewer-new"
    trainer.apply([log.consent(newcomer, FULL, updated=1, at=2)])
    trainer.apply(
        [log.window(newcomer, T0 + (9000 + k) * HOUR, at=T0, content=f"c{k:04d}") for k in range(3)]
    )
    assert trainer.refresh_dirty() == 1
    fresh = reader.get(newcomer, 5)
    assert fresh.personalized and fresh.version == report.version

    # export reads the viewer's published recommendations through the same reader
    victim = viewers[3]
    recs, _ = read_serving(s, resolve(s), trainer.pz, victim, trainer.pz.candidates(victim), 10)
    assert recs["personalized"] and recs["version"] == report.version and recs["items"][0]["because"]

    # erasure: rows out of the live model and its artefact, cache entries deleted, receipt issued
    pseudonym = trainer.pz.pseudonym(victim)
    trainer.apply([log.erasure(victim, at=T0 + 1), log.stage(victim, "stream", T0 + 2, T0 + 1)])
    assert pseudonym not in trainer.model and pseudonym not in trainer.store.users()
    receipts = trainer.finish_erasures()
    assert [r.pseudonym for r in receipts] == [pseudonym]
    assert _mentions(client, layout.all_pattern(), pseudonym) == []
    assert not reader.get(victim, 10).personalized
    saved = [p for p in trainer.artefacts.iterdir() if not p.name.startswith(".")]
    assert [p.name for p in saved] == [report.version]
    on_disk = load_family(saved[0])
    assert on_disk.name == family and pseudonym not in on_disk and newcomer_in(on_disk, trainer)

    # the next publish (a full retrain) holds no trace either
    again = trainer.train_and_publish(force=True)
    assert again.published and live_version(client, layout) == again.version
    assert pseudonym not in trainer.model and _mentions(client, layout.all_pattern(), pseudonym) == []
    assert all(
        pseudonym not in load_family(p) for p in trainer.artefacts.iterdir() if not p.name.startswith(".")
    )


def newcomer_in(model, trainer: Trainer) -> bool:
    return trainer.pz.pseudonym("viewer-new") in model


def _popularity_is_perfect(groups: int = 40, niche: int = 30) -> list[tuple[str, str, int]]:
    """Each viewer's newest title is the blockbuster they had not seen: popularity scores NDCG 1.

    Group A watched ``hit-a`` early and ``hit-b`` last, group B the reverse; their other
    titles are rare. No model can beat a perfect popularity list on the holdout.
    """
    views = []
    for g in range(groups):
        for side, (first, last) in enumerate((("hit-a", "hit-b"), ("hit-b", "hit-a"))):
            viewer = f"viewer-{side}-{g:02d}"
            rare = [f"rare-{(g * 3 + k + side) % niche:02d}" for k in range(3)]
            views += (
                [(viewer, first, 0)] + [(viewer, c, 1 + k) for k, c in enumerate(rare)] + [(viewer, last, 9)]
            )
    return views


def test_a_candidate_that_cannot_beat_popularity_is_refused_and_popular_is_served(make_trainer):
    trainer = make_trainer()
    _feed(trainer, _popularity_is_perfect())
    s, client, layout = trainer.settings, trainer.redis, trainer.layout

    report = trainer.train_and_publish()
    assert not report.published and report.serving == "popular", report.reason
    assert report.metrics["popularity_ndcg_at_10"] == pytest.approx(1.0)
    assert "popularity" in report.reason and trainer.model is None
    meta = live_meta(client, layout)
    assert meta is not None and meta["family"] == "popular" and live_version(client, layout) == report.version
    assert not (trainer.artefacts.exists() and any(trainer.artefacts.iterdir()))  # no model saved
    # a refused round restarts the schedule: the loop's next step does not train again at once
    trainer._step(trainer.clock(), refresh_due=False)
    assert trainer.new_since_train == 0 and len(read_runs(client, layout.model_runs, 5)) == 1

    response = Reader(client, trainer.pz, layout).get("viewer-0-00", 5)
    assert not response.personalized and response.source == "popular" and response.model == "popular"
    assert [i.content_id for i in response.items][:2] == ["hit-a", "hit-b"]

    shown = privrec("recs", "viewer-0-00", "--json", env=settings_env(s))
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["viewer-0-00"]["model"] == "popular"
    status = privrec("status", "--json", "--lag-samples", "0", env=settings_env(s))
    assert json.loads(status.stdout)["model"]["family"] == "popular", status.stdout[-2000:]
