"""Erasure (Art. 17) and withdrawal (Art. 21) on the real broker and Redis.

A real `privrec worker` runs the stream; the trainer runs in this process (in a
thread, so its matrix and id maps can be inspected); `privrec erase --wait`
runs as a subprocess. After the receipt no trace of the user may be found in
Redis (every key and string value), in the window-state changelog, in the
trainer's matrix or id maps, in saved models, or in records produced later;
everyone else's recommendations stay.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import redis as redis_lib

from agents.procs import settings_env
from pipeline.keys import pseudonymizer
from pipeline.recs.artefact import load_model
from pipeline.serving.layout import Layout
from pipeline.serving.publish import live_version
from pipeline.serving.reader import Reader
from pipeline.sources import consent_record
from tests.cli import privrec
from tests.integration.harness import (
    close_windows,
    produce,
    read_all,
    start_trainer,
    wait_for,
    wait_processed,
)
from tests.support.events import playback_event

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HOUR = 3_600_000
T0 = 1_700_000_000_000 - 1_700_000_000_000 % HOUR


def _history(users: list[str], titles: int = 12) -> list[tuple[bytes, bytes]]:
    """Each user watches 6 titles from a window of the catalogue that depends on the user."""
    out = []
    for i, user in enumerate(users):
        events = [
            playback_event(
                user=user,
                content=f"t{(i + k) % titles:02d}",
                t=T0 + k * HOUR + 60_000,
                kind=kind,
                watched=600_000,
            )
            for k in range(6)
            for kind in ("play", "complete")
        ]
        out.append((user.encode(), json.dumps({"schema": "playback.batch.v1", "events": events}).encode()))
    return out


def _consents(users: list[str], personalization: bool = True) -> list[tuple[bytes, bytes]]:
    purposes = {"analytics": True, "personalization": personalization, "advertising": False}
    at = T0 - HOUR  # before every event: consent is judged at event time too
    return [(u.encode(), json.dumps(consent_record(u, purposes, updated_at_ms=at)).encode()) for u in users]


def _latest_by_key(settings, topic: str) -> dict[bytes, bytes | None]:
    latest: dict[bytes, bytes | None] = {}
    for key, value in read_all(settings, topic, quiet_s=1.0):
        if key is not None:
            latest[key] = value
    return latest


def _count_keyed(settings, topic: str, names: list[str]) -> int:
    keys = {n.encode() for n in names}
    return sum(k in keys for k, _ in read_all(settings, topic, quiet_s=0.5))


def _redis_mentions(client: redis_lib.Redis, needles: list[str]) -> list[str]:
    """Keys whose name or (string) value contains any needle."""
    found = []
    for key in client.scan_iter(count=1000):
        name = key.decode()
        if any(n in name for n in needles):
            found.append(name)
            continue
        if client.type(key) == b"string":
            value = client.get(key) or b""
            if any(n.encode() in value for n in needles):
                found.append(name)
    return found


def test_erasure_leaves_no_trace_and_keeps_everyone_else(deployment):
    s = deployment
    pz = pseudonymizer(s)
    users = [f"viewer-{i:02d}" for i in range(24)]
    victim, others = users[3], [u for u in users if u != users[3]]
    names = pz.candidates(victim)
    raw_topic = s.topic("playback.raw")

    wait_processed(s, s.topic("consent"), produce(s, s.topic("consent"), _consents(users)))
    produce(s, raw_topic, _history(users))
    wait_processed(s, raw_topic, close_windows(s))

    client = redis_lib.Redis.from_url(s.redis.url.get_secret_value())
    layout = Layout.from_settings(s)
    reader = Reader(client, pz, layout)
    trainer, finish = start_trainer(s)
    try:
        try:
            wait_for(
                lambda: trainer.errors or (live_version(client, layout) and trainer.model is not None),
                120,
                "a published model the trainer holds",
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}; trainer counters {trainer.counters}") from None
        assert not trainer.errors
        first_version = live_version(client, layout)
        assert names[0] in trainer.model.user_ids
        wait_for(lambda: reader.get(victim).personalized, 30, "the victim's recommendations")

        # the victim keeps watching: open windows in the worker's state
        late = [playback_event(user=victim, content="t05", t=T0 + 30 * HOUR, kind="play", watched=600_000)]
        wait_processed(s, raw_topic, produce(s, raw_topic, [(victim.encode(), json.dumps(late[0]).encode())]))
        changelog = f"{s.app_id}-windows-changelog"
        victim_keys = [k for k, v in _latest_by_key(s, changelog).items() if v and names[0].encode() in k]
        assert victim_keys, "the victim's open window should be in the window state before erasure"

        before = {u: reader.get(u, 10) for u in others}
        assert all(r.personalized for r in before.values())

        t_request = time.monotonic()
        done = privrec(
            "erase", victim, "--wait", "--json", "--timeout", "60", env=settings_env(s), timeout=90
        )
        took = time.monotonic() - t_request
        assert done.returncode == 0, done.stderr
        receipt = json.loads(done.stdout)
        assert receipt["pseudonym"] == names[0]
        assert set(receipt["stages"]) == {"stream", "trainer", "cache"}
        assert receipt["requested_at"] <= min(receipt["stages"].values())
        assert max(receipt["stages"].values()) <= receipt["completed_at"]
        assert victim not in done.stdout  # the raw id never appears in a receipt
        model_until = next(r["until"] for r in receipt["remains"] if "item factors" in r["what"])
        listed = privrec("receipts", "--json", env=settings_env(s))  # the trainer also wrote the ledger
        row = next(r for r in json.loads(listed.stdout) if r["request_id"] == receipt["request_id"])
        assert row["complete"] and row["sources"] == ["broker", "ledger"]
        print(f"erase --wait took {took:.2f} s")

        # Redis: no key and no string value mentions any of the victim's pseudonyms
        assert _redis_mentions(client, names) == []
        assert reader.get(victim).personalized is False
        # window state: the victim's entries are tombstoned in the changelog
        latest = _latest_by_key(s, changelog)
        assert all(latest.get(k) is None for k in victim_keys)
        # the consent record is tombstoned
        assert _latest_by_key(s, s.topic("consent")).get(victim.encode(), b"x") is None
        # everyone else keeps their recommendations
        after = {u: reader.get(u, 10) for u in others}
        assert all(r.personalized for r in after.values())
        if live_version(client, layout) == first_version:
            assert after == before

        # events after the erasure reach nothing downstream (no consent any more)
        victim_rows = _count_keyed(s, s.topic("interactions"), names)
        victim_redacted = _count_keyed(s, s.topic("playback.redacted"), names)
        more = _history([victim])
        produce(s, raw_topic, more)
        wait_processed(s, raw_topic, close_windows(s))
        assert _count_keyed(s, s.topic("interactions"), names) == victim_rows
        assert _count_keyed(s, s.topic("playback.redacted"), names) == victim_redacted

        # the receipt's "until" holds: a full retrain without the victim replaces the model by then
        wait_for(
            lambda: live_version(client, layout) != first_version,
            max(5.0, model_until / 1000 - time.time() + 5),
            "the retrain that drops the erased user's data",
            interval=0.5,
        )
        assert time.time() * 1000 <= model_until
    finally:
        finish()

    assert names[0] not in trainer.store.users()
    assert names[0] not in trainer.model.user_ids
    saved = [p for p in trainer.artefacts.iterdir() if not p.name.startswith(".")]
    assert [p.name for p in saved] == [trainer.model.version]  # older artefacts (with the victim) are gone
    model = load_model(saved[0])
    assert names[0] not in model.user_ids
    assert model.n_users == len(others)
    assert np.isfinite(model.item_factors).all()
    assert trainer.counters.get("receipts") == 1

    # a fresh trainer rebuilding from the topics never re-admits the erased data, nor re-issues the receipt
    from agents.processes.trainer import close_trainer, make_trainer

    rebuilt = make_trainer(s)
    try:
        rebuilt.catch_up()
        assert not set(names) & set(rebuilt.store.users())
        assert set(rebuilt.store.users()) == {pz.pseudonym(u) for u in others}
        assert rebuilt.counters["interactions_refused_no_personalization"] > 0
        assert rebuilt.finish_erasures() == []
    finally:
        close_trainer(rebuilt)

    # consent given again after the erasure: a new profile starts; nothing from before comes back
    wait_processed(s, s.topic("consent"), produce(s, s.topic("consent"), _consents([victim])))
    fresh = playback_event(user=victim, content="t11", t=T0 + 40 * HOUR, kind="play", watched=600_000)
    produce(s, raw_topic, [(victim.encode(), json.dumps(fresh).encode())])
    wait_processed(s, raw_topic, close_windows(s))
    rebuilt = make_trainer(s)
    try:
        rebuilt.catch_up()
        rows = rebuilt.store.records(names[0])
        assert [(r["content_id"], r["window_start"]) for r in rows] == [("t11", T0 + 40 * HOUR)]
        assert rebuilt.counters["interactions_refused_erased"] == 6  # the pre-erasure windows
    finally:
        close_trainer(rebuilt)
