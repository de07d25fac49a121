"""DP trending: bounding, threshold, ledger, release_day, and an empirical check of ε."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.dp.bounding import Bounder, bounded_counts, day_of, keep_rank
from pipeline.dp.ledger import (
    BudgetExceeded,
    LedgerRecord,
    admitted,
    check,
    decode_record,
    encode_record,
    latest_release,
    spent_by_day,
)
from pipeline.dp.release import plan, release_counts, threshold_formula
from pipeline.dp.service import TrendingJob, due_day, release_day
from pipeline.settings import DpSettings

KEY = b"k" * 32


# -- bounding ------------------------------------------------------------------------------


def test_a_thousand_plays_of_one_title_move_its_count_by_one() -> None:
    plays = [("viewer-a", "t1")] * 1000 + [("viewer-b", "t1")]
    assert bounded_counts(plays, key=KEY, max_titles=10) == {"t1": 2}


def test_a_viewer_counts_for_at_most_max_titles_titles() -> None:
    plays = [("heavy", f"t{i}") for i in range(200) for _ in range(5)]
    counts = bounded_counts(plays, key=KEY, max_titles=10)
    assert sum(counts.values()) == 10 and set(counts.values()) == {1}


def test_kept_titles_are_the_smallest_keyed_hashes_whatever_the_order() -> None:
    titles = [f"t{i}" for i in range(50)]
    expected = set(sorted(titles, key=lambda t: keep_rank(KEY, "v", t))[:10])
    for seed in range(5):
        order = titles[:]
        random.Random(seed).shuffle(order)
        b = Bounder(KEY, 10)
        for t in order:
            b.add("2024-01-01", "v", t)
        assert b.kept("2024-01-01", "v") == expected
    # keyed: another key keeps other titles (the choice is not predictable without it)
    other = Bounder(b"o" * 32, 10)
    for t in titles:
        other.add("d", "v", t)
    assert other.kept("d", "v") != expected


def test_bounding_refuses_a_short_key() -> None:
    with pytest.raises(ValueError):
        Bounder(b"short", 10)


def _reference(plays: list[tuple[str, str]], k: int) -> Counter[str]:
    """Obviously right: per viewer, the distinct titles sorted by keyed hash, the first k."""
    per: dict[str, set[str]] = {}
    for v, t in plays:
        per.setdefault(v, set()).add(t)
    out: Counter[str] = Counter()
    for v, ts in per.items():
        out.update(sorted(ts, key=lambda t: keep_rank(KEY, v, t))[:k])
    return out


plays_st = st.lists(
    st.tuples(st.sampled_from([f"v{i}" for i in range(8)]), st.sampled_from([f"t{i}" for i in range(15)])),
    max_size=120,
)


@settings(max_examples=60, deadline=None)
@given(plays=plays_st, k=st.integers(1, 6), extra=plays_st)
def test_bounding_matches_the_reference_and_one_viewer_moves_at_most_k_counts_by_one(
    plays: list[tuple[str, str]], k: int, extra: list[tuple[str, str]]
) -> None:
    counts = bounded_counts(plays, key=KEY, max_titles=k)
    assert counts == dict(_reference(plays, k))
    newcomer = [("newcomer", t) for _, t in extra]  # one viewer added, any number of plays
    after = bounded_counts(plays + newcomer, key=KEY, max_titles=k)
    changed = {t: after.get(t, 0) - counts.get(t, 0) for t in set(after) | set(counts)}
    assert all(d in (0, 1) for d in changed.values())
    assert sum(changed.values()) <= k


def test_day_of_is_utc() -> None:
    assert day_of(1_704_067_199_999) == "2023-12-31"
    assert day_of(1_704_067_200_000) == "2024-01-01"
    assert due_day(1_704_067_200 + 3600, 3600) == "2023-12-31"
    assert due_day(1_704_067_200 + 3599, 3600) == "2023-12-30"


# -- threshold and release -------------------------------------------------------------------


@pytest.mark.parametrize("eps,delta,k", [(1.0, 1e-6, 10), (0.5, 1e-6, 10), (1.0, 1e-8, 1), (2.0, 1e-5, 3)])
def test_plan_fits_the_budget_by_opendps_map_and_agrees_with_the_formula(
    eps: float, delta: float, k: int
) -> None:
    p = plan(eps, delta, k)
    assert p.scale == pytest.approx(k / eps)
    assert p.epsilon_used <= eps * (1 + 1e-9) and p.delta_used <= delta
    assert abs(p.threshold - threshold_formula(p.scale, delta, k)) <= 2
    # one less and OpenDP says delta is over budget: the threshold is the smallest that fits
    from pipeline.dp.release import _cost

    assert _cost(p.scale, p.threshold - 1, k)[1] > delta


def test_defaults_give_threshold_155() -> None:
    p = plan(1.0, 1e-6, 10)
    assert (p.scale, p.threshold) == (10.0, 155)


def test_rare_titles_stay_hidden_and_popular_ones_show() -> None:
    p = plan(1.0, 1e-6, 10)
    counts = {"rare": 1, "few": 20, "big": 1000}
    seen: Counter[str] = Counter()
    for _ in range(300):
        seen.update(release_counts(counts, p).keys())
    assert seen["rare"] == 0 and seen["few"] == 0
    assert seen["big"] == 300


# -- empirical DP check ----------------------------------------------------------------------


def _histogram(counts: dict[str, int], p, runs: int, bins: list[int]) -> list[float]:  # type: ignore[no-untyped-def]
    """Distribution of title "t"'s output over (absent or < b1, [b1,b2), ..., [b_last, inf))."""
    h = [0] * (len(bins) + 1)
    for _ in range(runs):
        out = release_counts(counts, p).get("t")
        h[0 if out is None else 1 + sum(out >= b for b in bins[1:])] += 1
    return [x / runs for x in h]


