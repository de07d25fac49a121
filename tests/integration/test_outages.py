"""Outages of the real embedded services while a real worker and the continuous trainer run.

Each test starts a broker and a Redis of its own (``pipeline.embedded``, as
``privrec up`` starts them) so that stopping one never touches the session's
services. A stop and restart go through :mod:`pipeline.embedded.outage`: same
port; the broker's data kept by its snapshot (it is memory-only), Redis's by
its append-only file.

The broker's snapshot must hold exactly what the broker had acknowledged when
it stopped, as a broker with durable storage would. So the clients are frozen
(SIGSTOP) from the snapshot until the broker is stopped, and again while the
new broker is restored; the outage itself (60 s) they spend running, against
nothing. Ground truth is the same group-by of consented events the worker
fault tests use (:func:`tests.integration.stream_harness.expected_windows`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as redis_lib
from kafka import KafkaAdminClient

from agents.procs import ChildProcess
from pipeline.embedded import EmbeddedServices
from pipeline.embedded.outage import start_service, stop_service
from pipeline.kafka.offsets import committed_offsets
from pipeline.kafka.topics import create_topics
from pipeline.keys import pseudonymizer
from pipeline.serving import Layout, live_version
from pipeline.settings import Settings
from tests.integration.harness import Worker, produce, wait_assigned, wait_for
from tests.integration.stream_harness import (
    dataset,
    envelopes,
    expected_windows,
    interactions,
    run_close,
    send_consents,
    wait_all_processed,
)
from tests.support.settings import isolated_settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OUTAGE_S = 60.0
STOP_WITHIN_S = 10.0


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[EmbeddedServices]:
    services = EmbeddedServices(tmp_path / "svc")
    services.up()
    yield services
    services.down()


def _settings(stack: EmbeddedServices, tmp_path: Path) -> Settings:
    recs = stack.records()
    s = isolated_settings(
        recs["kafka"].url,
        recs["redis"].url,
        tmp_path / "state",
        partitions=2,
        stream={"idle_close_ms": 600_000},
        trainer={
            "factors": 8,
            "iterations": 3,
            "gate_margin": 1.0,
            "gate_popularity": False,  # a toy model on toy data: the test is about outages, not quality
            "retrain_every_s": 3600.0,
            "retrain_after": 20,
        },
    )
    admin = KafkaAdminClient(bootstrap_servers=s.kafka.bootstrap_servers)
    create_topics(admin, s)
    admin.close()
    return s


def _redis(s: Settings) -> redis_lib.Redis:
    return redis_lib.Redis.from_url(s.redis.url.get_secret_value(), socket_timeout=2)


@contextlib.contextmanager
def frozen(*children: ChildProcess) -> Iterator[None]:
    """SIGSTOP the children meanwhile: nothing they send reaches the broker in between."""
    pids = [c.proc.pid for c in children if c.proc is not None and c.running]
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


def _term_seconds(child: ChildProcess) -> float:
    """Seconds from SIGTERM to exit (the child is SIGKILLed after STOP_WITHIN_S + 5)."""
    assert child.proc is not None
    t = time.monotonic()
    child.proc.send_signal(signal.SIGTERM)
    with contextlib.suppress(Exception):
        child.proc.wait(timeout=STOP_WITHIN_S + 5)
    took = time.monotonic() - t
    child.kill()
    return took


# -- the scenario: a replay, a worker and the trainer; one service away for a minute -------------


def _fingerprint(admin: KafkaAdminClient, consumer: Any) -> tuple[Any, ...]:
    """Log ends of every partition and every group's commits: what a snapshot would save."""
    from kafka import TopicPartition

    tps = [TopicPartition(t, p) for t in admin.list_topics() for p in consumer.partitions_for_topic(t) or ()]
    ends = sorted((tp.topic, tp.partition, o) for tp, o in consumer.end_offsets(tps).items())
    groups = []
    for g in admin.list_groups():
        gid = g["group_id"] if isinstance(g, dict) else g[0]
        offs = admin.list_group_offsets(gid).get(gid, {})
        groups.append((gid, sorted((tp.topic, tp.partition, om.offset) for tp, om in offs.items())))
    return tuple(ends), tuple(sorted(groups))


