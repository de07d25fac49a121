"""agents/compat.py: the start-up check, and each patch against a stand-in for what it wraps."""

from __future__ import annotations

import asyncio
import random
import tomllib
from pathlib import Path
from types import SimpleNamespace

import pytest
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from faust import streams as faust_streams
from faust import topics as faust_topics
from faust.tables import recovery as faust_recovery
from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from agents import compat, compat_check
from agents.compat import KafkaPartitioner, murmur2
from agents.compat_check import PINS, CompatError, Target, check_compat, problems


def test_murmur2_is_aiokafkas_bit_for_bit():
    rng = random.Random(11)
    for length in [*range(0, 70), 255, 256, 257, 300, 1000]:
        for _ in range(5):
            data = rng.randbytes(length)
            assert murmur2(data) == aiokafka_murmur2(data), length


def test_partitioner_picks_the_default_partitioners_partition():
    ours, theirs = KafkaPartitioner(), DefaultPartitioner()
    rng = random.Random(12)
    for n in (1, 3, 8, 12):
        partitions = list(range(n))
        for _ in range(300):
            key = f"k1.{rng.getrandbits(128):032x}".encode()
            assert ours(key, partitions, partitions) == theirs(key, partitions, partitions)
    assert ours(None, [0, 1], [1]) == 1  # no key: a random available partition


# --- the start-up check: pins and the shape of every patched attribute -------------------------

ROOT = Path(__file__).resolve().parents[2]


def test_installed_libraries_pass_the_check():
    assert problems() == []
    check_compat(force=True)


def test_pyproject_pins_are_the_checked_ones():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for dist, (low, high) in PINS.items():
        assert f"{dist}>={low},<{high}" in deps


def test_a_version_outside_the_pins_fails_loudly(monkeypatch):
    monkeypatch.setattr(
        compat_check, "_installed_version", lambda d: "0.16.0" if d == "faust-streaming" else "0.14.0"
    )
    with pytest.raises(
        CompatError, match=r"faust-streaming 0\.16\.0 is outside the tested range >=0\.15\.3,<0\.16"
    ):
        check_compat(force=True)
    monkeypatch.setattr(compat_check, "_installed_version", lambda d: None)
    assert "aiokafka is not installed" in problems(checked=[])


def test_a_missing_patched_attribute_fails_loudly(monkeypatch):
    monkeypatch.delattr(faust_aiokafka.AIOKafkaConsumerThread, "_fetch_records")
    with pytest.raises(CompatError, match=r"AIOKafkaConsumerThread\._fetch_records: missing"):
        check_compat(force=True)


def test_a_reshaped_attribute_fails_loudly(monkeypatch):
    def sync_highwaters(self, partitions):  # was a coroutine function
        return {}

    async def ack(self, msg):  # was a plain function taking (self, message)
        return True

    monkeypatch.setattr(faust_aiokafka.AIOKafkaConsumerThread, "_highwaters", sync_highwaters)
    monkeypatch.setattr(faust_consumer.Consumer, "ack", ack)
    found = problems(pins={})
    assert any("_highwaters: expected a coroutine function" in p for p in found)
    assert any("Consumer.ack: expected a plain function" in p for p in found)

    def renamed(self, msg):
        return True

    monkeypatch.setattr(faust_consumer.Consumer, "ack", renamed)
    assert any("Consumer.ack: parameters ('self', 'msg')" in p for p in problems(pins={}))


def test_source_targets_are_checked():
    class Gone:
        def __init__(self):
            self.other = 1

    assert problems(pins={}, checked=[Target(Gone, "_acked", "source")]) == [
        f"{Target(Gone, '_acked', 'source').label}: no longer set in __init__"
    ]


def test_the_check_sees_through_our_own_patches():
    compat.install_fetch_snapshot()
    compat.install_no_ack_for_skipped()
    assert getattr(faust_aiokafka.AIOKafkaConsumerThread._fetch_records, "_privrec_patched", False)
    assert problems(pins={}) == []


# --- each patch does what its docstring says --------------------------------------------------


