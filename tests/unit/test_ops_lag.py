"""Burrow-style lag evaluation and lag in seconds, with hand-made sample sequences (no Kafka)."""

from __future__ import annotations

import json

import pytest

from pipeline.ops.collect import _assigned
from pipeline.ops.lag import LagWindow, PartitionSample, Status, estimate_time, lag_seconds

S = 1000  # one second in ms


def feed(
    window: LagWindow,
    committed: list[int],
    log_end: list[int],
    *,
    group: str = "g",
    topic: str = "t",
    partition: int = 0,
    step_ms: int = S,
    start_ms: int = 0,
    members: int | None = None,
) -> None:
    for i, (c, e) in enumerate(zip(committed, log_end, strict=True)):
        window.add(PartitionSample(group, topic, partition, c, e, start_ms + i * step_ms, members=members))


def status(committed: list[int], log_end: list[int], size: int = 10, **kw) -> Status:
    w = LagWindow(size=size)
    feed(w, committed, log_end, **kw)
    return w.evaluate_partition("g", "t", 0).status


# -- rules ------------------------------------------------------------------------------


def test_progressing_consumer_is_ok():
    assert status([10, 20, 30, 40], [50, 55, 58, 60]) is Status.OK  # lag 40, 35, 28, 20


def test_zero_lag_at_last_sample_is_always_ok():
    # Offsets went backwards, but the consumer has caught up now.
    assert status([10, 5, 5, 30], [30, 30, 30, 30]) is Status.OK


def test_zero_lag_anywhere_in_the_window_is_ok():
    # Burrow rule 1: the partition was caught up within the window.
    assert status([10, 10, 10], [10, 15, 20]) is Status.OK


def test_lag_not_decreasing_while_offsets_advance_is_warn():
    assert status([10, 20, 30, 40], [20, 31, 42, 53]) is Status.WARN  # lag 10, 11, 12, 13
    assert status([10, 20, 30], [15, 25, 35]) is Status.WARN  # a steady lag is a warning too


def test_lag_that_decreases_once_is_ok():
    assert status([10, 20, 30, 40], [20, 31, 38, 53]) is Status.OK  # lag 10, 11, 8, 13


def test_offset_not_moving_with_lag_is_stall():
    assert status([7, 7, 7], [10, 10, 12]) is Status.STALL


def test_offset_going_back_is_rewind():
    assert status([10, 20, 15, 25], [50, 50, 50, 50]) is Status.REWIND


def test_rewind_outranks_the_other_rules():
    w = LagWindow(size=3)
    feed(w, [10, 20, 20, 5, 5], [50] * 5)  # the rewind is still inside the last 3 samples
    assert w.evaluate_partition("g", "t", 0).status is Status.REWIND


def test_no_commit_for_longer_than_the_window_is_stop():
    # Window of 3 samples one second apart: the last offset change (at 2 s) slides out of it.
    statuses = []
    w = LagWindow(size=3)
    for i, (c, e) in enumerate(zip([5, 6, 7, 7, 7, 7], [20, 21, 22, 22, 22, 22], strict=True)):
        w.add(PartitionSample("g", "t", 0, c, e, i * S))
        statuses.append(w.evaluate_partition("g", "t", 0).status)
    # 1 sample: OK; then advancing with steady lag: WARN; offset frozen since 2 s: STALL while the
    # window still holds that change, STOP once the newest commit is older than the window.
    assert statuses == [Status.OK, Status.WARN, Status.WARN, Status.WARN, Status.STALL, Status.STOP]


def test_stop_follows_burrows_formula_with_a_later_now():
    w = LagWindow(size=5)
    feed(w, [1, 2, 3], [10, 10, 10])  # commits at 0, 1, 2 s: window span 2 s, newest commit 2 s
    assert w.evaluate_partition("g", "t", 0, now_ms=4 * S).status is Status.OK  # 2 s since: not > 2 s
    assert w.evaluate_partition("g", "t", 0, now_ms=4 * S + 1).status is Status.STOP


