"""Replay sources: readers, session synthesis, ordering, batching, synthetic data, consent."""

from __future__ import annotations

import ipaddress
import json
import re
from collections import Counter, defaultdict
from itertools import combinations, pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.errors import ConfigError, ValidationFailed
from pipeline.sources import (
    BATCH_SCHEMA,
    EVENT_TYPES,
    HEARTBEAT_MS,
    PLAYBACK_SCHEMA,
    WATCH_BUDGET_MS,
    Rating,
    batch_sessions,
    consent_mix,
    consent_record,
    dataset_path,
    dataset_root,
    expected_events_per_session,
    order_by_time,
    parse_mix,
    ratings_to_sessions,
    read_ratings,
    read_titles,
    synthetic_ratings,
    synthetic_titles,
    synthetic_world,
)

EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
PHONE = re.compile(r"\+?\d[\d ()-]{7,}\d")
HOUR_MS = 3_600_000
UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


# --------------------------------------------------------------------- fixtures


def make_ratings(n: int = 400, *, users: int = 40, items: int = 60, seed: int = 0) -> list[Rating]:
    rng = np.random.default_rng(seed)
    return [
        Rating(
            f"{int(rng.integers(users))}",
            f"{int(rng.integers(items))}",
            float(rng.integers(1, 11)) / 2,
            880_000_000 + int(rng.integers(0, 30 * 86_400)),
        )
        for _ in range(n)
    ]


@pytest.fixture(scope="module")
def sessions() -> list[list[dict[str, Any]]]:
    return list(ratings_to_sessions(make_ratings(), seed=11, titles={"1": "Toy Story (1995)"}))


@pytest.fixture(scope="module")
def synthetic() -> list[Rating]:
    return synthetic_ratings(users=400, items=300, events_target=60_000, seed=5)


def ml_dir(name: str) -> Path:
    path = dataset_path(name)
    if not path.is_dir():
        pytest.skip(
            f"dataset {name} not found under {dataset_root()} (set PRIVREC_DATASETS); it is never vendored"
        )
    return path


def totals(session: list[dict[str, Any]]) -> int:
    return sum(e["watched_ms"] for e in session)


# --------------------------------------------------------------------- readers


def test_movielens_100k_reads_every_row() -> None:
    folder = ml_dir("movielens-100k")
    ratings = read_ratings(folder, "movielens")
    assert len(ratings) == 100_000
    assert ratings[0] == Rating("196", "242", 3.0, 881250949)
    assert read_ratings(folder / "u.data", "movielens") == ratings
    titles = read_titles(folder, "movielens")
    assert len(titles) == 1682 and titles["1"] == "Toy Story (1995)"


def test_movielens_latest_small_reads_every_row() -> None:
    folder = ml_dir("movielens-latest-small")
    ratings = read_ratings(folder, "movielens")
    assert len(ratings) == 100_836
    assert ratings[0] == Rating("1", "1", 4.0, 964982703)
    assert {r.weight for r in ratings} == {x / 2 for x in range(1, 11)}
    titles = read_titles(folder / "ratings.csv", "movielens")
    assert len(titles) == 9742 and titles["1"] == "Toy Story (1995)"


def test_privrec_csv_round_trip(tmp_path: Path) -> None:
    (tmp_path / "r.csv").write_text("user_id,content_id,weight,timestamp\nu1,c1,2.5,100\nu2,c9,0,200\n")
    (tmp_path / "titles.csv").write_text('content_id,title\nc1,"Heat, Part 1"\n')
    assert read_ratings(tmp_path / "r.csv", "csv") == [
        Rating("u1", "c1", 2.5, 100),
        Rating("u2", "c9", 0.0, 200),
    ]
    assert read_titles(tmp_path / "r.csv", "csv") == {"c1": "Heat, Part 1"}


def test_titles_are_empty_without_metadata(tmp_path: Path) -> None:
    (tmp_path / "u.data").write_text("1\t2\t3\t4\n")
    assert read_titles(tmp_path, "movielens") == {}
    assert read_ratings(tmp_path, "movielens") == [Rating("1", "2", 3.0, 4)]


