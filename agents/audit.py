"""The ethics audit of a live deployment: read the model, the stores and the topics; write the report.

:func:`collect_audit` gathers plain records (the live model's artefact and
recommendations, the ``consent``, ``erasure``, ``receipts`` and dead-letter
topics, worker stats and the export counter in Redis, the DP ledger through
:data:`BUDGET_SOURCE`) and hands them to the pure :mod:`pipeline.audit`.
:func:`write_audit` stores the result: JSON to the ``audits`` topic and
``<state_dir>/audits/audit-<time>.json|.html``. :func:`audit_after_retrain` is
what the continuous trainer calls after each full retrain; it never raises.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec
from kafka.errors import KafkaError
from redis.exceptions import ConnectionError as RedisConnectionError

from pipeline.audit import BudgetSource, BudgetView, assemble, recommender_figures, render_html
from pipeline.audit.data import (
    ConsentEvent,
    consent_changes_by_day,
    consent_mix,
    drops_by_reason,
    receipt_seconds,
)
from pipeline.audit.holdout import split_matrix
from pipeline.audit.report import mean_ndcg
from pipeline.errors import ValidationFailed
from pipeline.files import write_private
from pipeline.kafka.consumer import BULK_FETCH_BYTES
from pipeline.kafka.topics import Topic, topic_specs
from pipeline.keys import pseudonymizer
from pipeline.ops.keys import exports_key
from pipeline.services.connect import Endpoints, kafka_consumer, redis_client, resolve, topic_tail
from pipeline.serving.layout import Layout
from pipeline.serving.publish import live_meta, live_version
from pipeline.serving.rerank import xquad
from pipeline.settings import Settings
from pipeline.wire import decode_consent
from pipeline.wire.outbound import DeadLetter
from pipeline.wire.rights import ErasureRequest, Receipt

__all__ = [
    "BUDGET_SOURCE",
    "audit_after_retrain",
    "audits_dir",
    "collect_audit",
    "demo_audit",
    "latest_audit",
    "write_audit",
]

log = logging.getLogger(__name__)


def dp_ledger(settings: Settings, redis: Any) -> BudgetView:
    """The privacy-budget section from the ``dp.ledger`` topic (aggregates only, never a viewer)."""
    del redis
    from agents.trending import ledger_store
    from pipeline.dp.ledger import releases, spent_by_day

    store = ledger_store(settings, resolve(settings))
    try:
        records = store.read()
    finally:
        store.close()
    made = [
        {
            "day": r.day,
            "mechanism": r.mechanism,
            "epsilon": r.epsilon,
            "delta": r.delta,
            "max_titles_per_viewer": r.max_titles,
            "noise_scale": r.scale,
            "threshold": r.threshold,
            "titles_released": len(r.items),
            "at_ms": r.at_ms,
        }
        for r in releases(records)
    ]
    return BudgetView(
        epsilon_budget_per_day=settings.dp.epsilon_per_day,
        epsilon_spent_by_day={day: eps for day, (eps, _) in spent_by_day(records).items()},
        releases=made,
        source="dp.ledger topic",
    )


BUDGET_SOURCE: BudgetSource = dp_ledger
"""Where the privacy-budget section comes from: the DP ledger (``no_ledger``: none)."""

K = 10
_dead = msgspec.json.Decoder(DeadLetter)
_request = msgspec.json.Decoder(ErasureRequest)
_receipt = msgspec.json.Decoder(Receipt)


def audits_dir(settings: Settings) -> Path:
    return Path(settings.state_dir) / "audits" / settings.app_id


# -- the model -------------------------------------------------------------------------


def _served(model: Any, users: list[str], settings: Settings, head: frozenset[str]) -> dict[str, list[str]]:
    """Each viewer's top-10 as the reader serves it (the configured re-rank over the published top-N)."""
    serving = settings.serving
    if serving.rerank == "none" or serving.rerank_lambda <= 0:
        return model.recommend_ids(users, K)
    n = max(model.settings.top_n, K)
    out: dict[str, list[str]] = {}
    for user, recs in model.recommend_all(n, recent_days=None, explain=False).items():
        out[user] = [r.content_id for r in xquad(recs.full, head, K, serving.rerank_lambda)]
    return out


