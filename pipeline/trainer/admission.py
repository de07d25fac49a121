"""The trainer's admission rules as a state machine over decoded records: no Kafka, no Redis.

:class:`Admission` is fed the records of ``consent``, ``erasure``,
``erasure.stages``, ``receipts`` and ``interactions`` and holds what they
imply: each user's consent history, the withdrawal cutoffs, the erasure ledger
and the user×item matrix of admitted rows. It returns :class:`Effects` for the
shell to perform (drop factors and cached recommendations, fold users in,
dead-letter records) and builds the stage records and receipts the shell
produces. ``agents/trainer.py`` (the live trainer) and ``agents/export.py``
(a viewer's export, read-only) share it, so both hold exactly the same rows.

The rules:

* **Consent**, ordered as the stream orders it (``updated_at``, ties by
  offset; see :mod:`pipeline.privacy.consent_history`): only a record newer
  than the held latest is in force, so a stale grant read after a newer revoke
  changes nothing. A record that puts a refusal of personalisation (or of
  analytics) in force, or a tombstone, removes the user's rows and sets the
  withdrawal cutoff to the record's time on the topic.
* **Interactions** are admitted only if personalisation is granted now and was
  granted at some time in the row's window, the row was created after the
  user's erasure cutoff (:class:`pipeline.rights.ErasureLedger`) and after the
  last withdrawal. A refusal is an outcome, counted by reason, not an error.
* **Erasure** requests enter the ledger and remove the rows at once, before
  any later row of the batch is judged.
* **No record stops the trainer**: one that cannot be applied (invalid, values
  that do not fit the model's columns, anything a rule raises on) is counted
  and returned as :class:`Rejected` with its coordinates, and the batch goes
  on. Invalid consent and erasure records are only counted: the workers
  dead-letter those to ``playback.dlq``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import msgspec

from pipeline.errors import ValidationFailed
from pipeline.privacy.consent import Purposes
from pipeline.privacy.consent_history import Change, ConsentHistory, granted_during, record_change
from pipeline.privacy.pseudonym import Pseudonymizer
from pipeline.recs.matrix import InteractionStore
from pipeline.rights import ErasureLedger, build_receipt
from pipeline.rights.ledger import Pending
from pipeline.trainer.effects import (
    INTERNAL_ERROR,
    INVALID_INTERACTION,
    INVALID_RECEIPT,
    INVALID_STAGE,
    READ_FIRST,
    UNFIT_INTERACTION,
    Dropped,
    Effects,
    Kind,
    Rejected,
    TopicRecord,
)
from pipeline.wire import DlqSource, decode_as, decode_consent, safe_detail
from pipeline.wire.outbound import Interaction
from pipeline.wire.rights import ErasureRequest, ErasureStage, Receipt, Stage

__all__ = ["Admission", "Unapplied"]

log = logging.getLogger(__name__)

_interaction = msgspec.json.Decoder(Interaction)

_ORDER: tuple[Kind, ...] = (*READ_FIRST, "interactions")


@dataclass(frozen=True)
class Unapplied:
    """Why a record was not applied, for its dead letter (``detail`` ends in a schema path)."""

    reason: str
    detail: str = ""
    row: Interaction | None = None


class Admission:
    """Consent histories, withdrawal and erasure cutoffs, and the matrix of admitted rows.

    ``topics`` maps each :data:`Kind` to its topic name (records of other
    topics are ignored). ``counters`` is shared with the shell when given, so
    one dict holds every count the trainer reports.
    """

    def __init__(
        self,
        topics: Mapping[str, str],
        pseudonymizer: Pseudonymizer,
        *,
        counters: dict[str, int] | None = None,
    ) -> None:
        self.pz = pseudonymizer
        self.topics = dict(topics)
        self.kinds: dict[str, Kind] = {topics[k]: k for k in _ORDER}
        self.store = InteractionStore()
        self.consent: dict[str, ConsentHistory] = {}  # pseudonym -> consent history (ordered by time)
        self.withdrawn_at: dict[str, int] = {}  # pseudonym -> last withdrawal (record time, ms)
        self.ledger = ErasureLedger()
        self.counters = counters if counters is not None else {}
        self._handlers: dict[Kind, Callable[[TopicRecord, Effects], Unapplied | None]] = {
            "consent": self._on_consent,
            "erasure": self._on_erasure,
            "stages": self._on_stage,
            "receipts": self._on_receipt,
            "interactions": self._on_interaction,
        }

    # -- input ---------------------------------------------------------------------------

    def apply(self, records: Iterable[TopicRecord]) -> Effects:
        """Consent and erasures first, then interactions: a batch never judges a row before them."""
        by_kind: dict[Kind, list[TopicRecord]] = {}
        for r in records:
            kind = self.kinds.get(r.topic)
            if kind is not None:
                by_kind.setdefault(kind, []).append(r)
        fx = Effects()
        for kind in _ORDER:
            for r in by_kind.get(kind, ()):
                self._guarded(kind, r, fx)
        return fx

    def _guarded(self, kind: Kind, record: TopicRecord, fx: Effects) -> None:
        """Apply one record; one that is not applied is rejected, and nothing it does raises."""
        try:
            outcome = self._handlers[kind](record, fx)
        except Exception as exc:  # never stop on a record: count, reject where it is, go on
            log.error(
                "trainer: unexpected %s at %s[%d]@%d; record dead-lettered",
                type(exc).__name__,
                record.topic,
                record.partition,
                record.offset,
            )
            self.count("internal_errors")
            outcome = Unapplied(INTERNAL_ERROR)
        if outcome is not None:
            fx.rejected.append(
                Rejected(
                    source=DlqSource(topic=record.topic, partition=record.partition, offset=record.offset),
                    reason=outcome.reason,
                    detail=outcome.detail,
                    row=outcome.row,
                    value_bytes=len(record.value or b""),
                )
            )

    def count(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n

    # -- consent and interactions ----------------------------------------------------------

    def _on_consent(self, r: TopicRecord, fx: Effects) -> Unapplied | None:
        """A consent record joins the user's history; one that withdraws removes the user's rows."""
        if not r.key:
            return None
        try:
            record = decode_consent(r.value)
        except Exception:  # an invalid record changes nothing here; the workers dead-letter it
            self.count("consent_invalid")
            return None
        user_id = r.key.decode("utf-8", "replace")
        for pseudonym in self.pz.candidates(user_id):
            if record is None:  # a tombstone deletes the history
                self.consent.pop(pseudonym, None)
                withdrawn = True
            else:
                p = record.purposes
                change = Change(record.updated_at_ms, r.offset, Purposes.from_wire(p))
                history, in_force = record_change(self.consent.get(pseudonym), change)
                self.consent[pseudonym] = history
                if not in_force:
                    self.count("consent_stale")
                withdrawn = in_force and not (p.analytics and p.personalization)
            if withdrawn:
                self.withdrawn_at[pseudonym] = max(r.timestamp, self.withdrawn_at.get(pseudonym, 0))
                fx.withdrawn.append(Dropped(pseudonym, self.drop([pseudonym])))
        return None

    def refusal(self, row: Interaction, created_at: int) -> str | None:
        """Why ``row`` (created at ``created_at`` on the topic) may not enter the matrix; None: it may.

        ``no_personalization`` (not granted now), ``not_granted_in_window``,
        ``erased`` (created up to the user's erasure cutoff) or ``withdrawn``
        (created up to the last withdrawal).
        """
        history = self.consent.get(row.user)
        if history is None or not (history.current.analytics and history.current.personalization):
            return "no_personalization"
        if not granted_during(history, row.window_start, row.window_end):
            return "not_granted_in_window"
        if self.ledger.refuses(row.user, created_at):
            return "erased"
        if created_at <= self.withdrawn_at.get(row.user, -1):
            return "withdrawn"
        return None

    def _on_interaction(self, r: TopicRecord, fx: Effects) -> Unapplied | None:
        try:
            row = _interaction.decode(r.value or b"")
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            self.count("interactions_invalid")
            return Unapplied(INVALID_INTERACTION, safe_detail(str(exc)))
        refusal = self.refusal(row, r.timestamp)
        if refusal is not None:
            self.count("interactions_refused_" + refusal)
            return None
        try:
            self.store.add(row)
        except (ValueError, OverflowError, TypeError):
            self.count("interactions_unfit")
            return Unapplied(UNFIT_INTERACTION, "", row)
        fx.admitted.append(row.user)
        self.count("interactions")
        return None

    def drop(self, pseudonyms: Iterable[str]) -> int:
        """Remove these users' rows from the matrix; how many users had any."""
        return sum(self.store.remove_user(p) for p in pseudonyms)

    # -- erasure (Art. 17) -----------------------------------------------------------------

    def _on_erasure(self, r: TopicRecord, fx: Effects) -> Unapplied | None:
        """An invalid request is only counted: the workers dead-letter it to ``playback.dlq``."""
        try:
            if not r.key:
                raise ValueError("no key")
            request = decode_as(r.value or b"", ErasureRequest)
        except Exception:  # the workers dead-letter it; nothing to do here
            self.count("erasure_invalid")
            return None
        user_id = r.key.decode("utf-8", "replace")
        names = self.pz.candidates(user_id)
        self.pz.forget(user_id)
        self.ledger.request(request.request_id, names, request.requested_at)
        self.drop(names)  # before any later row of the batch is judged
        fx.erased.extend(names)
        return None

    def _on_stage(self, r: TopicRecord, fx: Effects) -> Unapplied | None:
        try:
            stage = decode_as(r.value or b"", ErasureStage)
        except ValidationFailed as exc:
            self.count("erasure_stage_invalid")
            return Unapplied(INVALID_STAGE, exc.detail)
        self.ledger.stage(stage)
        return None

    def _on_receipt(self, r: TopicRecord, fx: Effects) -> Unapplied | None:
        try:
            receipt = decode_as(r.value or b"", Receipt)
        except ValidationFailed as exc:
            self.count("receipt_invalid")
            return Unapplied(INVALID_RECEIPT, exc.detail)
        self.ledger.receipt(receipt)
        return None

    def awaiting(self, stage: Stage) -> list[Pending]:
        """Requests (seen as such, without a receipt) whose ``stage`` this trainer has yet to do."""
        return self.ledger.awaiting(stage)

    def finish(
        self, entry: Pending, stage: Stage, at_ms: int, detail: dict[str, int] | None = None
    ) -> ErasureStage:
        """Record that this process did ``stage`` of ``entry``; the ``erasure.stages`` record saying so.

        Call it only once the stage's work is done (for ``trainer``: rows,
        factors and artefacts), so a failure before leaves it awaiting.
        """
        self.ledger.finished(entry.request_id, stage, at_ms, detail)
        if stage == "trainer":
            self.count("erasures")
        return ErasureStage(
            request_id=entry.request_id,
            pseudonym=entry.pseudonym,
            stage=stage,
            requested_at=entry.requested_at,
            finished_at=entry.stages[stage],
            detail=entry.details.get(stage, {}),
        )

    def ready(self) -> list[Pending]:
        """Requests with every stage confirmed and no receipt yet."""
        return self.ledger.ready()

    @staticmethod
    def receipt(entry: Pending, at_ms: int, model_clean_by_ms: int) -> Receipt:
        """The ``receipt.v1`` of a ready request (mark it with :meth:`issued` once it is out)."""
        return build_receipt(entry, at_ms, model_clean_by_ms)

    def issued(self, receipt: Receipt) -> None:
        """The receipt is produced: the request is done."""
        self.ledger.mark_issued(receipt.request_id)
        self.count("receipts")

    def __repr__(self) -> str:
        return f"Admission(users={len(self.store.users())}, rows={len(self.store)})"
