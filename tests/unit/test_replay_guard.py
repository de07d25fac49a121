"""What a replay respects, without Kafka: the watermark, newer consent, erasure; resuming after SIGINT."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.errors import ReplayInterrupted
from pipeline.replay import replay_ratings
from pipeline.replay_guard import (
    ReplayState,
    consent_decision,
    newest_event_time,
    replay_start_ms,
    shift_ratings,
)
from pipeline.sources import Rating, synthetic_ratings
from pipeline.stream import StreamConfig
from pipeline.windows.spec import WindowSpec
from tests.support.events import batch_bytes, playback_event

SPEC = WindowSpec(size_ms=60_000, grace_ms=5_000)
CONFIG = StreamConfig(window=SPEC)
NOW_MS = 1_800_000_000_000


class Producer:
    """Acknowledges at once; raises KeyboardInterrupt on the ``stop_at``-th event message."""

    def __init__(self, stop_at: int | None = None) -> None:
        self.sent: list[tuple[str, bytes | None, bytes | None]] = []
        self.stop_at = stop_at
        self.flushed = 0

    def send(self, topic, key=None, value=None, partition=None):
        if (
            topic == "raw"
            and self.stop_at is not None
            and sum(t == "raw" for t, _, _ in self.sent) == self.stop_at
        ):
            raise KeyboardInterrupt
        self.sent.append((topic, key, value))
        meta = SimpleNamespace(partition=0, offset=len(self.sent) - 1)
        return SimpleNamespace(get=lambda timeout=None: meta)

    def flush(self, timeout=None) -> None:
        self.flushed += 1


def run(ratings, producer, **kw):
    return replay_ratings(
        ratings,
        producer=producer,
        raw_topic="raw",
        consent_topic="consent",
        consent_spec="1,0,0",
        seed=3,
        **kw,
    )


def raw(producer):
    return [v for t, _k, v in producer.sent if t == "raw"]


def test_start_is_the_end_of_the_newest_window():
    assert replay_start_ms(None, SPEC) is None
    assert replay_start_ms(61_000, SPEC) == 120_000
    assert replay_start_ms(120_000, SPEC) == 180_000


@settings(max_examples=200, deadline=None)
@given(
    times=st.lists(st.integers(0, 10**9), min_size=1, max_size=30),
    start=st.none() | st.integers(0, 2 * 10**12),
    step=st.sampled_from([1, 60, 3600]),
)
def test_shift_moves_forward_by_whole_steps_and_keeps_every_gap(times, start, step):
    ratings = [Rating(f"u{i % 3}", f"c{i}", 1.0, t) for i, t in enumerate(times)]
    shifted, shift_s = shift_ratings(ratings, start, step)
    assert shift_s >= 0 and shift_s % step == 0  # each event keeps its place within its window
    assert [r.timestamp_s - o.timestamp_s for r, o in zip(shifted, ratings, strict=True)] == [shift_s] * len(
        times
    )
    if start is not None:
        assert min(r.timestamp_s for r in shifted) * 1000 >= start
        if shift_s:  # the smallest such shift
            assert (min(times) + shift_s - step) * 1000 < start


@pytest.mark.parametrize(
    ("consent", "erased", "expected"),
    [
        ({}, {}, "send"),
        ({b"u": 1_000}, {}, "send"),  # an older choice: the replay's is newer
        ({b"u": 5_000}, {}, "unchanged"),  # this replay, sent before
        ({b"u": 9_000}, {}, "newer_consent"),  # withdrawn or changed since
        ({}, {b"u": 7_000}, "erased"),
        ({b"u": None}, {}, "erased"),  # tombstoned by the stream's erasure
        ({b"u": 4_000}, {b"u": 7_000}, "erased"),  # a choice older than the erasure
        ({b"u": 8_000}, {b"u": 7_000}, "newer_consent"),  # consent given again after erasure
    ],
)
def test_consent_decision(consent, erased, expected):
    assert consent_decision(b"u", 5_000, ReplayState(consent=consent, erased=erased)) == expected


def test_newest_event_time_skips_markers_and_bad_values():
    event = playback_event(3, event_time=1_700_000_123_000)
    values = [None, b"{not json", b'{"schema":"control.v1","command":"idle"}', json.dumps(event).encode()]
    assert newest_event_time(values, CONFIG, NOW_MS) == 1_700_000_123_000
    envelope = batch_bytes(5, event_time=1_700_000_999_000)
    assert newest_event_time([*values, envelope], CONFIG, NOW_MS) == 1_700_000_999_000
    assert newest_event_time([None, b"x"], CONFIG, NOW_MS) is None


def test_what_the_stream_refused_does_not_move_the_start():
    """One hostile record dated in 2200 (dead-lettered as from the future) must not push every later
    replay into 2200, where the stream would refuse all of it; nor may an id the stream refused."""
    good = playback_event(1, event_time=1_700_000_000_000)
    future = playback_event(2, event_time=7_258_118_400_000)  # 2200-01-01
    bad_id = playback_event(3, event_time=1_700_000_500_000, content_id="not allowed!")
    values = [json.dumps(e).encode() for e in (good, future, bad_id)]
    assert newest_event_time(values, CONFIG, NOW_MS) == 1_700_000_000_000


def test_replay_never_overwrites_a_newer_choice_or_brings_back_an_erased_viewer():
    ratings = synthetic_ratings(users=20, items=15, events_target=300, seed=4)
    users = sorted({r.user_id for r in ratings})
    first = {u: min(r.timestamp_s for r in ratings if r.user_id == u) * 1000 for u in users}
    withdrew, erased = users[0], users[1]
    state = ReplayState(consent={withdrew.encode(): first[withdrew] + 10**9}, erased={erased.encode(): 1})
    producer = Producer()
    report = run(ratings, producer, state=state)
    sent = {json.loads(v)["user_id"] for t, _k, v in producer.sent if t == "consent"}
    assert sent == set(users) - {withdrew, erased}
    assert report.consent_refused == {"newer_consent": 1, "erased": 1}
    assert report.consent_records == len(users) - 2


def test_interrupted_replay_reports_what_it_sent_and_resumes_without_loss_or_duplicates():
    ratings = synthetic_ratings(users=25, items=15, events_target=400, seed=9)
    whole = Producer()
    run(ratings, whole)
    everything = raw(whole)
    assert len(everything) > 20

    first = Producer(stop_at=7)
    with pytest.raises(ReplayInterrupted) as stopped:
        run(ratings, first)
    report = stopped.value.report
    assert report.interrupted and report.messages == 7 and first.flushed >= 1
    assert report.events == sum(len(json.loads(v).get("events", [0])) for v in raw(first))

    rest = Producer()
    resumed = run(ratings, rest, skip_messages=report.messages)
    assert resumed.skipped_messages == 7
    assert raw(first) + raw(rest) == everything