def _wait_broker_quiet(bootstrap: str) -> None:
    """Frozen clients may have had a request in flight: wait until the broker's state stops changing."""
    from kafka import KafkaConsumer

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        last: list[Any] = [None]

        def settled() -> bool:
            now = _fingerprint(admin, consumer)
            same, last[0] = now == last[0], now
            return same

        wait_for(settled, 20, "the frozen clients' last requests to land", interval=0.3)
    finally:
        consumer.close()
        admin.close()


class Progress:
    """What the worker and the trainer have committed, and what is live in Redis."""

    def __init__(self, s: Settings) -> None:
        self.s = s
        self.layout = Layout.from_settings(s)

    def worker(self) -> int:
        admin = KafkaAdminClient(bootstrap_servers=self.s.kafka.bootstrap_servers)
        try:
            return sum(committed_offsets(admin, self.s.app_id, self.s.topic("playback.raw")).values())
        finally:
            admin.close()

    def trainer(self) -> int:
        admin = KafkaAdminClient(bootstrap_servers=self.s.kafka.bootstrap_servers)
        try:
            group = f"{self.s.app_id}-trainer"
            return sum(committed_offsets(admin, group, self.s.topic("interactions")).values())
        finally:
            admin.close()

    def live(self) -> str | None:
        client = _redis(self.s)
        try:
            return live_version(client, self.layout)
        except redis_lib.RedisError:
            return None
        finally:
            client.close()

    def at_outage(self) -> dict[str, Any]:
        """Where both stood as the service went away: "resumed" means beyond this."""
        return {"worker": self.worker(), "trainer": self.trainer(), "live": self.live()}

    def stats_at(self) -> int:
        """The newest worker stats' time (ms), 0 when none or Redis is away."""
        from agents import procs

        client = _redis(self.s)
        try:
            return max((st["at"] for st in procs.worker_stats(client, self.s.app_id)), default=0)
        except redis_lib.RedisError:
            return 0
        finally:
            client.close()


class Watch(threading.Thread):
    """Polls conditions from ``since`` on and records when each first held (seconds after ``since``)."""

    def __init__(self, since: float, checks: dict[str, Any]) -> None:
        super().__init__(daemon=True)
        self.since, self.checks = since, checks
        self.seen: dict[str, float] = {}
        self.done = threading.Event()
        self.start()

    def run(self) -> None:
        while not self.done.is_set() and len(self.seen) < len(self.checks):
            for name, check in self.checks.items():
                if name not in self.seen:
                    with contextlib.suppress(Exception):  # a service still settling: not yet
                        if check():
                            self.seen[name] = time.monotonic() - self.since
            self.done.wait(0.2)

    def result(self, timeout: float) -> dict[str, float]:
        try:
            wait_for(lambda: len(self.seen) == len(self.checks), timeout, f"all of {sorted(self.checks)}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; seen {self.seen}") from None
        finally:
            self.done.set()
        return dict(self.seen)


