"""Faults on the real broker and Redis: Redis restarts, SIGKILLed trainer and worker, hostile input.

The Redis tests start a Redis server of their own (through ``pipeline.embedded``,
so it is configured exactly as ``privrec up`` configures it) and restart or
pause it; the session's Redis, shared by every test, is never touched. Every
fault is injected at a point the test waits for (a chunk about to be written, a
version pending, a committed offset that moved), never after a sleep.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import signal
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import redis as redis_lib
from kafka import KafkaAdminClient

from agents.procs import ChildProcess
from pipeline.embedded import EmbeddedServices
from pipeline.embedded import process as embedded_process
from pipeline.errors import ServiceUnavailable
from pipeline.kafka.offsets import committed_offsets
from pipeline.kafka.topics import create_topics
from pipeline.keys import pseudonymizer
from pipeline.serving import Layout, Reader, live_version, read_meta
from pipeline.sources import consent_record
from pipeline.wire import encode
from pipeline.wire.outbound import Interaction
from tests.hostile import PENDING, hostile_messages
from tests.integration.harness import Worker, produce, read_all, wait_assigned, wait_for, wait_processed
from tests.integration.stream_harness import (
    dataset,
    envelopes,
    expected_windows,
    interactions,
    run_close,
    send_consents,
    wait_all_processed,
)
from tests.support.stream import event, feed, make

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HOUR = 3_600_000
T0 = 1_700_000_000_000 - 1_700_000_000_000 % HOUR
PERSONAL = {"analytics": True, "personalization": True, "advertising": False}


# -- a Redis of our own, restartable on the same address ---------------------------------------


class OwnRedis:
    """A Redis server started by ``pipeline.embedded`` for one test; restart keeps its address.

    A restart kills the server (SIGKILL: nothing is saved, as after a crash) and
    starts the command line ``up`` ran again, so the URL (and any password the
    embedded configuration sets) stays valid for clients that reconnect.
    """

    def __init__(self, state_dir: Path) -> None:
        self.services = EmbeddedServices(state_dir)
        spawned: list[tuple[Any, ...]] = []
        spawn = embedded_process.spawn

        def capture(*args: Any, **kwargs: Any) -> int:  # the exact command line `up` runs
            spawned.append((args, kwargs))
            return spawn(*args, **kwargs)

        embedded_process.spawn = capture
        try:
            self.record = self.services.up(kafka=False, redis=True)["redis"]
        finally:
            embedded_process.spawn = spawn
        assert spawned, "pipeline.embedded no longer starts Redis through process.spawn"
        self.spawn_args = spawned[-1]
        self.url = self.record.url
        self.pid, self.start_time = self.record.pid, self.record.start_time
        self.restarts = 0

    def client(self) -> redis_lib.Redis:
        return redis_lib.Redis.from_url(self.url)

    def restart(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        assert embedded_process.wait_until(
            lambda: not embedded_process.is_alive(self.pid, self.start_time), 10
        )
        for aof in (self.services.state_dir / "redis").glob("appendonly*"):  # a crash that lost the data
            shutil.rmtree(aof) if aof.is_dir() else aof.unlink()
        args, kwargs = self.spawn_args
        self.pid = embedded_process.spawn(*args, **kwargs)
        self.start_time = embedded_process.process_start_time(self.pid)
        probe = self.client()
        try:

            def answers() -> bool:
                try:
                    return bool(probe.ping())
                except redis_lib.RedisError:
                    return False

            assert embedded_process.wait_until(answers, 20, 0.05), "restarted Redis did not answer"
        finally:
            probe.close()
        self.restarts += 1

    def close(self) -> None:
        embedded_process.stop(self.pid, self.start_time)
        self.services.down()


@pytest.fixture
def own_redis(tmp_path):
    server = OwnRedis(tmp_path / "own-redis")
    yield server
    server.close()


class HookedRedis(redis_lib.Redis):
    """A real client that calls ``before_chunk(n)`` before the n-th pipeline execution.

    ``publish`` writes each chunk of a version in one pipeline execution (and
    nothing else runs a pipeline here), so the hook runs between chunks: the
    moment a fault is meant to strike.
    """

    before_chunk: Any = None
    chunks = 0

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
        pipe = super().pipeline(transaction, shard_hint)
        if self.before_chunk is None:
            return pipe
        run = pipe.execute

        def execute(*args: Any, **kwargs: Any) -> Any:
            self.chunks += 1
            if self.before_chunk is not None:
                self.before_chunk(self.chunks)
            return run(*args, **kwargs)

        pipe.execute = execute  # type: ignore[method-assign]
        return pipe


# -- data for the trainer --------------------------------------------------------------------------


def _users(n: int) -> list[str]:
    return [f"viewer-{i:05d}" for i in range(n)]


def _send_consents(settings, users: list[str]) -> None:
    granted = T0 - HOUR  # before every window: consent must be in force at the windows' time too
    records = [
        (u.encode(), json.dumps(consent_record(u, PERSONAL, updated_at_ms=granted)).encode()) for u in users
    ]
    produce(settings, settings.topic("consent"), records)


def _send_interactions(settings, users: list[str], round_: int, per_user: int = 4, items: int = 60) -> int:
    pz = pseudonymizer(settings)
    records = []
    for i, user in enumerate(users):
        name = pz.pseudonym(user)
        for j in range(per_user):
            start = T0 + (round_ * per_user + j) * HOUR
            row = Interaction(
                user=name,
                content_id=f"c{(i * 7 + j * 3 + round_) % items}",
                window_start=start,
                window_end=start + HOUR,
                watched_ms=60_000 * (1 + (i + j) % 9),
                plays=1,
                completed=(i + j) % 3 == 0,
                events=2,
            )
            records.append((name.encode(), encode(row)))
    produce(settings, settings.topic("interactions"), records)
    return len(records)


def _trainer_settings(make_settings, kafka_bootstrap, url: str, **trainer: Any):
    settings = make_settings(
        partitions=2,
        redis={"url": url},
        trainer={
            "factors": 8,
            "iterations": 3,
            "gate_margin": 1.0,
            "gate_popularity": False,
            "retrain_every_s": 3600.0,
            "retrain_after": 50,
            "top_n": 10,
            **trainer,
        },
    )
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    create_topics(admin, settings)
    admin.close()
    return settings


def _whole(reader: Reader, users: list[str]) -> tuple[set[str | None], int]:
    """Versions the reader served, and how many users of a served version had no entry."""
    responses = reader.get_many(users)
    versions = {r.version for r in responses.values()}
    missing = sum(1 for r in responses.values() if r.version is not None and not r.personalized)
    return versions, missing


# -- 1. Redis restarted while the trainer publishes -------------------------------------------


def test_redis_restart_mid_publish_serves_old_or_new_never_half(
    own_redis, make_settings, kafka_bootstrap, monkeypatch
):
    from agents.processes.trainer import close_trainer, make_trainer

    publish_mod = importlib.import_module("pipeline.serving.publish")  # the package re-exports `publish`
    monkeypatch.setattr(publish_mod, "CHUNK", 100)  # 300 users: 4 chunks, restart before the 3rd
    s = _trainer_settings(make_settings, kafka_bootstrap, own_redis.url)
    users = _users(300)
    _send_consents(s, users)
    _send_interactions(s, users, 0)

    trainer = make_trainer(s)
    trainer.redis.close()
    trainer.redis = hooked = HookedRedis.from_url(own_redis.url)
    layout = Layout.from_settings(s)
    client = own_redis.client()
    stop, errors = threading.Event(), []

    def run_trainer() -> None:
        try:
            trainer.run(stop)
        except BaseException as exc:
            errors.append(exc)

    threading.Thread(target=run_trainer, daemon=True).start()
    observed: Counter[tuple[str | None, int]] = Counter()
    reading = threading.Event()
    try:
        first = wait_for(lambda: errors or live_version(client, layout), 120, "the first model")
        assert not errors, errors
        reader = Reader(own_redis.client(), pseudonymizer(s), layout)

        def read_forever() -> None:
            while not reading.is_set():
                try:
                    versions, missing = _whole(reader, users)
                except (ServiceUnavailable, redis_lib.RedisError):
                    observed[("unavailable", 0)] += 1
                    continue
                for v in versions:
                    observed[(v, missing)] += 1

        reader_thread = threading.Thread(target=read_forever, daemon=True)
        reader_thread.start()
        wait_for(lambda: observed, 30, "the reader's first read")

        doomed: list[str] = []

        def restart_before_third_chunk(n: int) -> None:
            if n == 3:
                hooked.before_chunk = None
                doomed.extend(v.decode() for v in client.zrange(layout.pending, 0, -1))
                own_redis.restart()

        hooked.chunks = 0
        hooked.before_chunk = restart_before_third_chunk
        _send_interactions(s, users[:60], 1)  # 240 new rows > retrain_after: a new round publishes

        def recovered() -> str | None:
            assert not errors, errors
            try:
                live = live_version(client, layout)
            except redis_lib.ConnectionError:  # while the server restarts
                return None
            return live if own_redis.restarts and live not in (None, first) else None

        final = wait_for(recovered, 120, "the trainer to publish after the restart")
        wait_for(lambda: any(v == final for v, _ in list(observed)), 30, "the reader to see the new version")
        reading.set()
        reader_thread.join(10)
    finally:
        reading.set()
        stop.set()
    half = {v: n for (v, missing), n in observed.items() if missing and v != "unavailable"}
    assert not half, f"versions served with users missing: {half}"
    assert doomed and final not in doomed  # the version being written when Redis restarted never went live
    assert {v for v, _ in observed} <= {first, final, None, "unavailable"}, observed
    assert read_meta(client, layout, final)["version"] == final
    assert _whole(Reader(client, pseudonymizer(s), layout), users) == ({final}, 0)
    assert trainer.counters.get("redis_step_failed", 0) >= 1
    assert not errors
    close_trainer(trainer)
    client.close()


# -- 2. the trainer SIGKILLed mid-publish and restarted ---------------------------------------


def test_trainer_sigkill_mid_publish_keeps_live_version_whole(
    own_redis, make_settings, kafka_bootstrap, tmp_path
):
    s = _trainer_settings(make_settings, kafka_bootstrap, own_redis.url)
    users = _users(3000)  # 3 chunks of 1000 keys
    _send_consents(s, users)
    _send_interactions(s, users, 0, per_user=3)
    layout = Layout.from_settings(s)
    client = own_redis.client()
    reader = Reader(own_redis.client(), pseudonymizer(s), layout)
    trainer = ChildProcess(s, tmp_path / "logs" / "trainer-a.log", ["train"]).start()
    try:
        first = wait_for(lambda: live_version(client, layout), 180, "the first model")
        assert _whole(reader, users) == ({first}, 0)

        caught = None
        for round_ in range(1, 4):  # a round whose publish we did not catch mid-way is retried
            _send_interactions(s, users[:100], round_)

            def writing() -> str | None:
                pending = {v.decode() for v in client.zrange(layout.pending, 0, -1)}
                published = {v.decode() for v in client.zrange(layout.versions, 0, -1)}
                return next(iter(pending - published), None)

            version = wait_for(writing, 120, "the next publish to start", interval=0.0005)
            client.execute_command("CLIENT", "PAUSE", 60_000, "WRITE")  # the trainer's next write blocks
            if live_version(client, layout) != version:
                caught = version
                break
            client.execute_command("CLIENT", "UNPAUSE")
        assert caught, "no publish was caught before its switch in 3 rounds"
        t0 = time.monotonic()
        trainer.kill(signal.SIGKILL)
        killed_s = time.monotonic() - t0
        client.execute_command("CLIENT", "UNPAUSE")

        assert live_version(client, layout) == first
        assert _whole(reader, users) == ({first}, 0)  # every user of the live version has an entry
        assert read_meta(client, layout)["version"] == first
        leftovers = list(client.scan_iter(match=layout.version_pattern(caught)))
        assert all(client.ttl(k) > 0 for k in leftovers)  # the torn version expires, it is never served

        t1 = time.monotonic()
        trainer = ChildProcess(s, tmp_path / "logs" / "trainer-b.log", ["train"]).start()
        final = wait_for(
            lambda: (v := live_version(client, layout)) not in (first, caught) and v, 180, "a new model"
        )
        print(
            f"\ntrainer: SIGKILL mid-publish in {killed_s:.2f} s; "
            f"restart to a new live model in {time.monotonic() - t1:.1f} s"
        )
        assert _whole(reader, users) == ({final}, 0)
        assert read_meta(client, layout)["version"] == final
    finally:
        try:
            client.execute_command("CLIENT", "UNPAUSE")
        finally:
            trainer.kill()
            client.close()


# -- 3. the worker SIGKILLed five times in one run ---------------------------------------------


def test_worker_sigkilled_five_times_loses_and_doubles_nothing(make_settings, kafka_bootstrap, tmp_path):
    s = make_settings(partitions=4, stream={"idle_close_ms": 600_000, "max_message_bytes": 100_000})
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    create_topics(admin, s)
    pz = pseudonymizer(s)
    sessions, mix = dataset(users=50, events=5000, seed=21)
    msgs = envelopes(sessions)
    raw = s.topic("playback.raw")
    worker = Worker(s, tmp_path / "logs", "0").start()
    started = time.monotonic()
    kills: list[float] = []
    try:
        wait_assigned(s, 1)
        send_consents(s, mix)
        slices = [msgs[i * len(msgs) // 6 : (i + 1) * len(msgs) // 6] for i in range(6)]
        ends: dict[int, int] = {}

        def progress() -> int:
            return sum(committed_offsets(admin, s.app_id, raw).values())

        waits: list[float] = []
        for n in range(5):
            before = progress()
            t_wait = time.monotonic()
            for p, o in produce(s, raw, slices[n]).items():
                ends[p] = max(ends.get(p, 0), o)
            wait_for(lambda b=before: progress() > b, 90, f"progress before kill {n + 1}", interval=0.1)
            waits.append(time.monotonic() - t_wait)
            t = time.monotonic()
            worker.kill(signal.SIGKILL)
            kills.append(time.monotonic() - t)
            worker = Worker(s, tmp_path / "logs", str(n + 1)).start()
        for p, o in produce(s, raw, slices[5]).items():
            ends[p] = max(ends.get(p, 0), o)
        wait_assigned(s, 1, timeout=120)
        run_close(s)
        wait_all_processed(s, {p: ends.get(p, 0) + 1 for p in range(s.partitions)})
        got, dupes = interactions(s)
    finally:
        worker.kill()
        admin.close()
    print(
        f"\nworker: 5 SIGKILLs, start-to-progress {[round(w, 1) for w in waits]} s, "
        f"{dupes} re-emitted windows, run {time.monotonic() - started:.0f} s"
    )
    assert len(kills) == 5
    assert got == expected_windows(sessions, mix, pz)  # none lost, none counted twice


# -- 4. ~1,000 hostile messages to the real worker ------------------------------------------------


def test_hostile_messages_dead_lettered_while_worker_stays_up(make_settings, kafka_bootstrap, tmp_path):
    s = make_settings(partitions=2)
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    create_topics(admin, s)
    admin.close()
    ready = [name for name in _strategies() if name not in PENDING]
    sample = [
        m
        for m in hostile_messages(1_200, seed=99, strategies=ready)
        if (m.key is not None or m.value is not None)  # a record needs one of them
        and (m.value is None or len(m.value) < 900_000)  # below the producer's request limit
    ][:1_000]
    reference = make()  # the pure processor says how many dead letters, with which reasons
    expected = Counter(d["reason"] for i, m in enumerate(sample) for d in feed(reference, m, i))
    worker = Worker(s, tmp_path / "logs").start()
    try:
        wait_assigned(s, 1)
        send_consents(s, {"hostile-ok": PERSONAL})
        produce(s, s.topic("playback.raw"), [(m.key, m.value) for m in sample])
        good = event(user="hostile-ok", t=T0)
        ends = produce(s, s.topic("playback.raw"), [(b"hostile-ok", json.dumps(good).encode())])
        wait_processed(s, s.topic("playback.raw"), ends, timeout=180)
        assert worker.running, worker.log()[-2000:]
        dlq = [json.loads(v) for _, v in read_all(s, s.topic("playback.dlq"))]
        got = Counter(d["reason"] for d in dlq)
        assert got == expected
        assert all(d["reason"] and d["source"]["topic"] == s.topic("playback.raw") for d in dlq)
        redacted = [json.loads(v) for _, v in read_all(s, s.topic("playback.redacted"))]
        assert any(r.get("user") == pseudonymizer(s).pseudonym("hostile-ok") for r in redacted)
        assert "internal_error" not in got
    finally:
        worker.kill()
    print(f"\nhostile: {len(sample)} messages, {sum(got.values())} dead letters, worker up")


def _strategies() -> list[str]:
    from tests.hostile import STRATEGIES

    return list(STRATEGIES)


# -- 5. Redis failing during an erasure's cache stage ---------------------------------------------


class FailingUnlink(redis_lib.Redis):
    """A real client whose next ``failures`` UNLINKs fail as if Redis had gone away."""

    failures = 0

    def unlink(self, *names: Any) -> Any:
        if self.failures:
            self.failures -= 1
            raise redis_lib.ConnectionError("Redis went away (injected)")
        return super().unlink(*names)


def test_erasure_receipt_still_issued_after_redis_failed_in_the_cache_stage(make_settings, redis_url):
    """The loop survives a Redis failure (see ``Trainer.run``); the erasure must then still complete."""
    from collections import namedtuple

    from agents.trainer import RETRYABLE, Trainer
    from pipeline.wire.rights import ErasureRequest, ErasureStage

    Record = namedtuple("Record", "topic key value timestamp")
    s = make_settings()
    client = FailingUnlink.from_url(redis_url)
    trainer = Trainer(s, tail=None, redis=client, pseudonymizer=pseudonymizer(s))
    name = trainer.pz.pseudonym("gone")
    request = ErasureRequest(request_id="0123456789abcdef0123456789abcdef", requested_at=1)
    stream = ErasureStage(
        request_id="0123456789abcdef0123456789abcdef",
        pseudonym=name,
        stage="stream",
        requested_at=1,
        finished_at=2,
    )
    trainer.apply(
        [
            Record(trainer.topics["erasure"], b"gone", encode(request), 1),
            Record(trainer.topics["stages"], b"0123456789abcdef0123456789abcdef", encode(stream), 2),
        ]
    )
    client.failures = 1
    with pytest.raises(RETRYABLE):
        trainer.finish_erasures()  # the loop catches this and calls again after a backoff
    receipts = trainer.finish_erasures()
    assert [r.request_id for r in receipts] == ["0123456789abcdef0123456789abcdef"]
    assert set(receipts[0].stages) == {"stream", "trainer", "cache"}
    client.close()


# -- 6. Redis failing while a withdrawal is applied -----------------------------------------------


def test_withdrawal_during_a_redis_failure_deletes_the_cache_on_the_next_step(make_settings, redis_url):
    """A revoke read while Redis is away still removes the cached entries, one step later.

    Before: the handler's Redis error was caught by the record guard, the consent record was
    dead-lettered as ``internal_error`` and the viewer's cached recommendations stayed served.
    """
    from collections import namedtuple

    from agents.trainer import RETRYABLE, Trainer

    Record = namedtuple("Record", "topic partition offset key value timestamp")
    s = make_settings()
    client = FailingUnlink.from_url(redis_url)
    trainer = Trainer(s, tail=None, redis=client, pseudonymizer=pseudonymizer(s))
    name = trainer.pz.pseudonym("leaving")
    controls = trainer.layout.controls(name)
    client.set(controls, b"{}")
    revoked = dict(PERSONAL, personalization=False)
    grant = json.dumps(consent_record("leaving", PERSONAL, updated_at_ms=1_000)).encode()
    revoke = json.dumps(consent_record("leaving", revoked, updated_at_ms=2_000)).encode()
    topic = trainer.topics["consent"]
    trainer.apply([Record(topic, 0, 0, b"leaving", grant, 1_000)])
    client.failures = 1
    trainer.apply([Record(topic, 0, 1, b"leaving", revoke, 2_000)])
    assert trainer.counters.get("cache_deletes_deferred") == 1
    assert "internal_errors" not in trainer.counters and "dead_letters" not in trainer.counters
    assert client.exists(controls) == 1  # Redis was away: still there, and queued
    client.failures = 1
    with pytest.raises(RETRYABLE):
        trainer.finish_erasures()  # the loop backs off and calls again
    trainer.finish_erasures()
    assert client.exists(controls) == 0
    client.close()
