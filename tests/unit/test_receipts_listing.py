"""The proof ledger and where each erasure request stands (`privrec receipts`), without Kafka."""

from __future__ import annotations

import argparse
import json
import os

import msgspec
import pytest

from agents.receipts import since_ms
from pipeline.rights.ledger import Pending
from pipeline.rights.proofs import ProofLedger
from pipeline.rights.receipts import build_receipt
from pipeline.rights.standing import Standings
from pipeline.wire.rights import ErasureStage

A, B = "a" * 32, "b" * 32


def _receipt(request_id: str = A):
    entry = Pending(request_id, ["ps-a"], 1000, {"stream": 1100, "trainer": 1200, "cache": 1300})
    return build_receipt(entry, 1400, 5000)


def test_ledger_appends_private_lines_and_skips_a_torn_one(tmp_path):
    ledger = ProofLedger(tmp_path)
    ledger.erasure_request(A, "ps-a", 1000)
    ledger.receipt(_receipt())
    assert oct(os.stat(ledger.path).st_mode & 0o777) == "0o600"
    with open(ledger.path, "a") as fh:
        fh.write('{"kind": "receipt", "rec')  # a crash mid-append
    entries = list(ledger.entries())
    assert [e["kind"] for e in entries] == ["erasure_request", "receipt"]
    assert entries[1]["record"]["request_id"] == A
    text = ledger.path.read_text()
    assert "ps-a" in text and all(json.loads(line) for line in text.splitlines()[:2])


def test_standings_merge_topics_and_ledger():
    s = Standings()
    s.request(B, 2000, "ps-b", "broker")
    s.stage(ErasureStage(request_id=B, pseudonym="ps-b", stage="stream", requested_at=2000, finished_at=2100))
    s.stage(ErasureStage(request_id=A, pseudonym="ps-a", stage="stream", requested_at=1000, finished_at=1100))
    s.receipt(_receipt())
    s.receipt(_receipt())  # duplicates change nothing
    bad = s.ledger(
        [
            {"kind": "receipt", "record": {}},
            {
                "kind": "erasure_request",
                "record": {"request_id": A, "pseudonym": "ps-a", "requested_at": 1000},
            },
        ]
    )
    assert bad == 1  # the empty receipt record
    rows = s.rows()
    assert [r.request_id for r in rows] == [A, B]
    a, b = (r.to_dict() for r in rows)
    assert a["complete"] and a["pending"] == [] and a["completed_at"] == 1400
    assert a["sources"] == ["broker", "ledger"]
    assert a["stages"] == {"stream": 1100, "trainer": 1200, "cache": 1300}
    assert not b["complete"] and b["pending"] == ["trainer", "cache", "receipt"]
    assert b["stages"] == {"stream": 2100, "trainer": None, "cache": None}
    assert [r.request_id for r in s.rows(pending_only=True)] == [B]
    assert [r.request_id for r in s.rows(since_ms=1500)] == [B]


def test_a_request_known_only_to_the_ledger_is_listed():
    s = Standings()
    ledger = [{"kind": "receipt", "record": msgspec.to_builtins(_receipt())}]
    assert s.ledger(ledger) == 0
    (row,) = s.rows()
    assert row.complete and row.sources == {"ledger"} and row.pseudonym == "ps-a"


def test_since_takes_rfc3339_or_an_age():
    assert since_ms("1970-01-01T00:00:01Z") == 1000
    assert since_ms("1970-01-01T01:00:01+01:00") == 1000
    assert since_ms("1970-01-02") == 86_400_000
    assert since_ms("2h", now=10_000.0) == (10_000 - 7200) * 1000
    with pytest.raises(argparse.ArgumentTypeError):
        since_ms("yesterday")