def test_true_highwaters_raises_reported_offsets_to_the_probed_ones(monkeypatch):
    calls = []

    async def original(self, partitions):
        return {p: 5 for p in partitions}

    def probe(bootstrap, reported, **options):
        calls.append((bootstrap, options))
        return {tp: end + 2 for tp, end in reported.items()}

    monkeypatch.setattr(compat, "probe_end_offsets", probe)
    monkeypatch.setitem(compat._installed, "bootstrap", "127.0.0.1:9")
    monkeypatch.setitem(compat._installed, "options", {"security_protocol": "PLAINTEXT"})
    patched = compat.true_highwaters(original)
    assert asyncio.run(patched(object(), ["a", "b"])) == {"a": 7, "b": 7}
    assert calls == [("127.0.0.1:9", {"security_protocol": "PLAINTEXT"})]
    assert patched.__wrapped__ is original


def test_true_highwaters_installs_for_the_embedded_broker_only(monkeypatch):
    thread = faust_aiokafka.AIOKafkaConsumerThread
    monkeypatch.setattr(thread, "_highwaters", thread._highwaters)  # restored after the test
    monkeypatch.setattr(compat, "_installed", {})
    faust_own = thread._highwaters
    compat.install_true_highwaters(None)  # external Kafka: nothing to do
    assert thread._highwaters is faust_own
    compat.install_true_highwaters("127.0.0.1:9")
    assert thread._highwaters is not faust_own and thread._highwaters.__wrapped__ is faust_own
    compat.install_true_highwaters(None)  # an app for external Kafka in the same process
    assert thread._highwaters is faust_own


def test_fetch_snapshot_freezes_the_live_set_and_skips_empty_fetches(monkeypatch):
    seen = []

    async def original(self, consumer, active_partitions, timeout=None, max_records=None):
        seen.append(active_partitions)
        return {"records": True}

    thread = faust_aiokafka.AIOKafkaConsumerThread
    monkeypatch.setattr(thread, "_fetch_records", original)
    compat.install_fetch_snapshot()
    live = {"tp0"}
    assert asyncio.run(thread._fetch_records(None, None, live, timeout=1.0)) == {"records": True}
    live.add("tp1")  # recovery changes Faust's set afterwards: the fetch keeps its snapshot
    assert seen == [frozenset({"tp0"})] and isinstance(seen[0], frozenset)
    assert asyncio.run(thread._fetch_records(None, None, set())) == {}  # aiokafka: empty = all
    assert len(seen) == 1


TP0 = TP("playback.raw", 0)


class _FakeConsumer:
    def __init__(self, active: bool, generation: int):
        self.app = SimpleNamespace(
            flow_control=SimpleNamespace(is_active=lambda: active), consumer_generation_id=generation
        )
        self.seeks = []

    def assignment(self):
        return {TP0}

    async def seek(self, tp, offset):
        self.seeks.append((tp, offset))


def test_no_ack_for_skipped_refuses_and_rewinds(monkeypatch):
    acked = []
    monkeypatch.setattr(faust_consumer.Consumer, "ack", lambda self, message: acked.append(message) or True)
    compat.install_no_ack_for_skipped()
    ack = faust_consumer.Consumer.ack

    def msg(offset, generation=1, tracked=False):
        return SimpleNamespace(tp=TP0, offset=offset, generation_id=generation, tracked=tracked)

    async def scenario():
        live = _FakeConsumer(active=True, generation=1)
        assert ack(live, msg(3)) is True  # normal: Faust's ack runs
        stale = _FakeConsumer(active=True, generation=2)
        assert ack(stale, msg(8, generation=1)) is False  # older generation: refused
        assert ack(stale, msg(6, generation=1)) is False
        await stale.__dict__["_privrec_rewind_task"]
        paused = _FakeConsumer(active=False, generation=1)
        assert ack(paused, msg(4)) is False  # flow control suspended (rebalance): refused
        await paused.__dict__["_privrec_rewind_task"]
        return live, stale, paused

    _, stale, paused = asyncio.run(scenario())
    assert [m.offset for m in acked] == [3]
    assert stale.seeks == [(TP0, 6)]  # back to the smallest refused offset
    assert paused.seeks == [(TP0, 4)]


