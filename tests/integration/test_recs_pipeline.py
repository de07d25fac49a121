"""Trainer and product commands on the real broker and Redis: gate, consent check, demo, eval."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections import namedtuple
from pathlib import Path

import pytest
import redis

from agents.procs import settings_env
from agents.trainer import Trainer
from pipeline.keys import pseudonymizer
from pipeline.serving import Layout, live_version, publish
from pipeline.sources import consent_record, dataset_root, synthetic_ratings
from tests.cli import privrec

pytestmark = pytest.mark.integration

Record = namedtuple("Record", "topic key value timestamp offset", defaults=(1, 0))
_consent_offsets = itertools.count()  # the trainer orders equal consent times by offset


def _interactions(users: int = 300, items: int = 120, seed: int = 3) -> list[dict]:
    ratings = synthetic_ratings(users=users, items=items, events_target=12_000, seed=seed)
    return [
        {
            "user": f"k1.{hashlib.blake2b(r.user_id.encode(), digest_size=16).hexdigest()}",
            "content_id": r.content_id,
            "window_start": int(r.timestamp_s) * 1000 // 3_600_000 * 3_600_000,
            "window_end": int(r.timestamp_s) * 1000 // 3_600_000 * 3_600_000 + 3_600_000,
            "watched_ms": int(60_000 * r.weight),
            "plays": 1,
            "completed": r.weight > 3,
            "events": 3,
        }
        for r in ratings
    ]


def _consent(topic: str, user: str, *, personalization: bool) -> Record:
    purposes = {"analytics": True, "personalization": personalization, "advertising": False}
    value = json.dumps(consent_record(user, purposes, updated_at_ms=1)).encode()
    return Record(topic, user.encode(), value, offset=next(_consent_offsets))


@pytest.fixture
def trainer(make_settings, redis_url, request):
    settings = make_settings(trainer=getattr(request, "param", {}))
    client = redis.Redis.from_url(redis_url)
    t = Trainer(settings, tail=None, redis=client, pseudonymizer=pseudonymizer(settings))
    yield t
    for key in client.scan_iter(match=t.layout.all_pattern(), count=1000):
        client.unlink(key)
    client.close()


# On this small, sparse world untuned ALS does not beat popularity (the gate's other branch,
# tests/integration/test_families.py); EASE does, so what refuses it here is the live model.
@pytest.mark.parametrize("trainer", [{"families": ["ease"]}], indirect=True)
def test_quality_gate_refuses_a_degraded_model(trainer):
    layout: Layout = trainer.layout
    publish(trainer.redis, layout, "live-1", {}, [], {"metrics": {"ndcg_at_10": 0.99}}, 600)
    trainer.store.add_many(_interactions())

    refused = trainer.train_and_publish()
    assert not refused.published
    assert refused.metrics["ndcg_at_10"] < 0.99 * (1 - trainer.cfg.gate_margin)
    assert "0.99" in refused.reason  # the refusal says why, with the numbers
    assert live_version(trainer.redis, layout) == "live-1"
    assert not (trainer.artefacts.exists() and any(trainer.artefacts.iterdir()))

    forced = trainer.train_and_publish(force=True)
    assert forced.published
    assert live_version(trainer.redis, layout) == forced.version
    assert (trainer.artefacts / forced.version).is_dir()


def test_trainer_refuses_rows_without_personalisation_consent(trainer):
    consent_topic, interactions_topic = trainer.topics["consent"], trainer.topics["interactions"]
    pz = trainer.pz
    allowed, analytics_only = "viewer-a", "viewer-b"
    records = [
        _consent(consent_topic, allowed, personalization=True),
        _consent(consent_topic, analytics_only, personalization=False),
    ]
    for user in (allowed, analytics_only, "viewer-without-record"):
        row = {
            "schema": "interaction.v1",
            "user": pz.pseudonym(user),
            "content_id": "c1",
            "window_start": 0,
            "window_end": 3_600_000,
            "watched_ms": 60_000,
            "plays": 1,
            "completed": False,
            "events": 2,
        }
        records.append(Record(interactions_topic, row["user"].encode(), json.dumps(row).encode()))
    trainer.apply(records)
    assert trainer.store.users() == [pz.pseudonym(allowed)]
    assert trainer.counters["interactions_refused_no_personalization"] == 2

    # withdrawing personalisation removes the row (Art. 21)
    trainer.apply([_consent(consent_topic, allowed, personalization=False)])
    assert trainer.store.users() == []


@pytest.mark.slow
@pytest.mark.timeout(700)
def test_demo_end_to_end(make_settings):
    settings = make_settings(trainer={"tune_budget_s": 60})  # the product's default: self-tuning on
    result = privrec(
        "demo", "--json", "--users", "300", "--items", "150", "--events", "8000",
        env=settings_env(settings),
        timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    stream = summary["stream"]
    assert stream["received"] == summary["events_in"]
    # a fifth of the partitions' viewers sent their events as clients do: HTTP batches, own tokens
    gateway = summary["gateway"]
    assert gateway["partitions"] == [0, 1] and gateway["viewers"] > 0
    assert gateway["statuses"] == {"202": gateway["requests"]}
    assert 0 < gateway["accepted"] == gateway["events_sent"] < summary["events_in"]
    assert stream["dlq"] == {"invalid_json": 1, "schema_violation": 1, "unknown_schema": 1}
    assert stream["dropped"].get("no_consent_record", 0) > 0
    assert stream["windows_emitted"] > 0
    model = summary["model"]
    assert model["published"] and model["users"] == summary["consent"]["personalization"]
    assert model["tuning"]["family"] == "als" and model["tuning"]["trials"] >= 1  # the setting self-tuned
    kinds = {ex["consent"]: ex for ex in summary["examples"]}
    assert kinds["personalization"]["personalized"] is True
    assert kinds["personalization"]["items"]
    assert kinds["analytics only"]["personalized"] is False
    assert {g["group"]: g["lag"] for g in summary["lag"]}[settings.app_id] == 0
    audit = Path(summary["audit"])  # the demo's ethics audit, written to the state dir
    assert audit.suffix == ".html" and audit.parent == settings.state_dir / "audits" / settings.app_id
    report = json.loads(audit.with_suffix(".json").read_text())
    assert (
        report["model"]["n_users"] == model["users"]
        and report["dlq_by_reason"]["playback.dlq"] == stream["dlq"]
    )
    _assert_personal(summary)


def _assert_personal(summary: dict) -> None:
    """The demo's lists are personal: ≤ 50% shared with the popular list, ≥ 2x its in-cluster share.

    Measured on this world: ALS at the fixed (MovieLens-tuned) defaults shares about
    three quarters of its titles with the popular list and draws from the viewer's
    cluster less often than the popular list does; a setting chosen on the deployment's
    own data (the self-tuning trainer, ``pipeline.recs.tune``) is what meets the
    targets.
    """
    overall = summary["personalisation"]
    assert 0 < overall["viewers"] <= summary["consent"]["personalization"] and overall["n"] == 10
    samples = [ex["personalisation"] for ex in summary["examples"] if ex["consent"] == "personalization"]
    assert len(samples) == 2 and all(0 <= p["overlap_with_popular"] <= 1 for p in samples)
    met = overall["overlap_with_popular"] <= 0.5 and (overall["in_cluster_ratio"] or 0) >= 2.0
    assert met, overall


@pytest.mark.slow
@pytest.mark.dataset
@pytest.mark.timeout(1600)
@pytest.mark.parametrize(
    ("name", "min_users"),
    [
        ("movielens-100k", 900),  # measured ratio 1.114 (NDCG@10 0.2049 vs direct ALS 0.1840)
        ("movielens-latest-small", 600),  # measured ratio 1.134 (NDCG@10 0.1283 vs 0.1132)
    ],
)
def test_eval_through_the_full_pipeline_meets_the_baseline(make_settings, name, min_users):
    path = dataset_root() / name
    if not path.exists():
        pytest.skip(f"{name} not found under {dataset_root()} (set PRIVREC_DATASETS)")
    settings = make_settings(trainer={"tune_budget_s": 60})  # the product's default: self-tuning on
    result = privrec(
        "eval", "--dataset", str(path), "--format", "movielens", "--json",
        env=settings_env(settings),
        timeout=1500,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout)
    assert out["users_evaluated"] >= min_users
    assert out["ratio"] >= 1.0, out
    assert set(out["baselines"]) == {"popularity", "itemknn_bm25", "ease", "als_textbook", "als_tuned"}
    assert out["model"]["family"] == "als"  # ALS alone, the default family, meets the goal
    assert out["ratio_vs_best"] >= 1.0, {k: v for k, v in out.items() if k != "baselines"}
