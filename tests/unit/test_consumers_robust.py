"""No record stops a consumer: the receipts watcher, the export and lag skip and count bad ones."""

from __future__ import annotations

import msgspec

from pipeline.ops.lag import PartitionSample, lag_seconds
from pipeline.rights import watch
from pipeline.rights.export import consent_section
from pipeline.wire.rights import Receipt
from tests.support.records import Rec


class Consumer:
    def __init__(self, batches: list[list[Rec]]) -> None:
        self.batches = batches

    def assign(self, tps) -> None:
        pass

    def end_offsets(self, tps) -> dict:
        return {}

    def seek(self, tp, offset) -> None:
        pass

    def poll(self, timeout_ms: int = 0) -> dict:
        return {"tp": self.batches.pop(0)} if self.batches else {}


def receipt(request_id: str) -> bytes:
    return msgspec.json.encode(
        Receipt(
            request_id=request_id,
            pseudonym="k1.p",
            requested_at=1,
            completed_at=2,
            stages={"stream": 1, "trainer": 2, "cache": 2},
            remains=[],
        )
    )


def test_receipt_watcher_counts_bad_records_and_keeps_reading(monkeypatch):
    monkeypatch.setattr(watch, "probe_end_offsets", lambda *a, **k: {})
    good = "a" * 32
    bad = [
        Rec("receipts", 0, 0, 1, None, b"{not json"),
        Rec("receipts", 0, 1, 1, None, None),
        Rec("stages", 0, 0, 1, None, b'{"schema":"erasure.stage.v1","request_id":' + b"[" * 5000 + b"]"),
        Rec("receipts", 0, 2, 1, None, b'{"schema":"receipt.v1","request_id":"' + b"9" * 2**12 + b'"}'),
    ]
    consumer = Consumer([bad, [Rec("receipts", 0, 3, 1, None, receipt(good))]])
    watcher = watch.ReceiptWatcher(consumer, "receipts", "stages", 1, bootstrap="x:1")
    assert watcher.poll() == 0 and watcher.invalid == 4
    assert watcher.poll() == 1 and good in watcher.receipts


def test_export_survives_a_producer_set_timestamp_beyond_any_date():
    record = Rec("consent", 0, 0, 2**62, b"alice", None)  # a tombstone with a hostile CreateTime
    section = consent_section([record])
    assert section["history"][0]["time"] is None and section["history"][0]["tombstone"] is True


def test_lag_ignores_missing_or_bogus_message_timestamps():
    now = 1_900_000_000_000
    for stamp in (-1, now + 10**12):
        sample = PartitionSample("g", "t", 0, committed=5, log_end=9, at_ms=now, message_ms=stamp)
        seconds, method = lag_seconds(sample, [(5, now - 30_000), (9, now)], now)
        assert method == "interpolated" and seconds == 30.0
    ok = PartitionSample("g", "t", 0, committed=5, log_end=9, at_ms=now, message_ms=now - 4_000)
    assert lag_seconds(ok, [], now) == (4.0, "age")
