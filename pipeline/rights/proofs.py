"""The proof ledger: erasure requests and receipts appended to a file in the state dir.

Receipts live on the ``receipts`` topic, and a topic is only as durable as its
broker: the embedded one keeps its data in memory between snapshots. So every
receipt the trainer issues, and every request ``privrec erase`` sends, is also
appended to ``<state_dir>/ledger/proofs.jsonl``: one JSON object a line, the
file mode 0600, each append fsynced before the call returns, and an exclusive
``flock`` around it so lines of concurrent writers never interleave.

A line holds only what the records already carry: request ids, pseudonyms,
times, stage times and the receipt's ``remains``; never a raw user id.
Lines are never rewritten; a reader keeps the first of duplicates.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

from pipeline.wire.rights import Receipt

__all__ = ["LEDGER_FILE", "ProofLedger"]

log = logging.getLogger(__name__)

LEDGER_FILE = "proofs.jsonl"


class ProofLedger:
    """Append-only, fsynced JSON lines of proofs under one state dir."""

    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / "ledger" / LEDGER_FILE

    def append(self, kind: str, record: dict[str, Any]) -> None:
        """Append ``{"kind", "logged_at", "record"}`` and fsync it."""
        line = json.dumps(
            {"kind": kind, "logged_at": int(time.time() * 1000), "record": record},
            separators=(",", ":"),
            sort_keys=True,
        )
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            data = (line + "\n").encode()
            while data:
                data = data[os.write(fd, data) :]
            os.fsync(fd)
        finally:
            os.close(fd)

    def receipt(self, receipt: Receipt) -> None:
        """A receipt as issued (its ``receipt.v1`` fields)."""
        self.append("receipt", msgspec.to_builtins(receipt))

    def erasure_request(self, request_id: str, pseudonym: str, requested_at: int) -> None:
        """A request as sent (the pseudonym under the newest key, never the raw id)."""
        self.append(
            "erasure_request",
            {"request_id": request_id, "pseudonym": pseudonym, "requested_at": requested_at},
        )

    def entries(self) -> Iterator[dict[str, Any]]:
        """Every readable line, oldest first; a torn last line (a crash mid-append) is skipped."""
        if not self.path.exists():
            return
        with open(self.path, encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                try:
                    entry = json.loads(line)
                except ValueError:
                    log.warning("proof ledger %s: unreadable line %d skipped", self.path, n)
                    continue
                if isinstance(entry, dict) and isinstance(entry.get("record"), dict):
                    yield entry
