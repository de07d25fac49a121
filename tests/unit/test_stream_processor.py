"""StreamProcessor without Kafka: consent gating, redaction, dead letters, crash semantics."""

from __future__ import annotations

import json
from collections import defaultdict

import msgspec

from pipeline.privacy.consent import Purposes
from pipeline.privacy.consent_history import decode_history
from pipeline.sources import batch_sessions, consent_record, ratings_to_sessions, synthetic_ratings
from pipeline.stream import (
    StateWrite,
    collapse_writes,
    encode_control,
)
from pipeline.stream.control import CONTROL_KEY, Control
from tests.support.stream import NOW, SPEC, Consents, enc, event, make
from tests.support.windows_reference import CLOSE_ALL, expected_interactions


def test_no_consent_record_drops_everything():
    proc = make()
    fx = proc.on_playback(0, 0, b"alice", enc(event()), lambda _: None)
    assert not fx.redacted and not fx.interactions and not fx.state
    assert proc.counters["dropped:no_consent_record"] == 1


def test_default_consent_is_configurable():
    proc = make(consent_default=Purposes(analytics=True))
    fx = proc.on_playback(0, 0, b"alice", enc(event()), lambda _: None)
    assert len(fx.redacted) == 1 and not fx.state


def test_analytics_only_is_redacted_but_never_windowed():
    proc = make()
    c = Consents()
    c.set(proc, "alice", True, False)
    fx = proc.on_playback(0, 0, b"alice", enc(event()), c.get)
    assert len(fx.redacted) == 1
    rec = json.loads(fx.redacted[0][1])
    assert rec["purposes"] == {"analytics": True, "personalization": False, "advertising": False}
    assert not fx.state and proc.counters["analytics_only"] == 1
    fx = proc.on_control(0, 1, encode_control(Control(command="close_windows", id="x", at=NOW)))
    assert not fx.interactions


def test_personalization_windows_and_redacted_has_allowed_fields_only():
    proc = make()
    c = Consents()
    c.set(proc, "alice", True, True, True)
    sent = event(gpc=True, search_query="mail me a@b.example")
    fx = proc.on_playback(0, 5, b"alice", enc(sent), c.get)
    rec = json.loads(fx.redacted[0][1])
    assert set(rec) == {
        "schema",
        "user",
        "content_id",
        "event_type",
        "position_ms",
        "duration_ms",
        "watched_ms",
        "event_time",
        "device_class",
        "country",
        "purposes",
    }
    assert rec["purposes"]["advertising"] is False  # GPC forces advertising off
    assert rec["user"] == proc.pz.pseudonym("alice") and fx.redacted[0][0] == rec["user"].encode()
    blob = fx.redacted[0][1].decode()
    ids = (sent["session_id"], sent["device_id"], sent["client"]["ip"], sent["client"]["user_agent"])
    for secret in ("alice", *ids, "a@b.example"):
        assert secret not in blob
    assert fx.state  # window state written


def test_dead_letters_keep_source_coordinates_and_never_raw_payload():
    proc = make()
    fx = proc.on_playback(3, 42, b"alice", b"{not json", lambda _: None)
    ((_key, value),) = fx.dlq
    dl = json.loads(value)
    assert dl["reason"] == "invalid_json" and dl["source"]["partition"] == 3 and dl["source"]["offset"] == 42
    assert set(dl) == {"schema", "reason", "detail", "path", "source", "at", "value_bytes"}
    assert dl["schema"] == "dlq.v2" and dl["value_bytes"] == len(b"{not json") and not fx.quarantine
    bad = event(position_ms=-5, search_query="call +49 170 1234567")
    fx = proc.on_playback(
        3, 43, b"alice", enc({"schema": "playback.batch.v1", "events": [bad, event()]}), lambda _: None
    )
    ((_, value),) = fx.dlq
    dl = json.loads(value)
    assert dl["reason"] == "schema_violation"
    assert dl["path"] == "$.events[0].position_ms" and dl["events"] == 2
    assert dl["pseudonym"] == proc.pz.pseudonym("alice")
    assert "search_query" in dl["fields"] and "client.ip" in dl["fields"]
    for value_sent in ("alice", "+49 170 1234567", bad["client"]["ip"], bad["session_id"], "-5"):
        assert value_sent not in value.decode()
    assert proc.counters["received"] == 1  # the good event still went on


