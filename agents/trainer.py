"""The trainer process: interactions (and consent) in, models and Redis recommendations out.

It keeps the user×item matrix in memory, rebuilt at start by reading the
``consent`` and ``interactions`` topics from the beginning (the topics are the
source of truth; a re-emitted window replaces its earlier copy). Then:

* ``--once``: train on everything, evaluate on a per-user temporal holdout, pass
  the quality gate (beat popularity, not clearly worse than the live model;
  :func:`pipeline.recs.gate.publish_gate`), publish, save the artefact, exit.
* continuous: keep reading; users with new interactions are folded into the
  live model (their vector recomputed against fixed item factors) and their
  recommendations republished within seconds; a full retrain runs every
  ``trainer.retrain_every_s`` or after ``trainer.retrain_after`` new rows.

Which rows enter the matrix is decided by the Kafka-free core,
:class:`pipeline.trainer.Admission` (consent per purpose at the row's time and
now, withdrawal and erasure cutoffs, record guards); this module is its shell:
it reads the topics, hands the records to the core and performs the
:class:`pipeline.trainer.Effects` it returns. Withdrawing personalisation
removes the user's row, factors and cached recommendations.

The model is any family of :mod:`pipeline.recs.family` (``trainer.families``):
the trainer makes it in one place, :meth:`Trainer.build_family`, and otherwise
only talks to the seam.

No record stops the trainer: one the core could not apply is written to
``trainer.dlq`` as a ``dlq.v2`` dead letter with its source coordinates, and
reading goes on. Records below the group's committed offsets were judged by an
earlier run and are not dead-lettered again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kafka.errors import KafkaError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from pipeline.errors import ServiceUnavailable
from pipeline.kafka.tail import TopicTail
from pipeline.kafka.topics import Topic
from pipeline.privacy.pseudonym import Pseudonymizer
from pipeline.recs import InteractionStore, TrainingError, evaluate
from pipeline.recs.artefact import prune_models
from pipeline.recs.family import Family, make_family
from pipeline.recs.gate import publish_gate
from pipeline.recs.model import new_version
from pipeline.recs.popularity import POPULAR, PopularityRanker, popular_version
from pipeline.recs.tune import TuneResult, apply_setting, tune
from pipeline.recs.types import UserRecs
from pipeline.rights import ErasureLedger
from pipeline.rights.ledger import Pending
from pipeline.serving.layout import Layout
from pipeline.serving.publish import (
    PublishIncomplete,
    delete_user,
    live_meta,
    live_version,
    publish,
    publish_user,
)
from pipeline.settings import Settings, TrainerSettings
from pipeline.trainer import READ_FIRST, Admission, Dropped, Effects, Rejected, TopicRecord
from pipeline.wire import encode
from pipeline.wire.rights import Receipt, Stage

__all__ = ["TOPICS", "TrainReport", "Trainer", "catch_up"]

TOPICS = (Topic.CONSENT, Topic.ERASURE, Topic.ERASURE_STAGES, Topic.RECEIPTS, Topic.INTERACTIONS)
"""What the trainer reads (names without prefix): consent and erasure topics before interactions."""

log = logging.getLogger(__name__)

RETRYABLE = (RedisConnectionError, RedisTimeoutError, ServiceUnavailable, PublishIncomplete)
"""Failures of a loop step that end with a retry, never with the trainer."""
BROKER_BACKOFF_MAX_S = 5.0
"""A poll of a broker that is away costs little, and the trainer should resume soon after it returns."""
COMMIT_TIMEOUT_MS = 5_000
"""A commit that cannot reach the broker gives up this soon: the loop must stay responsive to stop."""


def trainer_topics(settings: Settings) -> dict[str, str]:
    """The core's input roles (:data:`pipeline.trainer.Kind`) and their topic names."""
    return {
        "consent": settings.topic(Topic.CONSENT),
        "interactions": settings.topic(Topic.INTERACTIONS),
        "erasure": settings.topic(Topic.ERASURE),
        "stages": settings.topic(Topic.ERASURE_STAGES),
        "receipts": settings.topic(Topic.RECEIPTS),
    }


