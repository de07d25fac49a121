"""Where each erasure request stands: which stages confirmed, what is pending, its receipt.

Pure: ``privrec receipts`` feeds it the records of the ``erasure``,
``erasure.stages`` and ``receipts`` topics and the lines of the proof ledger
(:mod:`pipeline.rights.proofs`), in any order and with duplicates, and prints
:meth:`Standings.rows`. A request known only from the ledger (its topics lost
with a broker) is still listed, with ``sources`` saying where it was read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from pipeline.wire.rights import STAGES, ErasureStage, Receipt

__all__ = ["ErasureStanding", "Standings"]


@dataclass
class ErasureStanding:
    """One erasure request as far as it is known (pseudonyms only, never a raw id)."""

    request_id: str
    requested_at: int
    pseudonym: str | None = None
    stages: dict[str, int] = field(default_factory=dict)
    receipt: dict[str, Any] | None = None
    sources: set[str] = field(default_factory=set)

    @property
    def complete(self) -> bool:
        return self.receipt is not None

    @property
    def pending(self) -> list[str]:
        """Stages not confirmed yet, then ``receipt`` while none was issued."""
        if self.complete:
            return []
        return [s for s in STAGES if s not in self.stages] + ["receipt"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "pseudonym": self.pseudonym,
            "requested_at": self.requested_at,
            "stages": {s: self.stages.get(s) for s in STAGES},
            "pending": self.pending,
            "complete": self.complete,
            "completed_at": self.receipt["completed_at"] if self.receipt else None,
            "receipt": self.receipt,
            "sources": sorted(self.sources),
        }


class Standings:
    """Erasure requests by id, merged from every source."""

    def __init__(self) -> None:
        self.by_id: dict[str, ErasureStanding] = {}

    def _get(self, request_id: str, requested_at: int, source: str) -> ErasureStanding:
        row = self.by_id.get(request_id)
        if row is None:
            row = self.by_id[request_id] = ErasureStanding(request_id, requested_at)
        row.sources.add(source)
        return row

    def request(self, request_id: str, requested_at: int, pseudonym: str | None, source: str) -> None:
        row = self._get(request_id, requested_at, source)
        row.pseudonym = row.pseudonym or pseudonym

    def stage(self, record: ErasureStage, source: str = "broker") -> None:
        row = self._get(record.request_id, record.requested_at, source)
        row.pseudonym = row.pseudonym or record.pseudonym
        row.stages.setdefault(record.stage, record.finished_at)

    def receipt(self, record: Receipt, source: str = "broker") -> None:
        row = self._get(record.request_id, record.requested_at, source)
        row.pseudonym = record.pseudonym
        for name, at in record.stages.items():
            row.stages.setdefault(name, at)
        if row.receipt is None:
            row.receipt = msgspec.to_builtins(record)

    def ledger(self, entries: Iterable[dict[str, Any]]) -> int:
        """Lines of the proof ledger; returns how many could not be read (skipped)."""
        bad = 0
        for entry in entries:
            record = entry["record"]
            try:
                if entry.get("kind") == "receipt":
                    self.receipt(msgspec.convert(record, Receipt), "ledger")
                elif entry.get("kind") == "erasure_request":
                    request_id, at = str(record["request_id"]), int(record["requested_at"])
                    self.request(request_id, at, record.get("pseudonym"), "ledger")
            except (msgspec.ValidationError, KeyError, TypeError, ValueError):
                bad += 1
        return bad

    def rows(self, *, since_ms: int | None = None, pending_only: bool = False) -> list[ErasureStanding]:
        """Oldest request first; ``since_ms``: requested at or after; ``pending_only``: no receipt yet."""
        rows = sorted(self.by_id.values(), key=lambda r: (r.requested_at, r.request_id))
        return [
            r
            for r in rows
            if (since_ms is None or r.requested_at >= since_ms) and not (pending_only and r.complete)
        ]