@pytest.mark.parametrize(
    ("content", "fmt"),
    [
        ("user_id,content_id,weight\nu1,c1,1\n", "csv"),  # wrong header
        ("user_id,content_id,weight,timestamp\nu1,c1,x,1\n", "csv"),  # not a number
        ("user_id,content_id,weight,timestamp\nu1,c1,-1,1\n", "csv"),  # negative weight
        ("user_id,content_id,weight,timestamp\nu1,c1,nan,1\n", "csv"),
        ("user_id,content_id,weight,timestamp\nu1,c1,1\n", "csv"),  # short row
        ("user_id,content_id,weight,timestamp\nu1,c1,1,1\n", "parquet"),  # unknown format
    ],
)
def test_bad_files_raise_config_error(tmp_path: Path, content: str, fmt: str) -> None:
    path = tmp_path / "r.csv"
    path.write_text(content)
    with pytest.raises(ConfigError) as info:
        read_ratings(path, fmt)
    assert info.value.setting == "dataset"
    assert "u1" not in str(info.value)  # the message names the row, never its content


def test_missing_dataset_raises_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="PRIVREC_DATASETS"):
        read_ratings(tmp_path / "nope.csv", "csv")
    with pytest.raises(ConfigError, match="neither"):
        read_ratings(tmp_path, "movielens")


def test_dataset_root_resolution(tmp_path: Path) -> None:
    assert dataset_root({"PRIVREC_DATASETS": str(tmp_path)}) == tmp_path
    assert dataset_path("movielens-100k", {"PRIVREC_DATASETS": str(tmp_path)}) == tmp_path / "movielens-100k"
    default = dataset_root({})
    assert default.parts[-2:] == ("shared", "datasets")
    assert default.parent.parent == Path(__file__).resolve().parents[2].parent


# --------------------------------------------------------------------- sessions


def test_sessions_are_deterministic_per_seed() -> None:
    ratings = make_ratings(100)
    assert list(ratings_to_sessions(ratings, seed=3)) == list(ratings_to_sessions(ratings, seed=3))
    assert list(ratings_to_sessions(ratings, seed=3)) != list(ratings_to_sessions(ratings, seed=4))


def test_one_session_per_rating_in_start_order(sessions: list[list[dict[str, Any]]]) -> None:
    assert len(sessions) == 400
    starts = [s[0]["event_time"] for s in sessions]
    assert starts == sorted(starts)
    assert Counter(
        (s[0]["user_id"], s[0]["content_id"], s[0]["event_time"] // 1000) for s in sessions
    ) == Counter((r.user_id, r.content_id, r.timestamp_s) for r in make_ratings())


def test_session_shape(sessions: list[list[dict[str, Any]]]) -> None:
    event_ids = set()
    for session in sessions:
        first, last = session[0], session[-1]
        assert first["event_type"] == "play" and first["watched_ms"] == 0
        assert last["event_type"] in ("stop", "complete")
        assert {e["event_type"] for e in session[1:-1]} <= {"heartbeat", "pause", "seek"}
        for key in ("user_id", "session_id", "device_id", "content_id", "duration_ms", "gpc", "client"):
            assert len({repr(e[key]) for e in session}) == 1, key
        times = [e["event_time"] for e in session]
        assert all(a < b for a, b in pairwise(times))
        assert times[-1] - times[0] < HOUR_MS
        assert 45 * 60_000 <= first["duration_ms"] <= 150 * 60_000
        for event in session:
            assert event["schema"] == PLAYBACK_SCHEMA and event["event_type"] in EVENT_TYPES
            assert isinstance(event["watched_ms"], int) and event["watched_ms"] >= 0
            assert 0 <= event["position_ms"] <= event["duration_ms"]
            assert UUID4.fullmatch(event["event_id"])
            event_ids.add(event["event_id"])
        if last["event_type"] == "complete":
            assert last["position_ms"] == last["duration_ms"]
        else:
            assert last["position_ms"] < last["duration_ms"]
        for before, event in pairwise(session):
            if event["event_type"] == "heartbeat" and before["event_type"] in ("play", "heartbeat"):
                assert event["watched_ms"] == HEARTBEAT_MS
    assert len(event_ids) == sum(map(len, sessions))


def test_watched_total_follows_weight(sessions: list[list[dict[str, Any]]]) -> None:
    ratings = sorted(make_ratings(), key=lambda r: r.timestamp_s)
    for rating, session in zip(ratings, sessions, strict=True):
        assert totals(session) == round(rating.weight / 5.0 * WATCH_BUDGET_MS)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(0.0, 100.0, allow_nan=False), min_size=2, max_size=30), st.integers(0, 2**32))
