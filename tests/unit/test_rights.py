"""Erasure bookkeeping without Kafka: the stream's part, the ledger's cutoffs, receipts."""

from __future__ import annotations

import json

import msgspec
import pytest

from pipeline.privacy.pseudonym import Pseudonymizer, PseudonymKey
from pipeline.rights import PENDING, ErasureLedger, build_receipt
from pipeline.stream import StreamConfig, StreamProcessor, encode_control
from pipeline.stream.control import Control
from pipeline.wire import decode_as, encode
from pipeline.wire.rights import ErasureRequest, ErasureStage, Receipt
from tests.support.stream import NOW, SPEC, Consents, enc, event

RID = "0123456789abcdef0123456789abcdef"
OLD, NEW = PseudonymKey("k1", b"0123456789abcdef0123"), PseudonymKey("k2", b"abcdefghijabcdefghij")


def rotated() -> StreamProcessor:
    """A processor whose users have pseudonyms under two keys (k2 signs, k1 still accepted)."""
    return StreamProcessor(StreamConfig(window=SPEC), Pseudonymizer([NEW, OLD]), clock=lambda: NOW)


def request(at: int = NOW - 5) -> bytes:
    return encode(ErasureRequest(request_id=RID, requested_at=at))


def test_stream_erasure_purges_state_and_consent_and_confirms_after():
    proc = rotated()
    consents = Consents()
    consents.set(proc, "alice", True, True)
    consents.set(proc, "bob", True, True)
    proc.on_playback(0, 0, b"alice", enc(event(user="alice")), consents.get)
    proc.on_playback(0, 1, b"bob", enc(event(user="bob")), consents.get)
    names = proc.pz.candidates("alice")
    assert len(names) == 2

    fx = proc.on_erasure(0, 2, b"alice", request())

    assert proc.counters["erasures"] == 1 and proc.counters["windows_purged"] == 1
    assert {p for p, v in fx.consent if v is None} == set(names)
    deleted = {w.key for w in fx.state if w.value is None}
    assert deleted == {f"0/{n}" for n in names}
    roles = [role for role, _, _ in fx.after]
    assert roles == ["consent", "stages"]  # the tombstone, then the confirmation
    assert fx.after[0][1:] == (b"alice", None)
    stage = decode_as(fx.after[1][2], ErasureStage)
    assert (stage.stage, stage.pseudonym, stage.finished_at) == ("stream", names[0], NOW)
    assert stage.detail == {"windows_purged": 1}
    assert b"alice" not in fx.after[1][2]
    # the raw id left the pseudonymiser's cache
    assert not proc.pz.remembers("alice") and proc.pz.remembers("bob")
    # closing everything emits bob's window only
    closed = proc.on_control(0, 3, encode_control(Control(command="close_windows", id="x", at=NOW)))
    assert [json.loads(v)["user"] for _, v in closed.interactions] == [proc.pz.pseudonym("bob")]


@pytest.mark.parametrize(
    ("key", "value"),
    [(None, request()), (b"alice", b"{not json"), (b"alice", b'{"schema":"erasure.v1","request_id":"x"}')],
)
def test_invalid_erasure_requests_are_dead_lettered(key, value):
    proc = rotated()
    fx = proc.on_erasure(1, 9, key, value)
    assert not fx.after and not fx.state
    (letter,) = fx.dlq
    record = json.loads(letter[1])
    assert record["reason"] == "invalid_erasure"
    assert record["source"]["offset"] == 9


def _stage(stage: str, at: int, pseudonym: str = "k2.p") -> ErasureStage:
    return ErasureStage(request_id=RID, pseudonym=pseudonym, stage=stage, requested_at=100, finished_at=at)


def test_ledger_cutoff_refuses_everything_until_the_stream_confirms_then_up_to_it():
    ledger = ErasureLedger()
    ledger.request(RID, ["k2.p", "k1.p"], 100)
    assert ledger.cutoff("k2.p") == ledger.cutoff("k1.p") == PENDING
    assert ledger.refuses("k1.p", 10**13)
    ledger.stage(_stage("stream", 500))
    assert ledger.refuses("k2.p", 500) and ledger.refuses("k1.p", 499)
    assert not ledger.refuses("k2.p", 501)  # only a new consent after the erasure produces these
    assert not ledger.refuses("someone-else", 0)


def test_ledger_in_any_order_and_receipt_only_once():
    ledger = ErasureLedger()
    ledger.stage(_stage("stream", 500))  # read before the request (another topic)
    assert [e.request_id for e in ledger.awaiting("trainer")] == []  # not until the request is seen
    ledger.request(RID, ["k2.p", "k1.p"], 100)
    assert ledger.cutoff("k1.p") == 500
    assert [e.request_id for e in ledger.awaiting("trainer")] == [RID]
    ledger.finished(RID, "trainer", 600)
    assert ledger.ready() == []
    ledger.finished(RID, "cache", 610, {"keys_deleted": 3})
    (ready,) = ledger.ready()
    receipt = build_receipt(ready, 700, model_until=9_000)
    assert receipt.stages == {"stream": 500, "trainer": 600, "cache": 610}
    assert receipt.pseudonym == "k2.p"
    assert receipt.remains[0].until == 9_000
    ledger.mark_issued(RID)
    assert ledger.ready() == [] and ledger.awaiting("trainer") == []
    # a restart reads the receipt back: nothing is issued twice
    again = ErasureLedger()
    again.receipt(decode_as(encode(receipt), Receipt))
    again.request(RID, ["k2.p", "k1.p"], 100)
    assert again.ready() == [] and again.awaiting("trainer") == []
    assert again.refuses("k1.p", 500)


def test_receipt_needs_every_stage_and_round_trips_its_schema():
    ledger = ErasureLedger()
    entry = ledger.request(RID, ["k2.p"], 100)
    with pytest.raises(ValueError, match="stream, trainer, cache"):
        build_receipt(entry, 1, 1)
    for i, stage in enumerate(("stream", "trainer", "cache")):
        ledger.finished(RID, stage, 200 + i)
    receipt = build_receipt(entry, 300, 400)
    data = msgspec.json.decode(encode(receipt))
    assert data["schema"] == "receipt.v1"
    assert all("until" in r or r["rule"] for r in data["remains"])


def test_receipt_durations_feed_the_erasure_histogram():
    from prometheus_client import CollectorRegistry

    from agents.processes.trainer import observe_receipt
    from pipeline.ops.metrics import PipelineMetrics

    metrics = PipelineMetrics(CollectorRegistry())
    ledger = ErasureLedger()
    entry = ledger.request(RID, ["k2.p"], 1_000)
    for stage, at in (("stream", 1_200), ("trainer", 1_400), ("cache", 1_450)):
        ledger.finished(RID, stage, at)
    observe_receipt(metrics, build_receipt(entry, 1_500, 9_000))
    registry = metrics.registry
    for stage, seconds in (("stream", 0.2), ("trainer", 0.4), ("cache", 0.45), ("receipt", 0.5)):
        labels = {"stage": stage}
        assert registry.get_sample_value("privrec_erasure_duration_seconds_count", labels) == 1
        assert registry.get_sample_value("privrec_erasure_duration_seconds_sum", labels) == pytest.approx(
            seconds
        )
