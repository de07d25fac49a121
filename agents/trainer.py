"""The trainer process: interactions (and consent) in, ALS models and Redis recommendations out.

It keeps the user×item matrix in memory, rebuilt at start by reading the
``consent`` and ``interactions`` topics from the beginning (the topics are the
source of truth; a re-emitted window replaces its earlier copy). Then:

* ``--once``: train on everything, evaluate on a per-user temporal holdout, pass
  the quality gate, publish, save the artefact, exit.
* continuous: keep reading; users with new interactions are folded into the
  live model (their vector recomputed against fixed item factors) and their
  recommendations republished within seconds; a full retrain runs every
  ``trainer.retrain_every_s`` or after ``trainer.retrain_after`` new rows.

Only users whose current consent includes personalisation are ever in the
matrix: the stream guarantees it, and the trainer checks it again against the
consent topic, refusing (and counting) anything else. Withdrawing
personalisation removes the user's row, factors and cached recommendations.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from pipeline.privacy.pseudonym import Pseudonymizer
from pipeline.recs import (
    InteractionStore,
    Model,
    TrainingError,
    evaluate,
    quality_gate,
    train,
)
from pipeline.recs.types import UserRecs
from pipeline.serving.layout import Layout
from pipeline.serving.publish import delete_user, live_meta, publish, publish_user
from pipeline.settings import Settings
from pipeline.tail import TopicTail
from pipeline.wire import decode_consent
from pipeline.wire.outbound import Interaction

__all__ = ["TrainReport", "Trainer"]

log = logging.getLogger(__name__)

_interaction = msgspec.json.Decoder(Interaction)


@dataclass
class TrainReport:
    """What one training round did (no user data)."""

    version: str | None = None
    published: bool = False
    reason: str = ""
    users: int = 0
    items: int = 0
    interactions: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)
    live_ndcg_at_10: float | None = None
    seconds: dict[str, float] = field(default_factory=dict)


class Trainer:
    """State and steps of the trainer; the Kafka tail and Redis client are passed in."""

    def __init__(
        self,
        settings: Settings,
        tail: TopicTail,
        redis: Any,
        pseudonymizer: Pseudonymizer,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.cfg = settings.trainer
        self.tail = tail
        self.redis = redis
        self.pz = pseudonymizer
        self.clock = clock
        self.layout = Layout.from_settings(settings)
        self.store = InteractionStore()
        self.consent: dict[str, bool] = {}  # pseudonym -> personalisation allowed
        self.model: Model | None = None
        self.counters: dict[str, int] = {}
        self.dirty: set[str] = set()
        self.new_since_train = 0
        self.last_train_at = 0.0
        self.topics = {
            "consent": settings.topic("consent"),
            "interactions": settings.topic("interactions"),
        }
        self.artefacts = Path(settings.state_dir) / "models"

    # -- input ---------------------------------------------------------------------------

    def catch_up(self, timeout_s: float = 600.0) -> int:
        """Read every topic up to its current end (at start)."""
        return self.tail.read_to_end(self.apply_many_one, timeout_s)

    def apply_many_one(self, record: Any) -> None:
        self.apply([record])

    def apply(self, records: list[Any]) -> None:
        """Consent first, then interactions, so a batch never judges a row before its consent."""
        consent_topic = self.topics["consent"]
        for r in records:
            if r.topic == consent_topic:
                self._on_consent(r.key, r.value)
        for r in records:
            if r.topic == self.topics["interactions"]:
                self._on_interaction(r.value)

    def _count(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n

    def _on_consent(self, key: bytes | None, value: bytes | None) -> None:
        if not key:
            return
        try:
            record = decode_consent(value)
        except Exception:  # an invalid record changes nothing here; the workers dead-letter it
            self._count("consent_invalid")
            return
        allowed = bool(record is not None and record.purposes.analytics and record.purposes.personalization)
        user_id = key.decode("utf-8", "replace")
        for pseudonym in self.pz.candidates(user_id):
            self.consent[pseudonym] = allowed
            if not allowed:
                self.forget(pseudonym)

    def _on_interaction(self, value: bytes | None) -> None:
        try:
            row = _interaction.decode(value or b"")
        except (msgspec.ValidationError, msgspec.DecodeError):
            self._count("interactions_invalid")
            return
        if not self.consent.get(row.user, False):
            self._count("interactions_refused_no_personalization")
            return
        self.store.add(row)
        self.dirty.add(row.user)
        self.new_since_train += 1
        self._count("interactions")

    def forget(self, pseudonym: str) -> bool:
        """Remove a user's row, factors and cached recommendations (Art. 17/21)."""
        removed = self.store.remove_user(pseudonym)
        if self.model is not None:
            removed = self.model.remove_user(pseudonym) or removed
        self.dirty.discard(pseudonym)
        deleted = delete_user(self.redis, self.layout, [pseudonym])
        if removed or deleted:
            self._count("users_forgotten")
        return removed or bool(deleted)

    # -- training ------------------------------------------------------------------------

    def live_ndcg(self) -> float | None:
        meta = live_meta(self.redis, self.layout)
        if not meta:
            return None
        value = meta.get("metrics", {}).get("ndcg_at_10")
        return float(value) if value is not None else None

    def train_and_publish(self, *, force: bool = False) -> TrainReport:
        """Full retrain: holdout evaluation, quality gate, refit on everything, publish."""
        report = TrainReport(users=len(self.store.users()), interactions=len(self.store))
        if not len(self.store):
            report.reason = "no interactions with personalisation consent yet"
            return report
        t0 = time.perf_counter()
        holdout_store, heldout = self.store.temporal_split(self.cfg.holdout_fraction)
        try:
            candidate = train(holdout_store, self.cfg)
        except TrainingError as exc:
            report.reason = str(exc)
            return report
        report.metrics = dict(evaluate(candidate, heldout))
        report.seconds["holdout_fit"] = round(time.perf_counter() - t0, 3)
        report.live_ndcg_at_10 = self.live_ndcg()
        decision = quality_gate(report.metrics["ndcg_at_10"], report.live_ndcg_at_10, self.cfg.gate_margin)
        report.reason = decision.reason
        if not decision.publish and not force:
            log.warning("model not published: %s", decision.reason)
            return report
        t1 = time.perf_counter()
        model = train(self.store, self.cfg)
        model.metrics.update(report.metrics)
        report.seconds["fit"] = round(time.perf_counter() - t1, 3)
        t2 = time.perf_counter()
        recs = model.recommend_all(self.cfg.top_n, recent_days=self.settings.serving.limited_recent_days)
        popular = model.popular(self.settings.serving.popular_n)
        report.seconds["recommend"] = round(time.perf_counter() - t2, 3)
        t3 = time.perf_counter()
        publish(
            self.redis, self.layout, model.version, recs, popular, model.meta(), self.settings.serving.ttl_s
        )
        report.seconds["publish"] = round(time.perf_counter() - t3, 3)
        model.save(self.artefacts / model.version)
        self.model = model
        self.dirty.clear()
        self.new_since_train = 0
        self.last_train_at = self.clock()
        report.version, report.published = model.version, True
        report.users, report.items = model.n_users, model.n_items
        log.info("published model %s (%d users, %d items)", model.version, report.users, report.items)
        return report

    def refresh_dirty(self) -> int:
        """Fold users with new interactions into the live model and republish them."""
        if self.model is None or not self.dirty:
            return 0
        users = sorted(self.dirty)
        self.dirty.clear()
        self.model.fold_in_many({u: self.store.records(u) for u in users})
        n = self.cfg.top_n
        for pseudonym in users:
            user_recs = UserRecs(full=self.model.recommend(pseudonym, n))
            publish_user(
                self.redis, self.layout, self.model.version, pseudonym, user_recs, self.settings.serving.ttl_s
            )
        self._count("users_refreshed", len(users))
        return len(users)

    # -- loop ------------------------------------------------------------------------------

    def run(self, stop: threading.Event, *, refresh_every_s: float = 1.0) -> None:
        """Continuous mode until ``stop`` is set."""
        self.catch_up()
        self.train_and_publish()
        last_refresh = self.clock()
        while not stop.is_set():
            records = self.tail.poll(timeout_ms=500)
            if records:
                self.apply(records)
            now = self.clock()
            due = now - self.last_train_at >= self.cfg.retrain_every_s
            if self.new_since_train >= self.cfg.retrain_after or (due and self.new_since_train):
                self.train_and_publish()
            elif now - last_refresh >= refresh_every_s:
                self.refresh_dirty()
                last_refresh = now
            self.tail.commit()