def test_watched_total_is_monotone_in_weight(weights: list[float], seed: int) -> None:
    ratings = [Rating(f"u{i}", f"c{i * 7919 % 101}", w, 1_000_000 + i) for i, w in enumerate(weights)]
    pairs = sorted(
        (r.weight, totals(s)) for r, s in zip(ratings, ratings_to_sessions(ratings, seed=seed), strict=True)
    )
    assert [t for _, t in pairs] == sorted(t for _, t in pairs)


def test_higher_ratings_complete_more_often() -> None:
    ratings = [Rating(f"u{i}", f"c{i % 50}", 1.0 + (i % 5), 1_000_000 + i) for i in range(5_000)]
    done: dict[float, list[bool]] = defaultdict(list)
    for rating, session in zip(ratings, ratings_to_sessions(ratings, seed=2), strict=True):
        done[rating.weight].append(session[-1]["event_type"] == "complete")
    rates = [np.mean(done[w]) for w in sorted(done)]
    assert rates == sorted(rates) and rates[-1] > 0.6 and rates[0] < 0.05


def test_zero_weight_is_an_empty_session() -> None:
    (session,) = ratings_to_sessions([Rating("u", "c", 0.0, 10)], seed=1, max_weight=5.0)
    assert [e["event_type"] for e in session] == ["play", "stop"] and totals(session) == 0


def test_raw_fields_carry_realistic_pii() -> None:
    ratings = make_ratings(3_000, users=300, seed=1)
    events = [e for s in ratings_to_sessions(ratings, seed=9) for e in s]
    queries = [e["search_query"] for e in events if "search_query" in e]
    errors = [e["error_message"] for e in events if "error_message" in e]
    assert 0.05 < len(queries) / len(ratings) < 0.2 and errors
    assert any(EMAIL.search(q) for q in queries) and any(PHONE.search(q) for q in queries)
    assert any(EMAIL.search(m) for m in errors) or any(re.search(r"\d+\.\d+\.\d+\.\d+", m) for m in errors)
    ips = [ipaddress.ip_address(e["client"]["ip"]) for e in events]
    assert all(ip.is_global for ip in ips)
    assert {ip.version for ip in ips} == {4, 6}
    assert {e["client"]["device_class"] for e in events} == {"tv", "mobile", "web", "console", "other"}
    assert all(re.fullmatch(r"[A-Z]{2}", e["client"]["country"]) for e in events)
    gpc = {e["user_id"]: e["gpc"] for e in events}
    assert 0.05 < sum(gpc.values()) / len(gpc) < 0.3


def test_a_user_looks_the_same_in_every_session_and_run(sessions: list[list[dict[str, Any]]]) -> None:
    seen: dict[str, tuple[bool, str]] = {}
    for session in sessions:
        e = session[0]
        assert seen.setdefault(e["user_id"], (e["gpc"], e["client"]["country"])) == (
            e["gpc"],
            e["client"]["country"],
        )
    alone = next(iter(ratings_to_sessions([make_ratings()[0]], seed=11)))[0]
    assert (alone["gpc"], alone["client"]["country"]) == seen[alone["user_id"]]


def test_events_are_fresh_dicts(sessions: list[list[dict[str, Any]]]) -> None:
    a, b = sessions[0][0], sessions[0][1]
    assert a["client"] == b["client"] and a["client"] is not b["client"]


# --------------------------------------------------------------------- ordering and batching


def test_order_by_time_merges_into_global_time_order(sessions: list[list[dict[str, Any]]]) -> None:
    events = list(order_by_time(sessions))
    assert sorted(map(id, events)) == sorted(id(e) for s in sessions for e in s)
    times = [e["event_time"] for e in events]
    assert times == sorted(times)
    position = {id(e): i for i, e in enumerate(events)}
    for session in sessions:
        assert [position[id(e)] for e in session] == sorted(position[id(e)] for e in session)


def test_order_by_time_rejects_unordered_sessions(sessions: list[list[dict[str, Any]]]) -> None:
    with pytest.raises(ValueError, match="start-time order"):
        list(order_by_time([sessions[-1], sessions[0]]))


