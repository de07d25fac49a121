"""Bookkeeping of erasure requests: which stage finished when, and what data is refused.

:class:`ErasureLedger` is pure: the trainer (the erasure coordinator) and
``privrec export`` feed it the records of the ``erasure``, ``erasure.stages``
and ``receipts`` topics in whatever order they are read, and ask it

* which requests still need the trainer's own stages,
* which requests have every stage confirmed and no receipt yet,
* whether an interaction record must be refused because it was produced
  before its user's erasure took effect in the stream (the *cutoff*).

The cutoff of a pseudonym is the time the ``stream`` stage finished: the
worker holding the user's partition purged their windows and stopped
accepting their events then, so every interaction of the user created up to
that instant is pre-erasure data. While the stream stage is pending, every
interaction of the user is refused. Interactions created after the cutoff
can only come from a new consent the user gave after the erasure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from pipeline.wire.rights import STAGES, ErasureStage, Receipt

__all__ = ["PENDING", "ErasureLedger", "Pending"]

PENDING = 2**63 - 1
"""Cutoff while the stream stage has not confirmed: refuse everything of the user."""


@dataclass
class Pending:
    """One erasure request as far as it is known."""

    request_id: str
    pseudonyms: list[str]
    requested_at: int
    stages: dict[str, int] = field(default_factory=dict)
    details: dict[str, dict[str, int]] = field(default_factory=dict)
    issued: bool = False
    seen_request: bool = False

    @property
    def pseudonym(self) -> str:
        """The pseudonym under the newest key (what receipts carry)."""
        return self.pseudonyms[0]

    @property
    def complete(self) -> bool:
        return all(s in self.stages for s in STAGES)


class ErasureLedger:
    """Erasure requests, their stages and receipts, and the cutoffs they imply."""

    def __init__(self) -> None:
        self.requests: dict[str, Pending] = {}
        self._open: dict[str, None] = {}  # request ids without a receipt, in arrival order
        self._by_pseudonym: dict[str, set[str]] = {}
        self._cutoff: dict[str, int] = {}

    # -- input ---------------------------------------------------------------------------

    def request(self, request_id: str, pseudonyms: Iterable[str], requested_at: int) -> Pending:
        """An ``erasure.v1`` record; ``pseudonyms``: the user's under every key, newest first."""
        names = list(pseudonyms)
        entry = self.requests.get(request_id)
        if entry is None:
            entry = self.requests[request_id] = Pending(request_id, names, requested_at)
            self._open[request_id] = None
        else:  # a stage or receipt was read first: it knew only the newest pseudonym
            entry.pseudonyms = names + [p for p in entry.pseudonyms if p not in names]
        entry.seen_request = True
        self._index(entry)
        return entry

    def stage(self, record: ErasureStage) -> Pending:
        """An ``erasure.stage.v1`` record."""
        entry = self._entry(record.request_id, record.pseudonym, record.requested_at)
        entry.stages[record.stage] = record.finished_at
        if record.detail:
            entry.details[record.stage] = dict(record.detail)
        if record.stage == "stream":
            self._index(entry)
        return entry

    def receipt(self, record: Receipt) -> Pending:
        """A ``receipt.v1`` record: the request is done, whatever else is read later."""
        entry = self._entry(record.request_id, record.pseudonym, record.requested_at)
        for name, at in record.stages.items():
            entry.stages.setdefault(name, at)
        self.mark_issued(record.request_id)
        self._index(entry)
        return entry

    def mark_issued(self, request_id: str) -> None:
        """The request's receipt is out (written by this process or read back)."""
        self.requests[request_id].issued = True
        self._open.pop(request_id, None)

    def finished(self, request_id: str, stage: str, at: int, detail: dict[str, int] | None = None) -> None:
        """Record a stage this process performed itself."""
        entry = self.requests[request_id]
        entry.stages[stage] = at
        if detail:
            entry.details[stage] = dict(detail)

    # -- questions -----------------------------------------------------------------------

    def cutoff(self, pseudonym: str) -> int | None:
        """Interactions of ``pseudonym`` created at or before this are refused (None: none)."""
        return self._cutoff.get(pseudonym)

    def refuses(self, pseudonym: str, created_at_ms: int) -> bool:
        cutoff = self._cutoff.get(pseudonym)
        return cutoff is not None and created_at_ms <= cutoff

    def erased(self) -> set[str]:
        """Every pseudonym with an erasure request."""
        return set(self._cutoff)

    def awaiting(self, stage: str) -> list[Pending]:
        """Requests (seen as such) without a receipt where ``stage`` has not finished."""
        entries = (self.requests[r] for r in self._open)
        return [e for e in entries if e.seen_request and stage not in e.stages]

    def ready(self) -> list[Pending]:
        """Requests with every stage confirmed and no receipt yet."""
        return [e for e in (self.requests[r] for r in self._open) if e.complete]

    # -- internals -----------------------------------------------------------------------

    def _entry(self, request_id: str, pseudonym: str, requested_at: int) -> Pending:
        entry = self.requests.get(request_id)
        if entry is None:
            entry = self.requests[request_id] = Pending(request_id, [pseudonym], requested_at)
            self._open[request_id] = None
        elif pseudonym not in entry.pseudonyms:
            entry.pseudonyms.insert(0, pseudonym)
        return entry

    def _index(self, entry: Pending) -> None:
        for p in entry.pseudonyms:
            self._by_pseudonym.setdefault(p, set()).add(entry.request_id)
        for p in entry.pseudonyms:
            self._cutoff[p] = max(
                self.requests[r].stages.get("stream", PENDING) for r in self._by_pseudonym[p]
            )