def test_first_sample_of_an_empty_group_counts_as_an_old_commit():
    # No member could have committed: the commit predates sampling, so a frozen offset is STOP.
    assert status([7, 7], [10, 10], members=0) is Status.STOP
    assert status([7, 7], [10, 10], members=1) is Status.STALL
    assert status([7, 7], [10, 10], members=None) is Status.STALL


def test_a_single_sample_is_ok_and_incomplete():
    w = LagWindow(size=4)
    feed(w, [1], [100])
    part = w.evaluate_partition("g", "t", 0)
    assert part.status is Status.OK
    assert part.complete == 0.25 and part.samples == 1


def test_window_keeps_only_the_last_k_samples():
    w = LagWindow(size=3)
    feed(w, [1, 2, 3, 4, 5], [10, 10, 10, 10, 10])
    assert [s.committed for s in w.samples("g", "t", 0)] == [3, 4, 5]
    assert w.evaluate_partition("g", "t", 0).complete == 1.0


def test_out_of_order_samples_are_ignored():
    w = LagWindow(size=3)
    w.add(PartitionSample("g", "t", 0, 5, 10, 2 * S))
    w.add(PartitionSample("g", "t", 0, 1, 10, 1 * S))
    assert [s.committed for s in w.samples("g", "t", 0)] == [5]


def test_lag_is_messages_and_never_negative():
    assert PartitionSample("g", "t", 0, committed=3, log_end=10, at_ms=0).lag == 7
    assert PartitionSample("g", "t", 0, committed=12, log_end=10, at_ms=0).lag == 0


# -- groups -----------------------------------------------------------------------------


def test_group_status_is_the_worst_partition():
    w = LagWindow(size=3)
    feed(w, [1, 2, 3], [10, 10, 10], partition=0)  # OK (lag decreasing)
    feed(w, [5, 5, 5], [9, 9, 9], partition=1)  # STALL
    feed(w, [1, 2, 3], [9, 10, 11], partition=2)  # WARN
    (group,) = w.evaluate()
    assert [p.status for p in group.partitions] == [Status.OK, Status.STALL, Status.WARN]
    assert group.status is Status.STALL
    assert group.total_lag == 7 + 4 + 8


def test_burrow_severity_order():
    assert Status.OK < Status.WARN < Status.STOP < Status.STALL < Status.REWIND
    assert not Status.WARN.is_error and Status.STOP.is_error


def test_groups_are_separate_and_unknown_ones_are_notfound():
    w = LagWindow(size=3)
    feed(w, [5, 5, 5], [9, 9, 9], group="a")
    feed(w, [1, 2, 3], [3, 3, 3], group="b")
    result = {g.group: g for g in w.evaluate(["a", "b", "c"])}
    assert result["a"].status is Status.STALL
    assert result["b"].status is Status.OK
    assert result["c"].status is Status.NOTFOUND and result["c"].partitions == ()
    assert [g.group for g in w.evaluate()] == ["a", "b"]
    w.forget("a")
    assert w.groups() == ["b"]


def test_group_to_dict_is_plain_data():
    w = LagWindow(size=2)
    feed(w, [1, 2], [5, 5])
    data = w.evaluate()[0].to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data == {
        "group": "g",
        "status": "OK",
        "total_lag": 3,
        "max_lag_seconds": 1.0,
        "partitions": [
            {
                "topic": "t",
                "partition": 0,
                "committed": 2,
                "log_end": 5,
                "lag": 3,
                "lag_seconds": 1.0,  # the log end never moved: at least since the first sample
                "seconds_method": "lower_bound",
                "status": "OK",
                "samples": 2,
                "complete": 1.0,
            }
        ],
    }


# -- lag in seconds ---------------------------------------------------------------------


def test_interpolates_between_the_points_around_the_committed_offset():
    points = [(100, 0), (200, 10 * S), (300, 20 * S)]
    assert estimate_time(points, 250) == (15 * S, "interpolated")
    assert estimate_time(points, 100) == (0, "interpolated")