@pytest.mark.parametrize(("max_events", "max_hold_ms"), [(500, 60_000), (3, 60_000), (500, 0), (7, HOUR_MS)])
def test_batches_hold_one_users_close_events(
    sessions: list[list[dict[str, Any]]], max_events: int, max_hold_ms: int
) -> None:
    batches = list(batch_sessions(sessions, max_events, max_hold_ms=max_hold_ms))
    sent = [e for _, batch in batches for e in batch]
    assert sorted(map(id, sent)) == sorted(id(e) for s in sessions for e in s)
    newest = 0
    per_user: dict[str, list[int]] = defaultdict(list)
    for user_id, batch in batches:
        times = [e["event_time"] for e in batch]
        assert {e["user_id"] for e in batch} == {user_id}
        assert 1 <= len(batch) <= max_events
        assert times == sorted(times) and times[-1] - times[0] <= max_hold_ms
        assert times[0] >= newest - max_hold_ms  # never later than the stream's lateness allowance
        newest = max(newest, times[-1])
        per_user[user_id].extend(times)
    assert all(t == sorted(t) for t in per_user.values())
    assert BATCH_SCHEMA == "playback.batch.v1"


def test_bursts_of_one_user_share_batches() -> None:
    ratings = [Rating("7", f"{i}", 4.0, 1_000) for i in range(1_200)]
    batches = list(batch_sessions(ratings_to_sessions(ratings, seed=1)))
    assert max(len(b) for _, b in batches) == 500 and {u for u, _ in batches} == {"7"}


# --------------------------------------------------------------------- synthetic


def test_synthetic_is_deterministic_and_well_formed(synthetic: list[Rating]) -> None:
    assert synthetic == synthetic_ratings(users=400, items=300, events_target=60_000, seed=5)
    assert synthetic != synthetic_ratings(users=400, items=300, events_target=60_000, seed=6)
    assert all(
        re.fullmatch(r"u\d{5}", r.user_id) and re.fullmatch(r"c\d{4}", r.content_id) for r in synthetic
    )
    assert len({(r.user_id, r.content_id) for r in synthetic}) == len(synthetic)
    assert all(0.5 <= r.weight <= 5.0 and r.weight * 2 == int(r.weight * 2) for r in synthetic)
    stamps = [r.timestamp_s for r in synthetic]
    assert stamps == sorted(stamps)
    by_user: dict[str, list[int]] = defaultdict(list)
    for r in synthetic:
        by_user[r.user_id].append(r.timestamp_s)
    assert all(b - a >= 3_600 for ts in by_user.values() for a, b in pairwise(ts))
    assert np.median([ts[-1] - ts[0] for ts in by_user.values() if len(ts) > 1]) < 32 * 86_400


def test_synthetic_hits_the_event_target(synthetic: list[Rating]) -> None:
    events = sum(len(s) for s in ratings_to_sessions(synthetic, seed=5))
    assert abs(events - 60_000) / 60_000 < 0.05
    predicted = expected_events_per_session(np.array([r.weight / 5.0 for r in synthetic])).sum()
    assert abs(predicted - 60_000) < 20


def test_synthetic_popularity_is_skewed(synthetic: list[Rating]) -> None:
    counts = sorted(Counter(r.content_id for r in synthetic).values(), reverse=True)
    assert sum(counts[:30]) / len(synthetic) > 0.30  # top 10% of 300 titles


def test_synthetic_has_taste_structure(synthetic: list[Rating]) -> None:
    world = synthetic_world(users=400, items=300, seed=5)
    seen: dict[int, set[int]] = defaultdict(set)
    weights: dict[bool, list[float]] = defaultdict(list)
    for r in synthetic:
        u, i = int(r.user_id[1:]), int(r.content_id[1:])
        seen[u].add(i)
        weights[bool(world.user_cluster[u] == world.item_cluster[i])].append(r.weight)

    def jaccard(a: int, b: int) -> float:
        return len(seen[a] & seen[b]) / max(1, len(seen[a] | seen[b]))

    pairs = list(combinations(sorted(seen), 2))
    same = [jaccard(a, b) for a, b in pairs if world.user_cluster[a] == world.user_cluster[b]]
    other = [jaccard(a, b) for a, b in pairs if world.user_cluster[a] != world.user_cluster[b]]
    assert np.mean(same) > 2 * np.mean(other)
    assert np.mean(weights[True]) > np.mean(weights[False]) + 1.0
    assert len(weights[True]) / len(synthetic) > 3 / len(set(world.item_cluster))  # chance would be 1/k


