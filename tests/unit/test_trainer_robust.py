"""No record stops the trainer: bad ones are counted, dead-lettered with coordinates, and skipped."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import msgspec
import pytest

from agents.trainer import Trainer
from pipeline.privacy.pseudonym import Pseudonymizer, PseudonymKey
from pipeline.recs import train
from pipeline.settings import Settings
from pipeline.sources import consent_record
from pipeline.wire import DeadLetter, decode_as
from tests.support.records import Rec

KEY = PseudonymKey("k1", b"0123456789abcdef0123456789abcdef")
HOUR = 3_600_000
T0 = 1_700_000_000_000


class Producer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes]] = []

    def send(self, topic: str, key: bytes | None = None, value: bytes = b"") -> None:
        self.sent.append((topic, key, value))

    def flush(self) -> None:
        pass


class Tail:
    """What the trainer asks of its tail here: the group's committed offsets."""

    def __init__(self, committed: dict[tuple[str, int], int] | None = None) -> None:
        self._committed = committed or {}

    def committed(self) -> dict[tuple[str, int], int]:
        return self._committed


def consent(user: str) -> bytes:
    purposes = {"analytics": True, "personalization": True, "advertising": False}
    return json.dumps(consent_record(user, purposes, updated_at_ms=1_000)).encode()


def interaction(user: str, content: str, start: int, watched: Any = 60_000) -> bytes:
    """Raw JSON text, so values no struct would accept can be sent."""
    return (
        f'{{"schema":"interaction.v1","user":"{user}","content_id":"{content}","window_start":{start},'
        f'"window_end":{start + HOUR},"watched_ms":{watched},"plays":1,"completed":false,"events":2}}'
    ).encode()


@pytest.fixture
def trainer(tmp_path) -> Trainer:
    settings = Settings(state_dir=tmp_path, trainer={"factors": 4, "iterations": 2})
    return Trainer(
        settings, Tail(), None, Pseudonymizer([KEY]), producer=Producer(), clock=lambda: 1_800_000_000
    )


def _log(t: Trainer, bad: bytes) -> tuple[list[Rec], Rec]:
    topics = t.topics
    users = [f"user{i}" for i in range(6)]
    recs = [Rec(topics["consent"], 0, i, 1_000, u.encode(), consent(u)) for i, u in enumerate(users)]
    offset = 0
    for i, u in enumerate(users):
        p = t.pz.pseudonym(u)
        for c in range(4):
            recs.append(
                Rec(
                    topics["interactions"],
                    2,
                    offset,
                    2_000,
                    p.encode(),
                    interaction(p, f"c{(i + c) % 7}", T0),
                )
            )
            offset += 1
    bad_rec = Rec(topics["interactions"], 2, offset, 2_000, b"k", bad)
    recs.insert(len(users) + 5, bad_rec)  # in the middle of the interactions
    return recs, bad_rec


@pytest.mark.parametrize(
    ("bad", "reason", "path"),
    [
        (None, "invalid_interaction", "$.watched_ms"),  # watched_ms = 2**64: the wire bound refuses it
        (b"{not json", "invalid_interaction", "$"),
        (b'{"schema":"interaction.v1","user":"p","content_id":"c"}', "invalid_interaction", "$"),
    ],
)
def test_a_bad_interaction_is_dead_lettered_and_training_goes_on(trainer, bad, reason, path):
    t = trainer
    p0 = t.pz.pseudonym("user0")
    if bad is None:
        bad = interaction(p0, "c1", T0 + HOUR, 2**64)
    records, bad_rec = _log(t, bad)
    t.apply(records)
    assert t.counters["interactions"] == 24
    assert len(t.store) == 24  # the flush into int64 columns works: the bad row never got in
    model = train(t.store, t.cfg)
    assert model.n_users == 6
    ((topic, key, value),) = t.producer.sent
    assert topic == t.settings.topic("trainer.dlq") and key is None
    letter = decode_as(value, DeadLetter)
    assert letter.reason == reason and letter.path == path
    assert (letter.source.topic, letter.source.partition, letter.source.offset) == (
        bad_rec.topic,
        2,
        bad_rec.offset,
    )
    assert letter.value_bytes == len(bad)
    assert str(2**64) not in value.decode()
    assert t.counters["interactions_invalid"] == 1