def test_key_mismatch_is_dead_lettered():
    proc = make()
    fx = proc.on_playback(0, 0, b"mallory", enc(event()), lambda _: None)
    assert [json.loads(v)["reason"] for _, v in fx.dlq] == ["key_mismatch"]


def test_unknown_schema_and_oversize():
    proc = make(max_message_bytes=2000)
    fx = proc.on_playback(0, 0, b"alice", enc({**event(), "schema": "playback.v9"}), lambda _: None)
    assert json.loads(fx.dlq[0][1])["reason"] == "unknown_schema"
    fx = proc.on_playback(0, 1, b"alice", b"x" * 3000, lambda _: None)
    assert json.loads(fx.dlq[0][1])["reason"] == "oversize"


def test_future_events_are_dead_lettered():
    proc = make()
    fx = proc.on_playback(0, 0, b"alice", enc(event(t=NOW + 2 * 86_400_000)), lambda _: None)
    assert json.loads(fx.dlq[0][1])["reason"] == "future_event_time"


def test_consent_withdrawal_purges_open_windows():
    proc = make()
    c = Consents()
    c.set(proc, "alice", True, True)
    proc.on_playback(0, 0, b"alice", enc(event()), c.get)
    record = consent_record(
        "alice", {"analytics": True, "personalization": False, "advertising": False}, updated_at_ms=NOW
    )
    fx = proc.on_consent(0, 1, b"alice", enc(record))
    assert proc.counters["windows_purged"] == 1
    ((_pseud, value),) = fx.consent
    assert decode_history(value).current == Purposes(True, False, False)
    fx = proc.on_control(0, 2, encode_control(Control(command="close_windows", id="x", at=NOW)))
    assert not fx.interactions


def test_consent_tombstone():
    proc = make()
    fx = proc.on_consent(0, 1, b"alice", None)
    assert fx.consent == [(proc.pz.pseudonym("alice"), None)]


# --- crash semantics --------------------------------------------------------------------


def _stream(n_users=12, events=600, seed=3, late_every=7):
    """Synthetic sessions as envelopes, plus copies of old events re-sent much later (late ones)."""
    ratings = synthetic_ratings(users=n_users, items=15, events_target=events, seed=seed)
    msgs = []
    sent = []
    for i, (user, evs) in enumerate(
        batch_sessions(ratings_to_sessions(ratings, seed=seed), max_hold_ms=SPEC.grace_ms)
    ):
        value = enc(evs[0]) if len(evs) == 1 else enc({"schema": "playback.batch.v1", "events": evs})
        msgs.append(("raw", user.encode(), value))
        sent.append((user, evs[0]))
        if late_every and i % late_every == 0 and len(sent) > 40:
            old_user, old = sent[-40]  # an event from 40 messages ago: its window is usually closed
            msgs.append(("raw", old_user.encode(), enc(old)))
    msgs.append(("ctl", CONTROL_KEY, encode_control(Control(command="close_windows", id="end", at=NOW))))
    return msgs


def _run(proc, msgs, start, table, consents, emitted, crash_after_write=None):
    """Process msgs[start:], applying effects like the agent. Returns False if 'crashed'."""
    writes_done = 0
    for offset in range(start, len(msgs)):
        kind, key, value = msgs[offset]
        fx = (
            proc.on_control(0, offset, value)
            if kind == "ctl"
            else proc.on_playback(0, offset, key, value, consents.get)
        )
        emitted.extend(fx.interactions)  # acknowledged before state writes
        for w in fx.state:
            if crash_after_write is not None and writes_done >= crash_after_write:
                return False
            table[w.key] = w.value
            writes_done += 1
    return True


def _final(emitted):
    by_key = defaultdict(set)
    for _, value in emitted:
        rec = msgspec.json.decode(value)
        by_key[(rec["user"], rec["content_id"], rec["window_start"])].add(value)
    return by_key