def _histories(model: Any) -> dict[str, list[str]]:
    m = model.matrix
    ids = model.item_ids
    return {
        u: [ids[c] for c in m.indices[m.indptr[r] : m.indptr[r + 1]]] for r, u in enumerate(model.user_ids)
    }


def _popularity_baseline(train: Any, users: dict[int, set[int]]) -> dict[int, list[int]]:
    import numpy as np

    counts = np.bincount(train.indices, minlength=train.shape[1])
    order = np.lexsort((np.arange(train.shape[1]), -counts)).tolist()
    out: dict[int, list[int]] = {}
    for r in users:
        seen = set(train.indices[train.indptr[r] : train.indptr[r + 1]].tolist())
        out[r] = [c for c in order[: K + len(seen)] if c not in seen][:K]
    return out


def _holdout(
    model: Any, settings: Settings, head: frozenset[str]
) -> tuple[dict, dict, dict[str, float | None]]:
    """The family and setting refitted on each viewer's older 80%; lists, held-out titles, baselines."""
    from pipeline.recs import TrainingError
    from pipeline.recs.family import make_family

    matrix, held = split_matrix(model.matrix, model.last_seen, settings.trainer.holdout_fraction)
    users, items = model.user_ids, model.item_ids
    heldout = {users[r]: {items[c] for c in cols} for r, cols in held.items()}
    try:
        fitted = make_family(getattr(model, "name", "als"), model.settings)
        fitted.fit((matrix, users, items))
    except TrainingError:
        return {}, {}, {}
    recs = _served(fitted, sorted(heldout), settings, head)
    popular = {users[r]: [items[c] for c in lst] for r, lst in _popularity_baseline(matrix, held).items()}
    return recs, heldout, {"popularity": mean_ndcg(popular, heldout, K)}


def model_section(
    model: Any, settings: Settings, meta: Mapping[str, Any] | None, analytics: set[str]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, float | None]]:
    """(model facts, figures, NDCG baselines) of ``model`` as served under ``settings``."""
    head = frozenset(p.content_id for p in model.popular(settings.serving.popular_n))
    histories = _histories(model)
    recs = _served(model, list(model.user_ids), settings, head)
    holdout_recs, heldout, baselines = _holdout(model, settings, head)
    meta = dict(meta or model.meta())
    trained = dict(meta.get("metrics") or {})
    if trained.get("ndcg_at_10") is not None:
        baselines["trainer_holdout"] = trained["ndcg_at_10"]
    figures = recommender_figures(
        recs,
        histories,
        model.item_ids,
        analytics=analytics,
        holdout_recs=holdout_recs,
        heldout=heldout,
        k=K,
        max_pairs=settings.audit.personalisation_pairs,
    )
    s = meta.get("settings") or {}
    facts = {
        "version": meta.get("version", model.version),
        "family": meta.get("family", "als"),
        "setting": {
            **{k: s[k] for k in ("factors", "regularization", "iterations", "alpha", "weighting") if k in s},
            **_tuning_rows(trained.get("tuning") or {}),
        },
        "trained_at": meta.get("trained_at"),
        "n_users": model.n_users,
        "n_items": model.n_items,
        "n_interactions": model.n_interactions,
        "metrics": trained,
    }
    return facts, figures, baselines


def _tuning_rows(tuning: Mapping[str, Any]) -> dict[str, Any]:
    """How the setting was chosen (``pipeline.recs.tune``), as rows of the audit's setting table."""
    if tuning.get("validation_ndcg_at_10") is None:
        return {"self-tuned": f"no ({tuning.get('reason', 'not run')})"} if tuning else {}
    return {
        "self-tuned: validation NDCG@10": tuning["validation_ndcg_at_10"],
        "self-tuned: previous setting's validation NDCG@10": tuning.get("default_ndcg_at_10"),
        "self-tuned: trials": tuning.get("trials"),
        "self-tuned: seconds": tuning.get("seconds"),
    }