def test_flat_stretch_uses_the_last_time_the_log_end_stood_there():
    points = [(100, 0), (100, 5 * S), (200, 10 * S)]
    assert estimate_time(points, 100) == (5 * S, "interpolated")
    assert estimate_time(points, 150) == (7.5 * S, "interpolated")


def test_extrapolates_before_the_table():
    points = [(100, 10 * S), (200, 20 * S)]  # 10 messages a second
    assert estimate_time(points, 50) == (5 * S, "extrapolated")


def test_table_that_never_moved_gives_a_lower_bound():
    assert estimate_time([(100, 10 * S), (100, 20 * S)], 50) == (10 * S, "lower_bound")


def test_too_few_points():
    assert estimate_time([], 5) is None
    assert estimate_time([(100, 0)], 5) is None


def test_lag_seconds_from_the_window():
    w = LagWindow(size=5)
    # The producer writes 10 messages a second; the consumer is 25 messages behind.
    for i in range(5):
        w.add(PartitionSample("g", "t", 0, committed=100 + 10 * i - 25, log_end=100 + 10 * i, at_ms=i * S))
    part = w.evaluate_partition("g", "t", 0)
    assert part.seconds_method == "interpolated"
    assert part.lag_seconds == pytest.approx(2.5)


def test_lag_seconds_from_the_oldest_unconsumed_message():
    sample = PartitionSample("g", "t", 0, 5, 10, at_ms=60 * S, message_ms=15 * S)
    assert lag_seconds(sample, [], now_ms=60 * S) == (45.0, "age")


def test_lag_seconds_is_zero_without_lag_and_unknown_without_history():
    assert lag_seconds(PartitionSample("g", "t", 0, 10, 10, 0), [], 5 * S) == (0.0, "zero")
    assert lag_seconds(PartitionSample("g", "t", 0, 5, 10, 0), [(10, 0)], 5 * S) == (None, "unknown")


def test_lookup_table_compresses_flat_stretches_and_is_shared_by_groups():
    w = LagWindow(size=3, history=4)
    for i in range(6):
        w.add(PartitionSample("a", "t", 0, 0, 100, i * S))
        w.add(PartitionSample("b", "t", 0, 0, 100, i * S))  # same reading: not a new point
    # 100 since 0 s: the table keeps both ends only, so the lag reaches back to the first reading.
    part = w.evaluate_partition("a", "t", 0)
    assert (part.lag_seconds, part.seconds_method) == (5.0, "lower_bound")


def test_log_end_going_back_restarts_the_table():
    w = LagWindow(size=3)
    feed(w, [0, 0], [100, 200])
    w.add(PartitionSample("g", "t", 0, 0, 10, 2 * S))  # topic recreated
    assert w.evaluate_partition("g", "t", 0).seconds_method == "unknown"


def test_rejects_a_window_too_small():
    with pytest.raises(ValueError):
        LagWindow(size=0)


# -- member assignments (collect) -------------------------------------------------------


def test_member_assignment_shapes():
    from kafka.protocol.consumer.metadata import ConsumerProtocolAssignment as Assignment

    decoded = Assignment(
        assigned_partitions=[Assignment.TopicPartition(topic="t", partitions=[0, 2])],
        user_data=None,
        version=0,
    )
    assert _assigned(decoded) == [("t", 0), ("t", 2)]
    assert _assigned(decoded.to_dict()) == [("t", 0), ("t", 2)]
    assert _assigned("") == [] and _assigned(None) == [] and _assigned(b"\x00junk") == []


def test_one_sample_of_a_group_without_members_is_stop_when_it_lags():
    # The first `lag --watch` round: nobody consumes a lagging partition of an empty group.
    assert status([7], [10], members=0) is Status.STOP
    assert status([10], [10], members=0) is Status.OK  # no lag: nothing to consume
    assert status([7], [10], members=1) is Status.OK  # a member may be consuming: wait and see
    assert status([7], [10], members=None) is Status.OK