def catch_up(tail: TopicTail, handle: Callable[[Any], None], topics: dict[str, str], timeout_s: float) -> int:
    """Read every topic to its current end, :data:`pipeline.trainer.READ_FIRST` ones first.

    So every interaction is judged against the user's whole consent and
    erasure history: a rebuild never re-admits rows that a withdrawal or
    erasure removed.
    """
    n = tail.read_to_end(handle, timeout_s, topics=[topics[k] for k in READ_FIRST])
    return n + tail.read_to_end(handle, timeout_s)


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
    tuning: dict[str, Any] = field(default_factory=dict)
    """The self-tuned setting in force: family, setting, validation NDCG@10, trials, seconds."""
    serving: str | None = None  # what serves after the round: a family name, "popular", or None (unchanged)


class Trainer:
    """The trainer's shell: the core's effects on the model, Redis and Kafka; training; the loop.

    ``tail`` may be None when records are handed to :meth:`apply` directly
    (tests, tools); :meth:`catch_up` and :meth:`run` need one.
    """

    def __init__(
        self,
        settings: Settings,
        tail: TopicTail | None,
        redis: Any,
        pseudonymizer: Pseudonymizer,
        *,
        producer: Any | None = None,
        clock: Callable[[], float] = time.time,
        on_report: Callable[[TrainReport], None] | None = None,
    ) -> None:
        self.on_report = on_report  # told of each published round (metrics); must not raise
        self.on_receipt: Callable[[Receipt], None] | None = None  # told of each receipt issued (metrics)
        self.settings = settings
        self.cfg = settings.trainer
        self.tail = tail
        self.redis = redis
        self.pz = pseudonymizer
        self.producer = producer  # kafka-python KafkaProducer for stage records and receipts
        self.clock = clock
        self.layout = Layout.from_settings(settings)
        self.topics = trainer_topics(settings)
        self.core = Admission(self.topics, pseudonymizer)
        self.erased_since_train = False  # the live model's item factors still hold erased data
        self._prune_artefacts = False
        self.model: Family | None = None
        self.choice: tuple[str, TrainerSettings] | None = None  # the tuner's family and setting
        self.dirty: set[str] = set()
        self.new_since_train = 0
        self.last_train_at = 0.0
        self.last_train_s = 0.0
        self._publish_due = False  # a publish failed or the live model vanished: train and publish
        self._uncached: set[str] = set()  # forgotten users whose cached recommendations await deletion
        self.trending: Any | None = None  # pipeline.dp.service.TrendingJob: DP releases of closed days
        self.artefacts = Path(settings.state_dir) / "models" / settings.app_id  # one folder per deployment
        self.dlq_topic = settings.topic(Topic.TRAINER_DLQ)
        self._judged: dict[tuple[str, int], int] | None = None  # committed offsets at start
        self.audit_after_retrain = False  # the continuous loop turns it on (audit.after_retrain)
        self._pinged_at = 0.0  # last Redis PING of a backoff (:meth:`_redis_answers`)
        self._ping_failed = False  # a PING of this backoff found Redis away
        self.tuned: TuneResult | None = None  # the self-tuned setting in force (pipeline.recs.tune)
        self.retrains_since_tune = 0

    @property
    def store(self) -> InteractionStore:
        """The matrix of admitted rows (the core's)."""
        return self.core.store

    @property
    def ledger(self) -> ErasureLedger:
        return self.core.ledger

    @property
    def counters(self) -> dict[str, int]:
        """Every count of the trainer, the core's and the shell's, in one dict."""
        return self.core.counters

    def _count(self, name: str, n: int = 1) -> None:
        self.core.count(name, n)

    # -- input ---------------------------------------------------------------------------

    def catch_up(self, timeout_s: float = 600.0) -> int:
        """Read every topic up to its current end (at start), consent and erasure topics first."""
        if self.tail is None:
            raise RuntimeError("catch_up needs a tail")
        self._judged = self._committed()
        return catch_up(self.tail, self.apply_many_one, self.topics, timeout_s)

    def apply_many_one(self, record: Any) -> None:
        self.apply([record])

    def apply(self, records: Iterable[TopicRecord]) -> None:
        """Hand a batch to the core and perform what it returns."""
        self.perform(self.core.apply(records))

    def perform(self, fx: Effects) -> None:
        """The core's effects: factors and caches of removed users, the fold-in schedule, dead letters.

        Removals come before admissions (see :class:`pipeline.trainer.Effects`).
        A failure here never stops reading: it is counted and logged.
        """
        for dropped in fx.withdrawn:
            self._safely(self.forget, dropped)
        if fx.erased:
            self._safely(self.forget_profile, fx.erased)
        self.dirty.update(fx.admitted)
        self.new_since_train += len(fx.admitted)
        for rejected in fx.rejected:
            self._dead_letter(rejected)

    def _safely(self, effect: Callable[[Any], Any], arg: Any) -> None:
        try:
            effect(arg)
        except Exception as exc:  # the record is applied; only what follows from it failed
            self._count("internal_errors")
            log.error("trainer: %s raised %s", effect.__name__, type(exc).__name__)

    def _committed(self) -> dict[tuple[str, int], int]:
        """The group's committed offsets: records below them were judged by an earlier run."""
        try:
            return self.tail.committed() if self.tail is not None else {}
        except Exception as exc:  # no group, or the broker would not say: dead-letter again
            log.warning("trainer: committed offsets unknown (%s)", type(exc).__name__)
            return {}

    def _dead_letter(self, rejected: Rejected) -> None:
        """Produce a ``dlq.v2`` record to ``trainer.dlq`` (once per record and group)."""
        if self._judged is None:
            self._judged = self._committed()
        if rejected.judged_before(self._judged):
            return
        self._count("dead_letters")
        self._send(self.dlq_topic, None, encode(rejected.letter(self._now_ms())))

    def forget(self, dropped: Dropped) -> bool:
        """A withdrawal (Art. 21): the user's factors and cached recommendations (the core dropped the rows).

        The cache deletion is queued first, so that a Redis outage only delays
        it: the loop's next step retries (:meth:`flush_forgotten`), and the
        consent record is never lost to it.
        """
        removed = dropped.rows + self.forget_profile([dropped.pseudonym])
        self._uncached.add(dropped.pseudonym)
        try:
            deleted = self.flush_forgotten()
        except RETRYABLE as exc:
            self._count("cache_deletes_deferred")
            log.warning("trainer: cache deletion deferred (%s); retried next step", type(exc).__name__)
            deleted = 0
        if removed or deleted:
            self._count("users_forgotten")
        return bool(removed or deleted)

    def flush_forgotten(self) -> int:
        """Delete the cached recommendations of forgotten users; on a Redis failure they stay queued.

        Raises:
            redis.exceptions.ConnectionError, redis.exceptions.TimeoutError:
                Redis failed; the queue is kept for the next call.
        """
        if not self._uncached:
            return 0
        users = sorted(self._uncached)
        deleted = delete_user(self.redis, self.layout, users)
        self._uncached.difference_update(users)
        return deleted

    def forget_profile(self, pseudonyms: list[str]) -> int:
        """Matrix rows, id-map entries and user factors of these users, in memory and on disk."""
        removed = self.core.drop(pseudonyms)
        if self.model is not None and self.model.remove_users(pseudonyms):
            removed += 1
            self._prune_artefacts = True
            self.erased_since_train = True  # its item factors still carry the user's data
        for p in pseudonyms:
            self.dirty.discard(p)
        return removed

    def save_artefacts(self) -> None:
        """After removals: rewrite the live model's artefact and delete older ones (they hold them)."""
        if not self._prune_artefacts or self.model is None:
            return
        self._prune_artefacts = False
        self.model.save(self.artefacts / self.model.version)
        prune_models(self.artefacts, keep=self.model.version)

    # -- erasure (Art. 17): the trainer coordinates, confirms its stages, issues receipts ------

    def finish_erasures(self) -> list[Receipt]:
        """Perform the trainer's and the cache's stages of new requests; issue complete receipts.

        Withdrawals whose cache deletion failed earlier are retried first.
        """
        self.flush_forgotten()
        self._trainer_stage()
        self._cache_stage()
        return self._issue_receipts()

    def _trainer_stage(self) -> None:
        """Rows, factors and artefacts of new requests; confirmed only once all are gone."""
        todo = self.core.awaiting("trainer")
        if not todo:
            return
        for entry in todo:
            self.forget_profile(entry.pseudonyms)  # usually done already as the request was read
        self.save_artefacts()
        for entry in todo:
            self._confirm(entry, "trainer")

    def _cache_stage(self) -> None:
        """A stage of its own: when Redis fails here, the next call (the loop retries) finishes it."""
        for entry in self.core.awaiting("cache"):
            deleted = delete_user(self.redis, self.layout, entry.pseudonyms)
            self._confirm(entry, "cache", {"keys_deleted": deleted})

    def _confirm(self, entry: Pending, stage: Stage, detail: dict[str, int] | None = None) -> None:
        record = self.core.finish(entry, stage, self._now_ms(), detail)
        self._send(self.topics["stages"], entry.request_id.encode(), encode(record))

    def _issue_receipts(self) -> list[Receipt]:
        receipts = []
        for entry in self.core.ready():
            receipt = self.core.receipt(entry, self._now_ms(), self.model_clean_by_ms())
            self._send(self.topics["receipts"], entry.pseudonym.encode(), encode(receipt))
            self.core.issued(receipt)
            receipts.append(receipt)
            if self.on_receipt is not None:
                self.on_receipt(receipt)
        if receipts and self.producer is not None:
            self.producer.flush()
        return receipts

    def model_clean_by_ms(self) -> int:
        """When the live model holds no erased user's data any more (a full retrain is due by then)."""
        if not self.erased_since_train:
            return int(self.clock() * 1000)
        last = self.last_train_s or 60.0
        due = max(self.clock(), self.last_train_at + self.cfg.retrain_every_s)
        return int((due + 2 * last + 60.0) * 1000)

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _send(self, topic: str, key: bytes | None, value: bytes) -> None:
        if self.producer is not None:
            self.producer.send(topic, key=key, value=value)

    # -- training ------------------------------------------------------------------------

    def build_family(self) -> Family:
        """The one place the trainer makes a model: the tuner's choice, else the first enabled family."""
        return make_family(*self.chosen())

    def chosen(self) -> tuple[str, TrainerSettings]:
        """The family and setting the next fit uses: an explicit ``choice``, else the self-tuned
        one (:meth:`maybe_tune`), else the first enabled family at the configured setting."""
        if self.choice is not None:
            return self.choice
        if self.tuned is not None and self.tuned.family in self.cfg.families:
            return self.tuned.family, apply_setting(self.cfg, self.tuned)
        return self.cfg.families[0], self.cfg

    def live_ndcg(self) -> float | None:
        """The live model's holdout NDCG@10; None when none is live or the live version is popularity."""
        meta = live_meta(self.redis, self.layout)
        if not meta or meta.get("family") == POPULAR:
            return None
        value = meta.get("metrics", {}).get("ndcg_at_10")
        return float(value) if value is not None else None

    @property
    def fit_settings(self) -> TrainerSettings:
        """The trainer settings full retrains fit with (:meth:`chosen`'s setting)."""
        return self.chosen()[1]

    def maybe_tune(self, report: TrainReport) -> None:
        """Tune on the training store when due (first retrain, then every ``retune_every``); recorded.

        The tuner's validation split and the gate's holdout are carved the same
        way from the same store, so the gate's figure for a freshly tuned
        setting leans optimistic; ``privrec eval``'s holdout never reaches the store.
        :meth:`chosen` turns ``self.tuned`` into the family and setting :meth:`build_family` fits.
        """
        if self.tuned is not None and self.retrains_since_tune < self.cfg.retune_every:
            self.retrains_since_tune += 1
            return
        result = tune(self.store, self.cfg)
        report.seconds["tune"] = result.seconds
        if result.validation_ndcg_at_10 is not None or self.tuned is None:
            self.tuned = result
        self.retrains_since_tune = 1

    def train_and_publish(self, *, force: bool = False) -> TrainReport:
        """Full retrain: holdout evaluation, quality gate, refit on everything, publish; recorded."""
        report = self._retrain(force=force)
        self._record_run(report)
        return report

    def _record_run(self, report: TrainReport) -> None:
        """Append the round to the model quality history (``privrec models``); never raises."""
        from pipeline.recs.history import SETTING_FIELDS, ModelRun, decide, record_run

        ndcg = report.metrics.get("ndcg_at_10")
        run = ModelRun(
            at_ms=int(self.clock() * 1000),
            decision=decide(report.published, "published anyway" in report.reason, ndcg is not None),
            reason=report.reason,
            version=report.version,
            family=self.chosen()[0],
            setting={name: getattr(self.chosen()[1], name) for name in SETTING_FIELDS},
            tuning={k: v for k, v in report.tuning.items() if k not in ("setting", "family")},
            holdout_ndcg_at_10=ndcg,
            validation_ndcg_at_10=report.metrics.get("validation_ndcg_at_10"),
            live_ndcg_at_10=report.live_ndcg_at_10,
            users=report.users,
            items=report.items,
            interactions=report.interactions,
            seconds=report.seconds,
        )
        try:
            record_run(self.redis, self.layout.model_runs, run)
        except Exception as exc:  # the history must never stop the trainer
            log.warning("could not record the training round: %s", type(exc).__name__)

    def _retrain(self, *, force: bool) -> TrainReport:
        report = TrainReport(users=len(self.store.users()), interactions=len(self.store))
        if not len(self.store):
            report.reason = "no interactions with personalisation consent yet"
            return report
        self.maybe_tune(report)
        if self.tuned is not None:
            report.tuning = self.tuned.to_json()
            if self.tuned.validation_ndcg_at_10 is not None:
                report.metrics["validation_ndcg_at_10"] = self.tuned.validation_ndcg_at_10
        t0 = time.perf_counter()
        if not self._holdout_gate(report, force=force):
            if report.metrics:  # judged and refused: the schedule starts over, or every step retrains
                self.new_since_train, self.last_train_at = 0, self.clock()
            return report
        model = self._fit_and_publish(report)
        self._adopt(model, time.perf_counter() - t0)
        report.version, report.published, report.serving = model.version, True, model.name
        report.users, report.items = model.n_users, model.n_items
        log.info("published model %s (%d users, %d items)", model.version, report.users, report.items)
        if self.on_report is not None:
            self.on_report(report)
        if self.audit_after_retrain:
            from agents.audit import audit_after_retrain

            audit_after_retrain(self, model)  # the ethics audit; never raises (counted, logged)
        return report

    def _holdout_gate(self, report: TrainReport, *, force: bool) -> bool:
        """Fit on the holdout split, evaluate, and ask the quality gate; True: go on and publish."""
        t0 = time.perf_counter()
        holdout_store, heldout = self.store.temporal_split(self.cfg.holdout_fraction)
        candidate = self.build_family()
        try:
            candidate.fit(holdout_store)
        except TrainingError as exc:
            report.reason = str(exc)
            return False
        report.metrics.update(evaluate(candidate, heldout))
        known = {u: items for u, items in heldout.items() if u in candidate}  # the users scored above
        popularity = evaluate(PopularityRanker(holdout_store), known)
        report.metrics["popularity_ndcg_at_10"] = popularity["ndcg_at_10"]
        report.seconds["holdout_fit"] = round(time.perf_counter() - t0, 3)
        report.live_ndcg_at_10 = self.live_ndcg()
        decision = publish_gate(
            report.metrics["ndcg_at_10"],
            popularity["ndcg_at_10"] if self.cfg.gate_popularity else None,
            report.live_ndcg_at_10,
            self.cfg.gate_margin,
        )
        report.reason = decision.reason
        if decision.publish:
            return True
        if force:
            report.reason += "; published anyway: --force"
            return True
        if not self.erased_since_train:
            log.warning("model not published: %s", decision.reason)
            if decision.outcome == "serve_popular":
                self._publish_popular(report, popularity["ndcg_at_10"])
            return False
        # the model in service still carries erased users' data: replacing it is not optional
        report.reason += "; published anyway: it replaces a model trained with erased users' data"
        log.warning("model published despite the gate: the live one holds erased users' data")
        return True

    def _publish_popular(self, report: TrainReport, ndcg: float) -> None:
        """No model is live and the candidate did not beat popularity: serve the popular list, labelled."""
        ranker = PopularityRanker(self.store)
        serving = self.settings.serving
        popular = ranker.popular(serving.popular_n, min_users=self.settings.dp.fallback_min_viewers)
        now_ms = int(self.clock() * 1000)
        version = popular_version(new_version(now_ms))
        meta = {
            "version": version,
            "family": POPULAR,
            "trained_at": now_ms,
            "n_users": len(ranker.seen),
            "n_items": len(ranker.order),
            "n_interactions": len(self.store),
            "metrics": {"ndcg_at_10": ndcg, "candidate": report.metrics},
        }
        publish(self.redis, self.layout, version, {}, popular, meta, serving.ttl_s)
        self.model = None  # nothing personal is live: fold-ins wait for a model that clears the gate
        report.version, report.serving = version, POPULAR
        log.warning("serving the popular list: no model beat popularity")

    def _fit_and_publish(self, report: TrainReport) -> Family:
        """Refit on everything, publish every user's top-N and the popular list, save the artefact."""
        t1 = time.perf_counter()
        model = self.build_family()
        model.fit(self.store)
        model.metrics.update(report.metrics)
        if report.tuning:
            model.metrics["tuning"] = report.tuning
        report.seconds["fit"] = round(time.perf_counter() - t1, 3)
        t2 = time.perf_counter()
        serving = self.settings.serving
        recs = model.recommend_all(self.cfg.top_n, recent_days=serving.limited_recent_days)
        # the fallback until a DP trending release exists: only titles with a k-anonymity floor of viewers
        popular = model.popular(serving.popular_n, min_users=self.settings.dp.fallback_min_viewers)
        report.seconds["recommend"] = round(time.perf_counter() - t2, 3)
        t3 = time.perf_counter()
        publish(self.redis, self.layout, model.version, recs, popular, model.meta(), serving.ttl_s)
        report.seconds["publish"] = round(time.perf_counter() - t3, 3)
        model.save(self.artefacts / model.version)
        # older models hold erased users' factors: keep only this one then
        prune_models(self.artefacts, model.version, 1 if self.erased_since_train else self.cfg.keep_models)
        return model

    def _adopt(self, model: Family, took_s: float) -> None:
        """The published model is the live one: the schedule starts over."""
        self.model = model
        self.dirty.clear()
        self.new_since_train = 0
        self.erased_since_train = self._prune_artefacts = False
        self.last_train_at = self.clock()
        self.last_train_s = took_s

    def refresh_dirty(self) -> int:
        """Fold users with new interactions into the live model and republish them."""
        if self.model is None or not self.dirty:
            return 0
        users = sorted(self.dirty)
        self.dirty.clear()
        self.model.fold_in_records({u: self.store.records(u) for u in users})
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
        """Continuous mode until ``stop`` is set.

        A step that needs Redis (publish, fold-in refresh, erasure stages)
        and finds it gone, or finds a publish's keys lost to a Redis restart,
        does not end the loop: the trainer keeps reading Kafka, retries after a
        backoff (1 s doubling to 30 s) or as soon as Redis answers a PING again,
        and publishes again when Redis is back or has lost the live model. Any
        other failure of a step (a side job such as the DP release, or a bug)
        is counted as ``step_failed`` and
        retried the same way, so it never stops reading or the receipts.
        A broker that went away (a poll or commit failing) is waited for the
        same way (:meth:`_broker_failed`), with ``stop`` still heard.
        """
        if self.tail is None:
            raise RuntimeError("run needs a tail")
        self.catch_up()
        self._publish_due = True
        self.audit_after_retrain = self.settings.audit.after_retrain
        last_refresh = self.clock()
        retry_at = backoff = broker_backoff = 0.0
        redis_away = False  # the last step failed on Redis: retry as soon as it answers again
        while not stop.is_set():
            try:
                records = self.tail.poll(timeout_ms=500)
            except KafkaError as exc:
                broker_backoff = self._broker_failed(exc, broker_backoff)
                stop.wait(broker_backoff)
                continue
            if records:
                self.apply(records)
            now = self.clock()
            if now >= retry_at or (redis_away and self._redis_answers()):
                try:
                    if self._step(now, now - last_refresh >= refresh_every_s):
                        last_refresh = now
                    backoff, redis_away = 0.0, False
                except Exception as exc:  # no step ends the trainer: erasure receipts depend on it
                    backoff = self._step_failed(exc, backoff)
                    retry_at, redis_away = now + backoff, isinstance(exc, RETRYABLE)
                    self._ping_failed = False
            try:
                self.tail.commit(timeout_ms=COMMIT_TIMEOUT_MS)
            except KafkaError as exc:  # positions stay; the next commit carries them
                broker_backoff = self._broker_failed(exc, broker_backoff)
                stop.wait(broker_backoff)
                continue
            if broker_backoff:
                log.warning("trainer: broker reachable again; reading on")
                broker_backoff = 0.0

    def _redis_answers(self) -> bool:
        """Whether Redis, seen away during this backoff, answers a PING again (one PING a second).

        A Redis step retried too often would retrain for nothing; one retried
        only at the end of a 30 s backoff would leave the model unpublished
        for up to 30 s after Redis returned. A Redis that never stopped
        answering (a publish's keys lost, say) keeps the plain backoff.
        """
        now = time.monotonic()
        if now - self._pinged_at < 1.0:
            return False
        self._pinged_at = now
        try:
            answered = bool(self.redis.ping())
        except Exception:  # still away (or no client): the backoff runs on
            self._ping_failed = True
            return False
        back, self._ping_failed = answered and self._ping_failed, False
        return back

    def _broker_failed(self, exc: Exception, backoff: float) -> float:
        """Count and log (one line) a broker that went away; the next backoff (1 s doubling to 5 s).

        The trainer waits for the broker instead of ending: an outage must not
        stop the erasure receipts, and the records it already read stay applied.
        """
        backoff = min(max(1.0, backoff * 2), BROKER_BACKOFF_MAX_S)
        self._count("broker_unreachable")
        log.warning("trainer: broker unreachable (%s); retry in %.0f s", exc.__class__.__name__, backoff)
        return backoff

    def _step_failed(self, exc: Exception, backoff: float) -> float:
        """Count and log a failed step; the next backoff (1 s doubling to 30 s)."""
        backoff = min(max(1.0, backoff * 2), 30.0)
        kind = exc.__class__.__name__
        if isinstance(exc, RETRYABLE):
            self._count("redis_step_failed")
            log.warning("trainer: Redis step failed (%s); retry in %.0f s", kind, backoff)
        else:  # a bug or a side job (DP release, audit) broke: counted, retried
            self._count("step_failed")
            log.error("trainer: loop step raised %s; retry in %.0f s", kind, backoff)
        return backoff

    def _step(self, now: float, refresh_due: bool) -> bool:
        """One round of the loop's Redis work; True when it refreshed folded-in users."""
        if self.model is not None and live_version(self.redis, self.layout) is None:
            self._publish_due = True  # Redis lost the live model (restarted without persistence)
        if self._publish_due:  # at start, and after a failed publish
            self.train_and_publish()
            self._publish_due = False
        self.finish_erasures()
        if self.trending is not None:
            self.trending.step(now)
        due = now - self.last_train_at >= self.cfg.retrain_every_s
        if self.new_since_train >= self.cfg.retrain_after or (
            due and (self.new_since_train or self.erased_since_train)
        ):
            self._publish_due = True  # stays set if the publish raises: the next round retries
            self.train_and_publish()
            self._publish_due = False
        elif refresh_due:
            self.refresh_dirty()
            return True
        return False