def test_records_judged_by_an_earlier_run_are_not_dead_lettered_again(tmp_path):
    settings = Settings(state_dir=tmp_path)
    topic = settings.topic("interactions")
    t = Trainer(settings, Tail({(topic, 0): 5}), None, Pseudonymizer([KEY]), producer=Producer())
    t.catch_up = None  # type: ignore[assignment]  # apply() alone, as the tail would feed it
    t.apply([Rec(topic, 0, 4, 1, None, b"junk"), Rec(topic, 0, 5, 1, None, b"junk")])
    assert [decode_as(v, DeadLetter).source.offset for _, _, v in t.producer.sent] == [5]
    assert t.counters["interactions_invalid"] == 2


def test_a_handler_that_raises_is_counted_and_dead_lettered(trainer, monkeypatch):
    t = trainer

    def boom(*args: Any) -> None:
        raise RuntimeError("secret alice@example.com")

    monkeypatch.setattr(t.ledger, "receipt", boom)
    monkeypatch.setattr(t.ledger, "stage", boom)
    stage = msgspec.json.encode(
        {
            "schema": "erasure.stage.v1",
            "request_id": "0" * 32,
            "pseudonym": "k1.p",
            "stage": "stream",
            "requested_at": 1,
            "finished_at": 2,
        }
    )
    t.apply([Rec(t.topics["stages"], 1, 7, 1, b"r1", stage), Rec(t.topics["receipts"], 0, 3, 1, None, b"[]")])
    reasons = sorted(decode_as(v, DeadLetter).reason for _, _, v in t.producer.sent)
    assert reasons == ["internal_error", "invalid_receipt"]
    assert t.counters["internal_errors"] == 1 and t.counters["receipt_invalid"] == 1
    assert all(b"alice" not in v for _, _, v in t.producer.sent)


class PollingTail(Tail):
    """A tail with nothing to read: the loop only runs its steps."""

    def read_to_end(self, *args: Any, **kwargs: Any) -> int:
        return 0

    def poll(self, timeout_ms: int = 0) -> list[Any]:
        time.sleep(timeout_ms / 10_000)  # stands in for the broker's long poll
        return []

    def commit(self, timeout_ms: int | None = None) -> None:
        pass


def test_a_failing_side_job_never_ends_the_loop(tmp_path):
    """Regression: an error from the DP release job (not a Redis one) ended ``Trainer.run``."""

    class Broken:
        calls = 0

        def step(self, now: float) -> None:
            Broken.calls += 1
            raise RuntimeError("boom")

    settings = Settings(state_dir=tmp_path)
    ticks = iter(range(0, 10**6, 60))  # each clock read a minute later: backoffs pass at once
    t = Trainer(
        settings, PollingTail(), None, Pseudonymizer([KEY]), producer=Producer(), clock=lambda: next(ticks)
    )
    t.trending = Broken()
    stop = threading.Event()
    runner = threading.Thread(target=t.run, args=(stop,), daemon=True)
    runner.start()
    deadline = time.monotonic() + 30
    while Broken.calls < 3 and runner.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    alive = runner.is_alive()
    stop.set()
    runner.join(10)
    assert alive and Broken.calls >= 3
    assert t.counters["step_failed"] >= 3 and not runner.is_alive()