def load_live_model(settings: Settings, redis: Any) -> tuple[Any, dict[str, Any] | None]:
    """The live version's artefact and meta, or (None, meta) when it is not on this host."""
    from pipeline.recs.family import load_family

    layout = Layout.from_settings(settings)
    version = live_version(redis, layout)
    if version is None:
        return None, None
    path = Path(settings.state_dir) / "models" / settings.app_id / version
    meta = live_meta(redis, layout)
    if not path.exists():
        log.warning("audit: live model artefact not found under the state dir")
        return None, meta
    return load_family(path), meta


# -- the topics -------------------------------------------------------------------------


def _read_topics(settings: Settings, endpoints: Endpoints, names: list[str], timeout_s: float) -> list[Any]:
    consumer = kafka_consumer(endpoints, "audit", unique=True, max_partition_fetch_bytes=BULK_FETCH_BYTES)
    try:
        existing = consumer.topics()
        topics = [settings.topic(n) for n in names if settings.topic(n) in existing]
        if not topics:
            return []
        records: list[Any] = []
        tail = topic_tail(endpoints, consumer, topics, settings.partitions)
        tail.read_to_end(records.append, timeout_s)
        return records
    finally:
        consumer.close()


def data_section(
    settings: Settings, endpoints: Endpoints, redis: Any, timeout_s: float = 120.0
) -> tuple[dict[str, Any], set[str]]:
    """Consent, drops, dead letters, retention, erasures, exports; and the analytics-consented pseudonyms."""
    from agents.pipeline_run import sum_counters
    from agents.procs import worker_stats

    names = {
        n: settings.topic(n)
        for n in (Topic.CONSENT, Topic.ERASURE, Topic.RECEIPTS, Topic.DLQ, Topic.TRAINER_DLQ)
    }
    consent: list[ConsentEvent] = []
    dlq: dict[str, dict[str, int]] = {Topic.DLQ: {}, Topic.TRAINER_DLQ: {}}
    requests: dict[str, int] = {}
    receipts: dict[str, int] = {}
    unreadable = 0
    by_topic = {v: k for k, v in names.items()}
    for r in _read_topics(settings, endpoints, list(names), timeout_s):
        kind = by_topic.get(r.topic)
        try:
            if kind == Topic.CONSENT:
                user = (r.key or b"").decode("utf-8", "replace")
                rec = decode_consent(r.value)
                if rec is None:
                    consent.append(ConsentEvent(user, int(r.timestamp), None))
                else:
                    consent.append(ConsentEvent(user, rec.updated_at_ms, msgspec.to_builtins(rec.purposes)))
            elif kind == Topic.ERASURE and r.value is not None:
                req = _request.decode(r.value)
                requests[req.request_id] = req.requested_at
            elif kind == Topic.RECEIPTS and r.value is not None:
                rec = _receipt.decode(r.value)
                receipts[rec.request_id] = rec.completed_at
            elif kind in dlq and r.value is not None:
                reason = _dead.decode(r.value).reason
                dlq[kind][reason] = dlq[kind].get(reason, 0) + 1
        except (ValidationFailed, msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError):
            unreadable += 1
    if unreadable:
        log.warning("audit: %d records could not be read and were skipped", unreadable)
    counters = sum_counters(worker_stats(redis, settings.app_id))
    raw_exports = redis.get(exports_key(settings.app_id))
    pz = pseudonymizer(settings)
    latest: dict[str, Any] = {}
    for e in sorted(consent, key=lambda e: e.at_ms):
        latest[e.user] = e.purposes
    analytics = {pz.pseudonym(u) for u, p in latest.items() if p and p.get("analytics")}
    data = {
        "consent_mix": consent_mix(consent),
        "consent_by_day": consent_changes_by_day(consent),
        "drops_by_reason": drops_by_reason(counters),
        "events_received": int(counters.get("received", 0)),
        "dlq_by_reason": {k: dict(sorted(v.items())) for k, v in dlq.items()},
        "retention": {
            spec.name: {"retention_ms": spec.retention_ms(settings), "cleanup": spec.cleanup}
            for _, spec in topic_specs(settings)
        },
        "erasure_receipt_seconds": receipt_seconds(requests, receipts),
        "exports_served": int(raw_exports or 0),
        "unreadable_records": unreadable,
    }
    return data, analytics


