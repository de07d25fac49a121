"""What the trainer's core asks its shell to do after a batch of records.

:class:`pipeline.trainer.admission.Admission` holds the trainer's rules and the
matrix; everything that reaches outside (the model's factors, the Redis cache,
``trainer.dlq``) comes back as an :class:`Effects` for ``agents/trainer.py`` to
perform, as the stream's :class:`pipeline.stream.effects.Effects` does for the
worker. So every rule is tested without a broker or Redis.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, NamedTuple, Protocol

from pipeline.privacy.deadletter import dead_letter
from pipeline.wire import DeadLetter, DlqSource
from pipeline.wire.outbound import Interaction

__all__ = [
    "INTERNAL_ERROR",
    "INVALID_INTERACTION",
    "INVALID_RECEIPT",
    "INVALID_STAGE",
    "READ_FIRST",
    "UNFIT_INTERACTION",
    "Dropped",
    "Effects",
    "Kind",
    "Rejected",
    "TopicRecord",
]

Kind = Literal["consent", "erasure", "stages", "receipts", "interactions"]
"""The trainer's inputs, by role (the shell maps each to its topic name)."""

READ_FIRST: tuple[Kind, ...] = ("consent", "erasure", "stages", "receipts")
"""Read (and applied) before ``interactions``: a row is judged against the user's whole history."""

INVALID_INTERACTION = "invalid_interaction"
UNFIT_INTERACTION = "unfit_interaction"
INVALID_STAGE = "invalid_stage"
INVALID_RECEIPT = "invalid_receipt"
INTERNAL_ERROR = "internal_error"


class TopicRecord(Protocol):
    """A consumed record as far as the core reads one (kafka-python's ``ConsumerRecord`` is one).

    ``partition`` and ``offset`` are read only when a record is dead-lettered
    (and ``offset`` of a consent record, which orders equal times).
    """

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...


class Dropped(NamedTuple):
    """A user whose consent withdrawal removed them: ``rows`` left the matrix already."""

    pseudonym: str
    rows: int


@dataclass(frozen=True)
class Rejected:
    """A record that was not applied: why, and where it is (never its value)."""

    source: DlqSource
    reason: str
    detail: str = ""
    row: Interaction | None = None  # decoded but unfit: its pseudonym goes into the letter
    value_bytes: int = 0

    def judged_before(self, committed: Mapping[tuple[str, int], int]) -> bool:
        """Below the group's committed offset: an earlier run judged (and dead-lettered) it."""
        return self.source.offset < committed.get((self.source.topic, self.source.partition), 0)

    def letter(self, at_ms: int) -> DeadLetter:
        """The ``dlq.v2`` record for ``trainer.dlq``."""
        return dead_letter(
            reason=self.reason,
            source=self.source,
            at=at_ms,
            detail=self.detail,
            event=self.row,
            pseudonym=self.row.user if self.row is not None else None,
            value_bytes=self.value_bytes,
        )


@dataclass
class Effects:
    """What a batch changed outside the core, in the order the shell performs it.

    Within one batch every removal precedes every admission (consent and
    erasure records are applied before interactions), so the shell drops
    ``withdrawn`` and ``erased`` users from its fold-in schedule before it adds
    ``admitted`` ones.
    """

    withdrawn: list[Dropped] = field(default_factory=list)
    """Consent withdrawn: drop the users' factors and cached recommendations now (Art. 21)."""
    erased: list[str] = field(default_factory=list)
    """Erasure requested: drop the users' factors now; the cache stage deletes their entries."""
    admitted: list[str] = field(default_factory=list)
    """The pseudonym of each row that entered the matrix (fold-in and retrain schedule)."""
    rejected: list[Rejected] = field(default_factory=list)
    """Records to dead-letter to ``trainer.dlq`` (once per group: see :meth:`Rejected.judged_before`)."""