def _violations(a: list[float], b: list[float], eps: float, delta: float, runs: int) -> list[int]:
    """Bins where ``P > e^ε·P' + δ`` by more than five standard errors of ``P - e^ε·P'``.

    The mechanism is tight (the ratio reaches e^ε in some bins), so the tolerance is the
    standard error of that very difference: a flat four errors of one proportion failed
    about once in a few hundred runs of an honest mechanism.
    """
    k = math.exp(eps)
    out = []
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        se = math.sqrt((x * (1 - x) + k * k * y * (1 - y)) / runs) + 1.0 / runs
        if x > k * y + delta + 5 * se:
            out.append(i)
    return out


def _dp_check(scale_factor: float = 1.0) -> list[int]:
    """Neighbouring inputs (one viewer added to "t"): bins where P > e^ε·P' + δ beyond tolerance."""
    eps = 1.0
    p = plan(eps, 1e-6, 1)
    if scale_factor != 1.0:  # a deliberately broken mechanism: the check must catch it
        from dataclasses import replace

        p = replace(p, scale=p.scale * scale_factor)
    c = p.threshold  # near the threshold: both "absent" and values matter
    bins = list(range(c - 3, c + 5))  # unit-wide bins: a coarse bin would hide a shift by one
    runs = 2000
    d = _histogram({"t": c, "u": 500}, p, runs, bins)
    d2 = _histogram({"t": c + 1, "u": 500}, p, runs, bins)
    return _violations(d, d2, eps, 1e-6, runs) + _violations(d2, d, eps, 1e-6, runs)


def test_release_respects_epsilon_on_neighbouring_inputs() -> None:
    assert _dp_check() == []


def test_the_empirical_check_catches_too_little_noise() -> None:
    assert _dp_check(scale_factor=0.1) != []


# -- ledger ----------------------------------------------------------------------------------


def rec(
    rid: str, day: str = "2024-01-01", status: str = "released", eps: float = 1.0, delta: float = 1e-6
) -> LedgerRecord:
    return LedgerRecord(
        release_id=rid,
        day=day,
        status=status,  # type: ignore[arg-type]
        mechanism="m",
        epsilon=eps,
        delta=delta,
        max_titles=10,
        scale=10.0,
        threshold=155,
        at_ms=1,
    )


BUDGET = {"epsilon_budget": 1.0, "delta_budget": 1e-6}


def test_ledger_refuses_overspend_per_day() -> None:
    records = [rec("a", eps=0.6, delta=6e-7)]
    check(records, "2024-01-01", 0.4, 4e-7, **BUDGET)
    with pytest.raises(BudgetExceeded) as err:
        check(records, "2024-01-01", 0.5, 5e-7, **BUDGET)
    assert "2024-01-01" in str(err.value)
    check(records, "2024-01-02", 1.0, 1e-6, **BUDGET)  # another day, another budget
    with pytest.raises(BudgetExceeded):  # delta is a budget too
        check(records, "2024-01-01", 0.1, 9e-7, **BUDGET)


def test_aborted_reservations_charge_nothing_and_compaction_keeps_the_charge() -> None:
    log = [rec("a", status="reserved"), rec("b", status="reserved"), rec("b", status="aborted"), rec("a")]
    assert spent_by_day(log) == {"2024-01-01": (1.0, 1e-6)}
    assert spent_by_day([rec("a")]) == spent_by_day(log)  # after compaction: last record per key


def test_of_two_racing_reservations_only_the_first_in_the_log_is_admitted() -> None:
    log = [rec("a", status="reserved"), rec("b", status="reserved")]
    assert admitted(log, "a", **BUDGET) and not admitted(log, "b", **BUDGET)
    log.append(rec("a", status="aborted"))
    assert admitted(log, "b", **BUDGET)


def test_ledger_records_round_trip() -> None:
    r = rec("2024-01-01.abc")
    assert decode_record(encode_record(r)) == r
    assert latest_release([r, rec("x", day="2023-12-31")]) == r


# -- release_day with an in-memory store -----------------------------------------------------