class UnreachableTail(PollingTail):
    """The broker goes away: the first ``failures`` polls and commits raise as kafka-python does."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.calls = 0

    def _maybe_fail(self) -> None:
        from kafka.errors import KafkaConnectionError

        self.calls += 1
        if self.calls <= self.failures:
            raise KafkaConnectionError("111 ECONNREFUSED")

    def poll(self, timeout_ms: int = 0) -> list[Any]:
        self._maybe_fail()
        return super().poll(timeout_ms)

    def commit(self, timeout_ms: int | None = None) -> None:
        self._maybe_fail()


def test_a_broker_outage_never_ends_the_loop(tmp_path, caplog, monkeypatch):
    """Regression: ``KafkaConnectionError`` from the commit ended the continuous trainer with a traceback."""
    settings = Settings(state_dir=tmp_path)
    tail = UnreachableTail(failures=3)
    t = Trainer(settings, tail, None, Pseudonymizer([KEY]), producer=Producer())
    monkeypatch.setattr(t, "_step", lambda now, refresh_due: False)
    stop = threading.Event()
    waits: list[float] = []
    real_wait = stop.wait

    def wait(timeout: float | None = None) -> bool:  # backoffs recorded, not slept
        waits.append(timeout or 0.0)
        return real_wait(0)

    stop.wait = wait  # type: ignore[method-assign]
    runner = threading.Thread(target=t.run, args=(stop,), daemon=True)
    with caplog.at_level("WARNING", logger="agents.trainer"):
        runner.start()
        deadline = time.monotonic() + 30
        while tail.calls < 8 and runner.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        alive = runner.is_alive()
        stop.set()
        runner.join(10)
    assert alive and not runner.is_alive()
    assert t.counters["broker_unreachable"] == 3
    assert waits[:3] == [1.0, 2.0, 4.0]  # doubling backoff
    lines = [r.getMessage() for r in caplog.records if "broker" in r.getMessage()]
    assert lines[0] == "trainer: broker unreachable (KafkaConnectionError); retry in 1 s"
    assert any("reachable again" in line for line in lines)


def test_a_redis_step_is_retried_as_soon_as_redis_answers_again(tmp_path, monkeypatch):
    """Before, a failed publish waited out its whole backoff (up to 30 s) after Redis was back."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    class Pinged:
        pings = 0

        def ping(self) -> bool:
            Pinged.pings += 1
            if Pinged.pings <= 2:
                raise RedisConnectionError("still away")
            return True

    settings = Settings(state_dir=tmp_path)
    t = Trainer(
        settings, PollingTail(), Pinged(), Pseudonymizer([KEY]), producer=Producer(), clock=lambda: 0.0
    )
    steps: list[float] = []

    def step(now: float, refresh_due: bool) -> bool:
        steps.append(now)
        if len(steps) == 1:
            raise RedisConnectionError("Redis went away")
        return False

    monkeypatch.setattr(t, "_step", step)
    stop = threading.Event()
    runner = threading.Thread(target=t.run, args=(stop,), daemon=True)
    runner.start()
    deadline = time.monotonic() + 30  # Redis is pinged once a second: the third PING answers
    while len(steps) < 2 and runner.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    runner.join(10)
    assert len(steps) >= 2  # retried although the (frozen) clock never reached the backoff's end
    assert Pinged.pings >= 3 and t.counters["redis_step_failed"] == 1


def test_a_redis_that_never_went_away_keeps_the_plain_backoff(tmp_path):
    class Answers:
        def ping(self) -> bool:
            return True

    t = Trainer(Settings(state_dir=tmp_path), PollingTail(), Answers(), Pseudonymizer([KEY]))
    assert not t._redis_answers()  # a lost publish with Redis up: no retry every second


def test_the_trainer_builds_the_first_enabled_family_unless_a_choice_is_made(tmp_path) -> None:
    """One call site makes the model: the tuner's (family, setting), else ``trainer.families[0]``."""
    settings = Settings(state_dir=tmp_path, trainer={"families": ["itemknn", "als"], "knn_k": 7})
    t = Trainer(settings, None, None, Pseudonymizer([KEY]))
    first = t.build_family()
    assert first.name == "itemknn" and first.settings.knn_k == 7
    t.choice = ("ease", settings.trainer.model_copy(update={"ease_lambda": 3.0}))
    chosen = t.build_family()
    assert chosen.name == "ease" and chosen.settings.ease_lambda == 3.0


@pytest.mark.parametrize("families", [[], ["svd"]])
def test_families_are_validated(families: list[str]) -> None:
    with pytest.raises(ValueError, match="families"):
        Settings(trainer={"families": families})