def _outage(stack: EmbeddedServices, tmp_path: Path, service: str) -> dict[str, Any]:
    s = _settings(stack, tmp_path)
    pz = pseudonymizer(s)
    sessions, mix = dataset(users=40, events=2500, seed=15)
    msgs = envelopes(sessions)
    slices = [msgs[i * len(msgs) // 6 : (i + 1) * len(msgs) // 6] for i in range(6)]
    raw = s.topic("playback.raw")
    logs = tmp_path / "logs"
    worker = Worker(s, logs).start()
    trainer = ChildProcess(s, logs / "trainer.log", ["train"]).start()
    progress = Progress(s)
    ends: dict[int, int] = {}

    def send(part: list[tuple[bytes | None, bytes | None]]) -> None:
        for p, o in produce(s, raw, part).items():
            ends[p] = max(ends.get(p, 0), o)

    try:
        wait_assigned(s, 1)
        send_consents(s, mix)
        for part in slices[:3]:  # the replay is under way: half sent, the worker still at it
            send(part)
        wait_for(lambda: progress.worker() > 0, 90, "the worker's first commit")
        port = stack.records()[service].port
        t_down = time.monotonic()
        if service == "kafka":
            # the broker's state at the instant it stops, as durable storage would keep it
            with frozen(worker, trainer):
                _wait_broker_quiet(s.kafka.bootstrap_servers)
                before = progress.at_outage()
                stopped = stop_service(stack.state_dir, "kafka")
            assert stopped.records
        else:
            before = progress.at_outage()
            stop_service(stack.state_dir, "redis")
            for part in slices[3:5]:  # the replay goes on while Redis is away
                send(part)
        deadline = t_down + OUTAGE_S
        while time.monotonic() < deadline:  # the outage itself: both clients must stay up throughout
            assert worker.running, worker.log()[-3000:]
            assert trainer.running, trainer.log()[-3000:]
            time.sleep(1)
        if service == "kafka":
            with frozen(worker, trainer):  # restored before they can use it (see pipeline.embedded.outage)
                start_service(stack.state_dir, "kafka", port=port)
        else:
            start_service(stack.state_dir, "redis", port=port)
        back = time.monotonic()
        stats_back = int(time.time() * 1000)
        figures: dict[str, Any] = {"service": service}
        watch = Watch(
            back,
            {
                "worker_resumed_s": lambda: progress.worker() > before["worker"],
                "stats_resumed_s": lambda: progress.stats_at() > stats_back,
                "trainer_reading_s": lambda: progress.trainer() > before["trainer"],
                "trainer_published_s": lambda: progress.live() not in (None, before["live"]),
            },
        )
        for part in slices[3:] if service == "kafka" else slices[5:]:
            send(part)
        run_close(s)
        wait_all_processed(s, {p: ends.get(p, 0) + 1 for p in range(s.partitions)})
        figures.update(watch.result(120))
        got, dupes = interactions(s)
        expected = expected_windows(sessions, mix, pz)
        figures["lost"] = len(set(expected) - set(got)) + sum(
            1 for k in set(expected) & set(got) if got[k] != expected[k]
        )
        figures["extra"] = len(set(got) - set(expected))
        figures["re_emitted"] = dupes
        assert worker.running and trainer.running
        if service == "kafka":  # waited with a one-line reason, no traceback
            assert "trainer: broker unreachable (" in trainer.log()
        assert got == expected  # nothing lost, nothing counted twice
        return figures
    finally:
        worker.kill()
        trainer.kill()


def _report(figures: dict[str, Any]) -> None:
    shown = ", ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}" for k, v in figures.items())
    print(f"\noutage ({OUTAGE_S:.0f} s): {shown}")


def test_broker_away_for_a_minute_worker_and_trainer_resume_losing_nothing(stack, tmp_path):
    figures = _outage(stack, tmp_path, "kafka")
    _report(figures)
    assert figures["lost"] == 0 and figures["extra"] == 0


def test_redis_away_for_a_minute_worker_and_trainer_resume_losing_nothing(stack, tmp_path):
    figures = _outage(stack, tmp_path, "redis")
    _report(figures)
    assert figures["lost"] == 0 and figures["extra"] == 0


# -- c. SIGTERM while the broker is away ---------------------------------------------------------


def test_sigterm_during_a_broker_outage_stops_worker_and_trainer(stack, tmp_path):
    s = _settings(stack, tmp_path)
    logs = tmp_path / "logs"
    worker = Worker(s, logs).start()
    trainer = ChildProcess(s, logs / "trainer.log", ["train"]).start()
    try:
        wait_assigned(s, 1)
        progress = Progress(s)
        produce(s, s.topic("interactions"), [(b"x", b"not a window")])  # read, dead-lettered, committed
        wait_for(lambda: progress.trainer() > 0, 90, "the trainer's loop to commit")
        stopped = stop_service(stack.state_dir, "kafka", snapshot=False)
        assert stopped.records is None
        worker_s = _term_seconds(worker)
        trainer_s = _term_seconds(trainer)
    finally:
        worker.kill()
        trainer.kill()
    print(
        f"\nSIGTERM during a broker outage: worker exited in {worker_s:.1f} s, trainer in {trainer_s:.1f} s"
    )
    assert worker_s < STOP_WITHIN_S, worker.log()[-3000:]
    assert trainer_s < STOP_WITHIN_S, trainer.log()[-3000:]
    assert "Traceback" not in trainer.log(), trainer.log()[-3000:]