def test_resume_after_clear_resumes_partitions_after_the_buffers_are_cleared(monkeypatch):
    events = []

    class Flow:
        def resume(self):
            events.append("clear buffers")

    class Consumer:
        def resume_partitions(self, tps):
            events.append(("fetch", frozenset(tps)))

    async def on_recovery_completed(self, generation_id=0):  # Faust's order of operations
        self.app.consumer.resume_partitions({"s0", "s1"})
        events.append("seek")
        self.app.flow_control.resume()

    monkeypatch.setattr(faust_recovery.Recovery, "on_recovery_completed", on_recovery_completed)
    monkeypatch.setattr(faust_recovery.Recovery, "_resume_streams", on_recovery_completed)
    compat.install_resume_after_clear()
    recovery = SimpleNamespace(app=SimpleNamespace(consumer=Consumer(), flow_control=Flow()))
    asyncio.run(faust_recovery.Recovery.on_recovery_completed(recovery, 3))
    assert events == ["seek", "clear buffers", ("fetch", frozenset({"s0", "s1"}))]
    assert "resume_partitions" not in vars(recovery.app.consumer)  # the instance override is gone
    events.clear()
    asyncio.run(faust_recovery.Recovery._resume_streams(recovery))
    assert events == ["seek", "clear buffers", ("fetch", frozenset({"s0", "s1"}))]


def test_fast_producer_lookup_skips_the_event_loop_only_when_safe(monkeypatch):
    slow = []

    async def original(self):
        slow.append(self)
        return "started by Faust"

    monkeypatch.setattr(faust_topics.Topic, "_get_producer", original)
    compat.install_fast_producer_lookup()
    producer = SimpleNamespace(started=True)
    ready = SimpleNamespace(app=SimpleNamespace(producer=producer, in_transaction=False))
    assert asyncio.run(faust_topics.Topic._get_producer(ready)) is producer
    assert slow == []
    for app in (
        SimpleNamespace(producer=SimpleNamespace(started=False), in_transaction=False),
        SimpleNamespace(producer=producer, in_transaction=True),
    ):
        assert asyncio.run(faust_topics.Topic._get_producer(SimpleNamespace(app=app))) == "started by Faust"
    assert len(slow) == 2


def test_short_fetch_wait_sets_the_consumers_max_wait(monkeypatch):
    made = SimpleNamespace(_fetch_max_wait_ms=1500)
    monkeypatch.setattr(faust_aiokafka.AIOKafkaConsumerThread, "_create_worker_consumer", lambda s, t: made)
    monkeypatch.setitem(compat._installed, "fetch_max_wait_ms", 100)
    compat.install_short_fetch_wait(250)
    assert faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer(None, None) is made
    assert made._fetch_max_wait_ms == 250


def test_hole_repair_seeks_back_when_a_hole_persists():
    timers = []
    consumer = SimpleNamespace(
        _acked={TP0: [12, 13]}, _committed_offset={TP0: 9}, assignment=lambda: {TP0}, seeks=[]
    )

    async def seek(tp, offset):
        consumer.seeks.append((tp, offset))

    consumer.seek = seek
    app = SimpleNamespace(consumer=consumer, timer=lambda interval: timers.append)
    compat.install_hole_repair(app, interval_s=1.0)
    (repair,) = timers
    asyncio.run(repair())
    assert consumer.seeks == []  # first sighting: may be in flight
    asyncio.run(repair())
    assert consumer.seeks == [(TP0, 9)]  # same hole twice: re-read from the committed offset
    consumer._acked[TP0] = [10]
    consumer._committed_offset[TP0] = 10
    asyncio.run(repair())
    asyncio.run(repair())
    assert consumer.seeks == [(TP0, 9)]  # no hole: nothing


def test_as_current_event_sets_fausts_current_event():
    class Event:
        pass

    event = Event()
    assert faust_streams.current_event() is None
    with compat.as_current_event(event):
        assert faust_streams.current_event() is event
    assert faust_streams.current_event() is None