def test_crash_at_every_state_write_gives_identical_windows():
    """Crash after every possible state write, restart from several commit points, compare.

    Emissions before a crash count (they were acknowledged); after restart the
    state is whatever prefix of writes reached the changelog, and Faust resumes
    from a committed offset at or before the last applied message.
    """
    msgs = _stream()
    consents = Consents()
    baseline = make()
    for user in {k.decode() for kind, k, _ in msgs if kind == "raw"}:
        consents.set(baseline, user, True, True)
    clean: list = []
    assert _run(baseline, msgs, 0, {}, consents, clean)
    expected = _final(clean)
    assert all(len(v) == 1 for v in expected.values())  # without a crash each window once
    assert len(clean) == len(expected) and baseline.counters["late"] > 0

    crash_at, checked = 0, 0
    while True:
        table: dict = {}
        emitted: list = []
        if _run(make(), msgs, 0, table, consents, emitted, crash_after_write=crash_at):
            break
        processed = max((o for o, _ in _applied_offsets(table)), default=-1)
        for fraction in (0.0, 0.5, 0.95, 1.0):
            committed = int((processed + 1) * fraction)
            t2, e2 = dict(table), list(emitted)
            restarted = make()
            restarted.load(0, [(k, v) for k, v in t2.items() if v is not None])
            assert _run(restarted, msgs, committed, t2, consents, e2)
            got = _final(e2)
            assert got.keys() == expected.keys(), (crash_at, fraction)
            for key, values in got.items():
                assert values == expected[key], (crash_at, fraction, key)  # only identical re-emissions
            checked += 1
        crash_at += 1
    assert checked > 100


def _applied_offsets(table):
    from pipeline.stream.partition import UserEntry

    for key, value in table.items():
        if value is not None and not key.endswith("#meta"):
            yield msgspec.json.decode(value, type=UserEntry).o, key


def test_processor_matches_reference_model():
    """Windows the processor emits equal an independent model of the same semantics."""
    msgs = _stream(n_users=20, events=1500, seed=11)
    proc = make()
    consents = Consents()
    redacted = []
    for user in {k.decode() for kind, k, _ in msgs if kind == "raw"}:
        consents.set(proc, user, True, True)
    emitted: list = []
    for offset, (kind, key, value) in enumerate(msgs):
        if kind == "ctl":
            redacted.append(CLOSE_ALL)
            fx = proc.on_control(0, offset, value)
        else:
            fx = proc.on_playback(0, offset, key, value, consents.get)
            for _, v in fx.redacted:
                rec = json.loads(v)
                redacted.extend(rec.get("events", [rec]))
        emitted.extend(fx.interactions)
    want = expected_interactions(redacted, SPEC)
    got = [msgspec.json.decode(v) for _, v in emitted]
    for g in got:
        g.pop("schema")
    key = lambda r: (r["user"], r["content_id"], r["window_start"])  # noqa: E731
    assert sorted(got, key=key) == sorted(want, key=key)


def test_collapse_writes_drops_only_writes_the_next_one_in_their_partition_overwrites():
    w = StateWrite
    writes = [w("0/a", b"1"), w("0/a", b"2"), w("1/b", b"1"), w("0/c", b"1"), w("0/a", b"3")]
    writes += [w("1/b", b"2"), w("0/a", None)]
    assert collapse_writes(writes) == [w("0/a", b"2"), w("0/c", b"1"), w("1/b", b"2"), w("0/a", None)]


def test_collapse_writes_every_prefix_is_a_prefix_of_each_partitions_writes():
    """What restoring needs: a changelog cut anywhere still holds each partition's state at some message."""
    import random

    rng = random.Random(3)
    for _ in range(200):
        writes = [
            StateWrite(f"{rng.randrange(2)}/{rng.choice('abc')}", rng.choice([b"x", b"y", None]))
            for _ in range(rng.randrange(1, 12))
        ]
        for p in ("0", "1"):
            mine = [x for x in writes if x.key.startswith(p + "/")]
            reachable = [{x.key: x.value for x in mine[:i]} for i in range(len(mine) + 1)]
            out = [x for x in collapse_writes(writes) if x.key.startswith(p + "/")]
            for i in range(len(out) + 1):
                assert {x.key: x.value for x in out[:i]} in reachable
