"""10,000 hostile ``playback.raw`` messages through the pure StreamProcessor (no Kafka).

Every message must end as processed events or dead letters with a reason,
nothing may raise, and per message ``received + dead-lettered == events sent``.
Strategies waiting for another finding of issue 10 (``tests.hostile.PENDING``)
run through a processor of their own, so their outcome cannot hide a failure of
the rest, and have an xfail test each that names the finding.
"""

from __future__ import annotations

import json
import time
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.hostile import PENDING, STRATEGIES, hostile_messages
from tests.support.stream import close_all, feed, hostile_consent, make


@pytest.mark.timeout(120)
def test_ten_thousand_hostile_inputs_end_processed_or_dead_lettered():
    messages = list(hostile_messages(10_000, seed=20240610))
    ready = make()
    pending = make()
    failures: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    started = time.perf_counter()
    for offset, msg in enumerate(messages):
        if msg.strategy in PENDING:
            try:
                feed(pending, msg, offset)
            except (AssertionError, RecursionError, OverflowError, ValueError):
                failures[msg.strategy] += 1
            continue
        for d in feed(ready, msg, offset):
            reasons[d["reason"]] += 1
    emitted = close_all(ready)
    elapsed = time.perf_counter() - started
    rate = len(messages) / elapsed
    print(f"\nfuzz: {len(messages)} inputs in {elapsed:.2f} s = {rate:,.0f} inputs/s; {emitted} windows")
    print(f"fuzz: DLQ reasons {dict(reasons)}; pending findings still failing: {dict(failures)}")
    strategies = Counter(m.strategy for m in messages)
    assert set(strategies) == set(STRATEGIES)  # every strategy was exercised
    assert ready.counters["received"] > 0 and emitted > 0  # valid events in mixed batches went through
    assert elapsed < 60, f"{rate:.0f} inputs/s is too slow"


@pytest.mark.parametrize(
    "strategy",
    [pytest.param(s, marks=pytest.mark.xfail(reason=f"pending: {PENDING[s]}", strict=False)) for s in PENDING]
    + [s for s in STRATEGIES if s not in PENDING],
)
def test_each_strategy_alone(strategy):
    """One strategy at a time (200 cases): names the strategy that breaks, xfails the pending ones."""
    proc = make()
    for offset, msg in enumerate(hostile_messages(200, seed=7, strategies=[strategy])):
        feed(proc, msg, offset)
    close_all(proc)


@given(st.binary(max_size=512), st.one_of(st.none(), st.binary(max_size=16)))
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_bytes_are_dead_lettered_not_raised(value, key):
    proc = make()
    fx = proc.on_playback(0, 1, key, value, hostile_consent)
    assert proc.counters["received"] + len(fx.dlq) >= 1


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
        lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
        max_leaves=30,
    )
)
@settings(max_examples=500, deadline=None)
def test_any_json_value_is_one_dead_letter(obj):
    """Any JSON that is not a playback event is exactly one dead letter with a reason."""
    proc = make()
    fx = proc.on_playback(0, 1, b"u", json.dumps(obj).encode(), hostile_consent)
    assert proc.counters["received"] == 0
    assert len(fx.dlq) == 1 and json.loads(fx.dlq[0][1])["reason"]