def test_synthetic_titles_are_readable_and_unique() -> None:
    titles = synthetic_titles(2_000, seed=1)
    assert list(titles) == [f"c{i:04d}" for i in range(2_000)]
    assert len(set(titles.values())) == 2_000
    assert all(re.fullmatch(r"[A-Z][A-Za-z]*( [A-Za-z]+)*( [IVX]+| \d+)?", t) for t in titles.values())
    assert titles == synthetic_titles(2_000, seed=1) and titles != synthetic_titles(2_000, seed=2)


def test_tiny_synthetic_worlds_work() -> None:
    ratings = synthetic_ratings(users=1, items=1, events_target=100, seed=0)
    assert ratings == [Rating("u00000", "c0000", ratings[0].weight, ratings[0].timestamp_s)]
    assert synthetic_ratings(users=5, items=3, events_target=0, seed=0) != []  # at least one rating


# --------------------------------------------------------------------- consent


@pytest.mark.parametrize(
    ("spec", "shares"),
    [
        ("0.8,0.1,0.1", (0.8, 0.1, 0.1)),
        ("0.8", (0.8, 0.1, 0.1)),
        ("0.5", (0.5, 0.25, 0.25)),
        ("all", (1.0, 0.0, 0.0)),
        ("none", (0.0, 0.0, 1.0)),
        (" 0.2, 0.3 ,0.5", (0.2, 0.3, 0.5)),
    ],
)
def test_consent_mix_meets_its_shares(spec: str, shares: tuple[float, float, float]) -> None:
    users = [f"u{i:05d}" for i in range(20_000)]
    mix = consent_mix(users, spec=spec, seed=3)
    full = sum(p is not None and p["personalization"] for p in mix.values()) / len(users)
    analytics_only = sum(p is not None and not p["personalization"] for p in mix.values()) / len(users)
    nothing = sum(p is None for p in mix.values()) / len(users)
    assert np.allclose((full, analytics_only, nothing), shares, atol=0.015)
    assert all(p is None or (p["analytics"] and not p["advertising"]) for p in mix.values())
    assert parse_mix(spec) == pytest.approx(shares)


def test_consent_mix_is_stable_per_user() -> None:
    users = [f"{i}" for i in range(1_000)]
    mix = consent_mix(users, seed=1)
    assert consent_mix(users[::7], seed=1) == {u: mix[u] for u in users[::7]}
    assert consent_mix(users, seed=2) != mix
    granted = [p for p in mix.values() if p is not None]
    assert all(a is not b for a, b in pairwise(granted))


@pytest.mark.parametrize("spec", ["most", "1.2", "0.5,0.5", "0.5,0.4,0.3", "-0.1", ""])
def test_bad_consent_spec_is_a_config_error(spec: str) -> None:
    with pytest.raises(ConfigError) as info:
        consent_mix(["1"], spec=spec, seed=0)
    assert info.value.setting == "consent_mix"


def test_consent_record() -> None:
    purposes = {"personalization": True, "analytics": True, "advertising": False}
    assert consent_record("42", purposes, updated_at_ms=1_000) == {
        "schema": "consent.v1",
        "user_id": "42",
        "purposes": {"analytics": True, "personalization": True, "advertising": False},
        "updated_at": 1_000,
        "source": "replay",
    }
    with pytest.raises(ValidationFailed):
        consent_record("42", {"analytics": True}, updated_at_ms=1)
    with pytest.raises(ValidationFailed):
        consent_record("42", {**purposes, "analytics": 1}, updated_at_ms=1)  # type: ignore[dict-item]


def test_replayed_records_pass_the_wire_contract(sessions: list[list[dict[str, Any]]]) -> None:
    wire = pytest.importorskip("pipeline.wire", reason="the wire contract module is not in this checkout")
    for _, batch in batch_sessions(sessions):
        value = json.dumps({"schema": BATCH_SCHEMA, "events": batch}).encode()
        decoded = wire.decode_raw(value, max_bytes=10_000_000, now_ms=2 * 10**12, future_tolerance_ms=0)
        assert decoded.rejects == [] and len(decoded.events) == len(batch)
    purposes = {"analytics": True, "personalization": False, "advertising": False}
    assert (
        wire.decode_consent(json.dumps(consent_record("7", purposes, updated_at_ms=5)).encode()) is not None
    )