# -- the report -------------------------------------------------------------------------


def collect_audit(
    settings: Settings,
    endpoints: Endpoints | None = None,
    *,
    model: Any = None,
    budget_source: BudgetSource | None = None,
    clock: Any = time.time,
) -> dict[str, Any]:
    """A fresh ``audit.v1`` report of the deployment (``model``: the live one when omitted)."""
    endpoints = endpoints or resolve(settings)
    redis = redis_client(endpoints)
    try:
        data, analytics = data_section(settings, endpoints, redis)
        meta = None
        if model is None:
            model, meta = load_live_model(settings, redis)
        facts = figures = None
        baselines: dict[str, float | None] = {}
        if model is not None:
            facts, figures, baselines = model_section(model, settings, meta, analytics)
        budget = (budget_source or BUDGET_SOURCE)(settings, redis)
    finally:
        redis.close()
    return assemble(
        generated_at_ms=int(clock() * 1000),
        model=facts,
        figures=figures,
        ndcg_baselines=baselines,
        data=data,
        budget=budget,
        cfg=settings.audit,
        rerank=settings.serving.rerank,
    )


def write_audit(settings: Settings, report: dict[str, Any], *, producer: Any = None) -> Path:
    """Store ``report``: ``<state_dir>/audits/<app_id>/audit-<time>.json|.html``.

    With a producer, the JSON also goes to the ``audits`` topic (key: model version).
    Returns the HTML path.
    """
    folder = audits_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(report["generated_at"] / 1000))
    base = folder / f"audit-{stamp}-{uuid.uuid4().hex[:4]}"
    body = json.dumps(report, sort_keys=True).encode()
    write_private(base.with_suffix(".json"), body)
    html_path = base.with_suffix(".html")
    write_private(html_path, render_html(report))
    if producer is not None:
        key = ((report.get("model") or {}).get("version") or "none").encode()
        producer.send(settings.topic(Topic.AUDITS), key=key, value=body)
        producer.flush(timeout=10)
    return html_path


def latest_audit(settings: Settings) -> tuple[dict[str, Any], Path] | None:
    """The newest stored report and its HTML path, or None."""
    folder = audits_dir(settings)
    files = sorted(folder.glob("audit-*.json")) if folder.exists() else []
    if not files:
        return None
    return json.loads(files[-1].read_text()), files[-1].with_suffix(".html")


def audit_after_retrain(trainer: Any, model: Any) -> Path | None:
    """The trainer's hook: audit the model it just published. Never raises (counted and logged)."""
    settings = trainer.settings
    try:
        report = collect_audit(settings, model=model)
        path = write_audit(settings, report, producer=trainer.producer)
        trainer._count("audits_written")
        return path
    except (KafkaError, RedisConnectionError) as exc:  # an outage: one line with the reason, no traceback
        trainer._count("audits_failed")
        log.warning("audit after retrain not completed: %s; the next retrain audits again", _reason(exc))
        return None
    except Exception:
        trainer._count("audits_failed")
        log.exception("audit after retrain failed; the trainer goes on")
        return None


def _reason(exc: BaseException) -> str:
    service = "redis" if isinstance(exc, RedisConnectionError) else "broker"
    return f"{service} unreachable ({type(exc).__name__})"


def demo_audit(settings: Settings) -> str | None:
    """``privrec demo``'s audit: computed, stored and its HTML path returned; None (logged) on failure."""
    from pipeline.services.connect import kafka_producer

    try:
        endpoints = resolve(settings)
        producer = kafka_producer(endpoints)
        try:
            return str(write_audit(settings, collect_audit(settings, endpoints), producer=producer))
        finally:
            producer.close(timeout=10)
    except Exception:
        log.exception("demo audit failed")
        return None