class MemoryStore:
    def __init__(self) -> None:
        self.records: list[LedgerRecord] = []

    def read(self) -> list[LedgerRecord]:
        return list(self.records)

    def append(self, record: LedgerRecord) -> int:
        self.records.append(record)
        return len(self.records) - 1


def _feed(bounder: Bounder, days) -> None:  # type: ignore[no-untyped-def]
    for v in range(400):
        for t in range(12):  # every viewer watched 12 titles: 2 of them are bounded away
            bounder.add("2024-01-01", f"v{v}", f"t{t}")
        bounder.add("2024-01-01", f"v{v}", "t-common")
    bounder.add("2024-01-01", "v-alone", "t-rare")


def test_release_day_records_everything_and_refuses_a_second_full_release() -> None:
    store = MemoryStore()
    cfg = DpSettings()
    record = release_day("2024-01-01", cfg=cfg, store=store, feed=_feed, key=KEY)
    assert [r.status for r in store.records] == ["reserved", "released"]
    assert (record.mechanism, record.epsilon, record.delta, record.max_titles) == (
        "opendp.make_laplace_threshold",
        1.0,
        1e-6,
        10,
    )
    assert (record.scale, record.threshold) == (10.0, 155)
    titles = [i.content_id for i in record.items]
    assert "t-rare" not in titles and len(titles) >= 5
    assert all(i.count >= record.threshold for i in record.items)
    with pytest.raises(BudgetExceeded):
        release_day("2024-01-01", cfg=cfg, store=store, feed=_feed, key=KEY)
    assert len(store.records) == 2  # refused before anything was written


def test_a_day_budget_can_be_split() -> None:
    store = MemoryStore()
    cfg = DpSettings()
    release_day("2024-01-01", cfg=cfg, store=store, feed=_feed, key=KEY, epsilon=0.5)
    release_day("2024-01-01", cfg=cfg, store=store, feed=_feed, key=KEY, epsilon=0.5)
    assert spent_by_day(store.records)["2024-01-01"] == pytest.approx((1.0, 1e-6))
    with pytest.raises(BudgetExceeded):
        release_day("2024-01-01", cfg=cfg, store=store, feed=_feed, key=KEY, epsilon=0.01)


def test_a_reservation_that_loses_the_race_is_aborted_and_refused() -> None:
    class Racing(MemoryStore):
        def append(self, record: LedgerRecord) -> int:
            if record.status == "reserved" and not self.records:
                self.records.append(rec("other", status="reserved"))  # another process got in first
            return super().append(record)

    store = Racing()
    with pytest.raises(BudgetExceeded):
        release_day("2024-01-01", cfg=DpSettings(), store=store, feed=_feed, key=KEY)
    assert store.records[-1].status == "aborted"
    assert spent_by_day(store.records)["2024-01-01"] == (1.0, 1e-6)


def test_the_job_releases_the_closed_day_once() -> None:
    store = MemoryStore()
    days: list[set[str]] = []

    def feed(bounder: Bounder, wanted) -> None:  # type: ignore[no-untyped-def]
        days.append(set(wanted))

    from pipeline.serving.layout import Layout

    job = TrendingJob(
        cfg=DpSettings(), store=store, feed=feed, key=KEY, redis=None, layout=Layout("privrec:t")
    )
    now = 1_704_067_200 + 2 * 3600  # 2024-01-01 02:00 UTC: 2023-12-31 is over (grace 1 h)
    job.redis = _NullRedis()
    assert job.step(now) is None  # the first look comes one dp.check_every_s after start
    assert job.step(now + 300) is not None
    now += 300
    assert days == [{"2023-12-31"}]
    assert job.step(now + 10) is None  # not before dp.check_every_s
    assert job.step(now + 1000) is None and len(days) == 1  # released already
    assert job.spent == {"2023-12-31": (1.0, 1e-6)}


class _NullRedis:
    """Enough of redis-py for publish_trending/latest_trending of an empty release."""

    def pipeline(self, transaction: bool = True):  # type: ignore[no-untyped-def]
        return self

    def set(self, *a, **k):  # type: ignore[no-untyped-def]
        return True

    def expire(self, *a, **k):  # type: ignore[no-untyped-def]
        return True

    def zadd(self, *a, **k):  # type: ignore[no-untyped-def]
        return 1

    def execute(self):  # type: ignore[no-untyped-def]
        return []

    def zrange(self, *a, **k):  # type: ignore[no-untyped-def]
        return []

    def zrevrange(self, *a, **k):  # type: ignore[no-untyped-def]
        return []


def test_the_job_survives_kafka_being_away() -> None:
    from pipeline.errors import ServiceUnavailable
    from pipeline.serving.layout import Layout

    class Away(MemoryStore):
        def read(self) -> list[LedgerRecord]:
            raise ServiceUnavailable("kafka: no answer")

    job = TrendingJob(
        cfg=DpSettings(), store=Away(), feed=_feed, key=KEY, redis=_NullRedis(), layout=Layout("privrec:t")
    )
    job.last_check = float("-inf")
    assert job.step(1_704_067_200 + 7200) is None  # logged, retried at the next check
