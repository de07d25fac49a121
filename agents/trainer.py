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
consent topic (ordered by ``updated_at``, as the stream orders it), refusing
(and counting) a row unless personalisation is granted now and was granted
at some time in the row's window. Withdrawing
personalisation removes the user's row, factors and cached recommendations.

No record stops the trainer: one it cannot apply (invalid JSON, a value out of
range for the model's int64/int32 columns, anything a handler raises on) is
counted and written to ``trainer.dlq`` as a ``dlq.v2`` dead letter with its
source coordinates, and reading goes on. Records below the group's committed
offsets were judged by an earlier run and are not dead-lettered again.
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
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from pipeline.errors import ServiceUnavailable, ValidationFailed
from pipeline.kafka.tail import TopicTail
from pipeline.kafka.topics import Topic
from pipeline.privacy.consent import Purposes
from pipeline.privacy.consent_history import Change, ConsentHistory, granted_during, record_change
from pipeline.privacy.deadletter import dead_letter
from pipeline.privacy.pseudonym import Pseudonymizer
from pipeline.recs import (
    InteractionStore,
    Model,
    TrainingError,
    evaluate,
    quality_gate,
    train,
)
from pipeline.recs.artefact import prune_models, save_model
from pipeline.recs.types import UserRecs
from pipeline.rights import ErasureLedger, build_receipt
from pipeline.serving.layout import Layout
from pipeline.serving.publish import (
    PublishIncomplete,
    delete_user,
    live_meta,
    live_version,
    publish,
    publish_user,
)
from pipeline.settings import Settings
from pipeline.wire import DlqSource, decode_as, decode_consent, encode, safe_detail
from pipeline.wire.outbound import Interaction
from pipeline.wire.rights import ErasureRequest, ErasureStage, Receipt

__all__ = ["TOPICS", "TrainReport", "Trainer"]

TOPICS = (Topic.CONSENT, Topic.ERASURE, Topic.ERASURE_STAGES, Topic.RECEIPTS, Topic.INTERACTIONS)
"""What the trainer reads (names without prefix): consent and erasure topics before interactions."""

log = logging.getLogger(__name__)

RETRYABLE = (RedisConnectionError, RedisTimeoutError, ServiceUnavailable, PublishIncomplete)
"""Failures of a loop step that end with a retry, never with the trainer."""

_interaction = msgspec.json.Decoder(Interaction)

INVALID_INTERACTION = "invalid_interaction"
UNFIT_INTERACTION = "unfit_interaction"
INVALID_STAGE = "invalid_stage"
INVALID_RECEIPT = "invalid_receipt"
INTERNAL_ERROR = "internal_error"


@dataclass(frozen=True)
class Unapplied:
    """Why a record was not applied, for its dead letter (``detail`` ends in a schema path)."""

    reason: str
    detail: str = ""
    row: Any = None


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
        self.store = InteractionStore()
        self.consent: dict[str, ConsentHistory] = {}  # pseudonym -> consent history (ordered by time)
        self.withdrawn_at: dict[str, int] = {}  # pseudonym -> last withdrawal (record time, ms)
        self.ledger = ErasureLedger()
        self.erased_since_train = False  # the live model's item factors still hold erased data
        self._prune_artefacts = False
        self.model: Model | None = None
        self.counters: dict[str, int] = {}
        self.dirty: set[str] = set()
        self.new_since_train = 0
        self.last_train_at = 0.0
        self.last_train_s = 0.0
        self._publish_due = False  # a publish failed or the live model vanished: train and publish
        self._uncached: set[str] = set()  # forgotten users whose cached recommendations await deletion
        self.trending: Any | None = None  # pipeline.dp.service.TrendingJob: DP releases of closed days
        self.topics = {
            "consent": settings.topic(Topic.CONSENT),
            "interactions": settings.topic(Topic.INTERACTIONS),
            "erasure": settings.topic(Topic.ERASURE),
            "stages": settings.topic(Topic.ERASURE_STAGES),
            "receipts": settings.topic(Topic.RECEIPTS),
        }
        self.artefacts = Path(settings.state_dir) / "models" / settings.app_id  # one folder per deployment
        self.dlq_topic = settings.topic(Topic.TRAINER_DLQ)
        self._judged: dict[tuple[str, int], int] | None = None  # committed offsets at start
        self.audit_after_retrain = False  # the continuous loop turns it on (audit.after_retrain)

    # -- input ---------------------------------------------------------------------------

    def catch_up(self, timeout_s: float = 600.0) -> int:
        """Read every topic up to its current end (at start).

        Consent and the erasure topics first, so that every interaction is
        judged against the user's whole consent and erasure history: a
        rebuild never re-admits rows that a withdrawal or erasure removed.
        """
        self._judged = self._committed()
        first = [self.topics[t] for t in ("consent", "erasure", "stages", "receipts")]
        n = self.tail.read_to_end(self.apply_many_one, timeout_s, topics=first)
        return n + self.tail.read_to_end(self.apply_many_one, timeout_s)

    def apply_many_one(self, record: Any) -> None:
        self.apply([record])

    def apply(self, records: list[Any]) -> None:
        """Consent and erasures first, then interactions: a batch never judges a row before them."""
        t = self.topics
        by_topic: dict[str, list[Any]] = {}
        for r in records:
            by_topic.setdefault(r.topic, []).append(r)
        for r in by_topic.get(t["consent"], ()):
            self._guarded(r, self._on_consent, r.key, r.value, r.timestamp, r.offset)
        for r in by_topic.get(t["erasure"], ()):
            self._guarded(r, self._on_erasure, r.key, r.value)
        for r in by_topic.get(t["stages"], ()):
            self._guarded(r, self._on_stage, r.value)
        for r in by_topic.get(t["receipts"], ()):
            self._guarded(r, self._on_receipt, r.value)
        for r in by_topic.get(t["interactions"], ()):
            self._guarded(r, self._on_interaction, r.value, r.timestamp)

    def _count(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n

    def _guarded(self, record: Any, handle: Callable[..., Unapplied | None], *args: Any) -> None:
        """Apply one record; one that is not applied is dead-lettered, and nothing it does raises."""
        try:
            outcome = handle(*args)
        except Exception as exc:  # never stop on a record: count, dead-letter where it is, go on
            log.error(
                "trainer: unexpected %s at %s[%d]@%d; record dead-lettered",
                type(exc).__name__,
                record.topic,
                record.partition,
                record.offset,
            )
            self._count("internal_errors")
            outcome = Unapplied(INTERNAL_ERROR)
        if isinstance(outcome, Unapplied):
            self._dead_letter(record, outcome)

    def _committed(self) -> dict[tuple[str, int], int]:
        """The group's committed offsets: records below them were judged by an earlier run."""
        try:
            return self.tail.committed() if self.tail is not None else {}
        except Exception as exc:  # no group, or the broker would not say: dead-letter again
            log.warning("trainer: committed offsets unknown (%s)", type(exc).__name__)
            return {}

    def _dead_letter(self, record: Any, outcome: Unapplied) -> None:
        """Produce a ``dlq.v2`` record of ``outcome`` to ``trainer.dlq`` (once per record and group)."""
        if self._judged is None:
            self._judged = self._committed()
        if record.offset < self._judged.get((record.topic, record.partition), 0):
            return
        row = outcome.row
        letter = dead_letter(
            reason=outcome.reason,
            source=DlqSource(topic=record.topic, partition=record.partition, offset=record.offset),
            at=int(self.clock() * 1000),
            detail=outcome.detail,
            event=row,
            pseudonym=getattr(row, "user", None),
            value_bytes=len(record.value or b""),
        )
        self._count("dead_letters")
        self._send(self.dlq_topic, None, encode(letter))

    def _on_consent(
        self, key: bytes | None, value: bytes | None, created_at: int = 0, offset: int = -1
    ) -> None:
        """A consent record joins the user's history; only one newer than the held latest is in force.

        The order is the stream's (``updated_at``, ties by offset; see
        :mod:`pipeline.privacy.consent_history`), so a stale grant read after a
        newer revoke changes nothing now. A record that puts a refusal in force
        (or a tombstone, which deletes the history) removes the user's profile
        and sets the withdrawal cutoff to the record's time on the topic.
        """
        if not key:
            return
        try:
            record = decode_consent(value)
        except Exception:  # an invalid record changes nothing here; the workers dead-letter it
            self._count("consent_invalid")
            return
        user_id = key.decode("utf-8", "replace")
        for pseudonym in self.pz.candidates(user_id):
            if record is None:
                self.consent.pop(pseudonym, None)
                withdrawn = True
            else:
                p = record.purposes
                change = Change(
                    record.updated_at_ms, offset, Purposes(p.analytics, p.personalization, p.advertising)
                )
                history, in_force = record_change(self.consent.get(pseudonym), change)
                self.consent[pseudonym] = history
                if not in_force:
                    self._count("consent_stale")
                withdrawn = in_force and not (p.analytics and p.personalization)
            if withdrawn:
                self.withdrawn_at[pseudonym] = max(created_at, self.withdrawn_at.get(pseudonym, 0))
                self.forget(pseudonym)

    def _consent_refusal(self, row: Interaction) -> str | None:
        """Why ``row`` may not be used (``None``: it may): no personalisation now, or in its window."""
        history = self.consent.get(row.user)
        if history is None or not (history.current.analytics and history.current.personalization):
            return "no_personalization"
        if not granted_during(history, row.window_start, row.window_end):
            return "not_granted_in_window"
        return None

    def _on_interaction(self, value: bytes | None, created_at: int = 0) -> Unapplied | None:
        try:
            row = _interaction.decode(value or b"")
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            self._count("interactions_invalid")
            return Unapplied(INVALID_INTERACTION, safe_detail(str(exc)))
        refusal = self._consent_refusal(row)
        if refusal is not None:
            self._count("interactions_refused_" + refusal)
            return None
        if self.ledger.refuses(row.user, created_at):
            self._count("interactions_refused_erased")
            return None
        if created_at <= self.withdrawn_at.get(row.user, -1):
            self._count("interactions_refused_withdrawn")
            return None
        try:
            self.store.add(row)
        except (ValueError, OverflowError, TypeError):
            self._count("interactions_unfit")
            return Unapplied(UNFIT_INTERACTION, "", row)
        self.dirty.add(row.user)
        self.new_since_train += 1
        self._count("interactions")
        return None

    def forget(self, pseudonym: str) -> bool:
        """Remove a user's row, factors and cached recommendations (Art. 17/21).

        The profile goes at once. The cache deletion is queued first, so that
        a Redis outage only delays it: the loop's next step retries
        (:meth:`flush_forgotten`), and the consent record is never lost to it.
        """
        removed = self.forget_profile([pseudonym])
        self._uncached.add(pseudonym)
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
        removed = sum(self.store.remove_user(p) for p in pseudonyms)
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
        save_model(self.model, self.artefacts / self.model.version)
        prune_models(self.artefacts, keep=self.model.version)

    # -- erasure (Art. 17): the trainer coordinates, confirms its stages, issues receipts ------

    def _on_erasure(self, key: bytes | None, value: bytes | None) -> None:
        """An invalid request is only counted: the workers dead-letter it to ``playback.dlq``."""
        try:
            if not key:
                raise ValueError("no key")
            request = decode_as(value or b"", ErasureRequest)
        except Exception:  # the workers dead-letter it; nothing to do here
            self._count("erasure_invalid")
            return
        user_id = key.decode("utf-8", "replace")
        names = self.pz.candidates(user_id)
        self.pz.forget(user_id)
        self.ledger.request(request.request_id, names, request.requested_at)
        self.forget_profile(names)  # before any later row of the batch is judged

    def _on_stage(self, value: bytes | None) -> Unapplied | None:
        try:
            stage = decode_as(value or b"", ErasureStage)
        except ValidationFailed as exc:
            self._count("erasure_stage_invalid")
            return Unapplied(INVALID_STAGE, exc.detail)
        self.ledger.stage(stage)
        return None

    def _on_receipt(self, value: bytes | None) -> Unapplied | None:
        try:
            receipt = decode_as(value or b"", Receipt)
        except ValidationFailed as exc:
            self._count("receipt_invalid")
            return Unapplied(INVALID_RECEIPT, exc.detail)
        self.ledger.receipt(receipt)
        return None

    def finish_erasures(self) -> list[Receipt]:
        """Perform the trainer's and the cache's stages of new requests; issue complete receipts.

        Withdrawals whose cache deletion failed earlier are retried first.
        """
        self.flush_forgotten()
        now_ms = lambda: int(self.clock() * 1000)  # noqa: E731
        todo = self.ledger.awaiting("trainer")
        if todo:
            for entry in todo:
                self.forget_profile(entry.pseudonyms)  # usually done already as the request was read
            self.save_artefacts()
            for entry in todo:
                self.ledger.finished(entry.request_id, "trainer", now_ms())
                self._count("erasures")
                self._send_stage(entry, "trainer")
        # a stage of its own: when Redis fails here, the next call (the loop retries) finishes it
        for entry in self.ledger.awaiting("cache"):
            deleted = delete_user(self.redis, self.layout, entry.pseudonyms)
            self.ledger.finished(entry.request_id, "cache", now_ms(), {"keys_deleted": deleted})
            self._send_stage(entry, "cache")
        receipts = []
        for entry in self.ledger.ready():
            receipt = build_receipt(entry, now_ms(), self.model_clean_by_ms())
            self._send(self.topics["receipts"], entry.pseudonym.encode(), encode(receipt))
            self.ledger.mark_issued(entry.request_id)
            receipts.append(receipt)
            if self.on_receipt is not None:
                self.on_receipt(receipt)
            self._count("receipts")
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

    def _send_stage(self, entry: Any, stage: str) -> None:
        record = ErasureStage(
            request_id=entry.request_id,
            pseudonym=entry.pseudonym,
            stage=stage,  # type: ignore[arg-type]
            requested_at=entry.requested_at,
            finished_at=entry.stages[stage],
            detail=entry.details.get(stage, {}),
        )
        self._send(self.topics["stages"], entry.request_id.encode(), encode(record))

    def _send(self, topic: str, key: bytes | None, value: bytes) -> None:
        if self.producer is not None:
            self.producer.send(topic, key=key, value=value)

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
            if not self.erased_since_train:
                log.warning("model not published: %s", decision.reason)
                return report
            # the model in service still carries erased users' data: replacing it is not optional
            report.reason += "; published anyway: it replaces a model trained with erased users' data"
            log.warning("model published despite the gate: the live one holds erased users' data")
        t1 = time.perf_counter()
        model = train(self.store, self.cfg)
        model.metrics.update(report.metrics)
        report.seconds["fit"] = round(time.perf_counter() - t1, 3)
        t2 = time.perf_counter()
        recs = model.recommend_all(self.cfg.top_n, recent_days=self.settings.serving.limited_recent_days)
        # the fallback until a DP trending release exists: only titles with a k-anonymity floor of viewers
        popular = model.popular(
            self.settings.serving.popular_n, min_users=self.settings.dp.fallback_min_viewers
        )
        report.seconds["recommend"] = round(time.perf_counter() - t2, 3)
        t3 = time.perf_counter()
        publish(
            self.redis, self.layout, model.version, recs, popular, model.meta(), self.settings.serving.ttl_s
        )
        report.seconds["publish"] = round(time.perf_counter() - t3, 3)
        save_model(model, self.artefacts / model.version)
        # older models hold erased users' factors: keep only this one then
        prune_models(self.artefacts, model.version, 1 if self.erased_since_train else self.cfg.keep_models)
        self.model = model
        self.dirty.clear()
        self.new_since_train = 0
        self.erased_since_train = self._prune_artefacts = False
        self.last_train_at = self.clock()
        self.last_train_s = time.perf_counter() - t0
        report.version, report.published = model.version, True
        report.users, report.items = model.n_users, model.n_items
        log.info("published model %s (%d users, %d items)", model.version, report.users, report.items)
        if self.on_report is not None:
            self.on_report(report)
        if self.audit_after_retrain:
            from agents.audit import audit_after_retrain

            audit_after_retrain(self, model)  # the ethics audit; never raises (counted, logged)
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
        """Continuous mode until ``stop`` is set.

        A step that needs Redis (publish, fold-in refresh, erasure stages)
        and finds it gone, or finds a publish's keys lost to a Redis restart,
        does not end the loop: the trainer keeps reading Kafka, retries after a
        backoff (1 s doubling to 30 s), and publishes again when Redis is back
        or has lost the live model. Any other failure of a step (a side job
        such as the DP release, or a bug) is counted as ``step_failed`` and
        retried the same way, so it never stops reading or the receipts.
        """
        self.catch_up()
        self._publish_due = True
        self.audit_after_retrain = self.settings.audit.after_retrain
        last_refresh = self.clock()
        retry_at = backoff = 0.0
        while not stop.is_set():
            records = self.tail.poll(timeout_ms=500)
            if records:
                self.apply(records)
            now = self.clock()
            if now >= retry_at:
                try:
                    if self._step(now, now - last_refresh >= refresh_every_s):
                        last_refresh = now
                    backoff = 0.0
                except Exception as exc:  # no step ends the trainer: erasure receipts depend on it
                    backoff = min(max(1.0, backoff * 2), 30.0)
                    retry_at = now + backoff
                    kind = exc.__class__.__name__
                    if isinstance(exc, RETRYABLE):
                        self._count("redis_step_failed")
                        log.warning("trainer: Redis step failed (%s); retry in %.0f s", kind, backoff)
                    else:  # a bug or a side job (DP release, audit) broke: counted, retried
                        self._count("step_failed")
                        log.error("trainer: loop step raised %s; retry in %.0f s", kind, backoff)
            self.tail.commit()

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
