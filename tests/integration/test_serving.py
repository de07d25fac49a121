"""The recommendation cache on a real Redis: publish, atomic switch, controls, rotation, erasure,
readers (sync, async, HTTP) and `privrec recs` through the real command line."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import redis
import redis.asyncio as aredis

from pipeline.privacy.pseudonym import Pseudonymizer
from pipeline.recs.types import Recommendation, UserRecs
from pipeline.serving import (
    AsyncReader,
    Layout,
    Reader,
    VersionExists,
    delete_user,
    get_controls,
    live_meta,
    live_version,
    publish,
    publish_user,
    set_controls,
)
from tests.cli import privrec
from tests.support.serving import KEY_NEW, KEY_OLD, PZ, TTL, cli_env, popular, publish_version, user_recs

pytestmark = pytest.mark.integration


@pytest.fixture
def layout(client: redis.Redis) -> Iterator[Layout]:
    lay = Layout(f"privrec-test:{uuid.uuid4().hex[:12]}")
    yield lay
    keys = list(client.scan_iter(match=lay.all_pattern(), count=1000))
    if keys:
        client.unlink(*keys)


def all_keys(client: redis.Redis) -> list[bytes]:
    return list(client.scan_iter(match="*", count=1000))


def ids(resp) -> list[str]:
    return [i.content_id for i in resp.items]


# -- publish ---------------------------------------------------------------------------------


def test_nothing_published_is_source_none(client, layout):
    resp = Reader(client, PZ, layout).get("alice")
    assert resp.source == "none" and resp.items == [] and resp.version is None and resp.user is None


def test_publish_then_read(client, layout):
    result = publish_version(client, layout, "v1", ["alice", "bob"])
    assert result.users == 2 and result.previous is None
    assert live_version(client, layout) == "v1"
    assert live_meta(client, layout) == {"version": "v1"}
    reader = Reader(client, PZ, layout)
    resp = reader.get("alice", n=3)
    assert resp.source == "full" and resp.personalized and resp.version == "v1"
    assert resp.user == PZ.pseudonym("alice")
    assert ids(resp) == [f"v1-alice-f{i}" for i in range(3)]
    cold = reader.get("carol", n=3)
    assert cold.source == "popular" and not cold.personalized and cold.user is None
    assert ids(cold) == ["v1-p0", "v1-p1", "v1-p2"]


def test_no_key_holds_a_raw_user_id(client, layout):
    publish_version(client, layout, "v1", ["raw-user-alice"])
    set_controls(client, layout, PZ.candidates("raw-user-alice"), hide=["x"])
    keys = list(client.scan_iter(match=layout.all_pattern()))
    assert keys and not [k for k in keys if b"raw-user-alice" in k]


def test_atomic_switch_never_mixes_versions(client, layout):
    users = [f"u{i}" for i in range(3000)]
    publish_version(client, layout, "v1", users)
    reader = Reader(client, PZ, layout)
    watched = users[::50]
    seen: list = []
    problems: list[str] = []
    done = threading.Event()

    def poll() -> None:
        while not done.is_set() or len(seen) < 50:
            batch = reader.get_many(watched, n=5)
            single = reader.get(watched[len(seen) % len(watched)], n=5)
            for user, resp in [*batch.items(), (None, single)]:
                seen.append(resp.version)
                if not resp.personalized or resp.source != "full":
                    problems.append(f"{user}: not personalised ({resp.source})")
                if any(not c.startswith(f"{resp.version}-") for c in ids(resp)):
                    problems.append(f"{user}: items not from {resp.version}: {ids(resp)}")
            if len({r.version for r in batch.values()}) != 1:
                problems.append("one batch call saw two versions")

    thread = threading.Thread(target=poll)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not seen:  # the poller has read v1 before the publish starts
            assert time.monotonic() < deadline, "reader thread produced nothing"
            time.sleep(0.005)
        result = publish_version(client, layout, "v2", users)
    finally:
        done.set()
        thread.join(30)
    assert result.previous == "v1"
    assert not problems, problems[:5]
    assert set(seen) == {"v1", "v2"}
    assert seen[-1] == "v2"


def test_ttl_on_per_user_keys_and_not_on_version_keys(client, layout):
    publish_version(client, layout, "v1", ["alice", "bob"])
    for user in ["alice", "bob"]:
        assert 0 < client.ttl(layout.user("v1", PZ.pseudonym(user))) <= TTL
    assert client.ttl(layout.popular("v1")) == -1  # persisted at the switch
    assert client.ttl(layout.meta("v1")) == -1
    assert client.ttl(layout.live) == -1


def test_publish_user_refreshes_one_user_in_a_published_version(client, layout):
    publish_version(client, layout, "v1", ["alice"])
    pseudonym = PZ.pseudonym("alice")
    client.expire(layout.user("v1", pseudonym), 5)
    refreshed = UserRecs(full=[Recommendation(content_id="v1-fresh", score=1.0)])
    assert publish_user(client, layout, "v1", pseudonym, refreshed, TTL)
    assert client.ttl(layout.user("v1", pseudonym)) > 5
    assert ids(Reader(client, PZ, layout).get("alice", n=1)) == ["v1-fresh"]
    # a refresh against a version that is gone writes nothing
    assert not publish_user(client, layout, "v0", pseudonym, refreshed, TTL)
    assert client.exists(layout.user("v0", pseudonym)) == 0


def test_old_versions_cleaned_up_keeping_two(client, layout):
    users = [f"u{i}" for i in range(50)]
    results = [publish_version(client, layout, f"v{i}", users) for i in range(1, 5)]
    assert results[2].removed_versions == ("v1",) and results[2].removed_keys == 52
    assert results[3].removed_versions == ("v2",)
    assert {v.decode() for v in client.zrange(layout.versions, 0, -1)} == {"v3", "v4"}
    versions_left = {k.split(b":")[3] for k in client.scan_iter(match=layout.recs_prefix + "*:*")}
    assert versions_left == {b"v3", b"v4"}
    assert client.zcard(layout.pending) == 0
    assert Reader(client, PZ, layout).get("u1").version == "v4"


def test_a_version_is_published_once(client, layout):
    publish_version(client, layout, "v1", ["alice"])
    with pytest.raises(VersionExists):
        publish_version(client, layout, "v1", ["alice"])


def test_publish_refuses_raw_ids_as_keys(client, layout):
    with pytest.raises(ValueError):
        publish(client, layout, "v1", {"alice": user_recs("v1", "alice")}, [], {}, TTL)
    assert not list(client.scan_iter(match=layout.all_pattern()))


# -- controls --------------------------------------------------------------------------------


def test_hidden_titles_never_served(client, layout):
    publish_version(client, layout, "v1", ["alice"])
    reader = Reader(client, PZ, layout)
    hide = ["v1-alice-f0", "v1-alice-f2", "v1-alice-l1", "v1-p0", "v1-p1"]
    controls = set_controls(client, layout, PZ.candidates("alice"), hide=hide)
    assert controls.hidden == frozenset(hide)
    resp = reader.get("alice", n=40)  # 20 personal + fill from popular
    assert not set(hide) & set(ids(resp)) and len(resp.items) == 40
    assert ids(resp)[:3] == ["v1-alice-f1", "v1-alice-f3", "v1-alice-f4"]
    for mode in ["limited", "off"]:
        set_controls(client, layout, PZ.candidates("alice"), personalization=mode)
        assert not set(hide) & set(ids(reader.get("alice", n=40)))
    # a cold-start user who hid a popular title
    set_controls(client, layout, PZ.candidates("nobody"), hide=["v1-p0"])
    cold = reader.get("nobody", n=3)
    assert ids(cold) == ["v1-p1", "v1-p2", "v1-p3"] and cold.user == PZ.pseudonym("nobody")


def test_off_gives_the_popular_list(client, layout):
    publish_version(client, layout, "v1", ["alice"])
    set_controls(client, layout, PZ.candidates("alice"), personalization="off")
    resp = Reader(client, PZ, layout).get("alice", n=3)
    assert resp.personalized is False and resp.source == "popular"
    assert ids(resp) == ["v1-p0", "v1-p1", "v1-p2"]


def test_limited_gives_the_limited_list(client, layout):
    publish_version(client, layout, "v1", ["alice"])
    set_controls(client, layout, PZ.candidates("alice"), personalization="limited")
    resp = Reader(client, PZ, layout).get("alice", n=7)
    assert resp.personalized and resp.source == "limited"
    assert ids(resp) == [f"v1-alice-l{i}" for i in range(5)] + ["v1-p0", "v1-p1"]


def test_controls_round_trip_and_defaults_leave_no_hash(client, layout):
    cands = PZ.candidates("alice")
    set_controls(client, layout, cands, personalization="limited", hide=["a", "b"])
    assert get_controls(client, layout, cands).hidden == {"a", "b"}
    after = set_controls(client, layout, cands, unhide=["a"])
    assert after.personalization == "limited" and after.hidden == {"b"}
    set_controls(client, layout, cands, personalization="full", unhide=["b"])
    assert client.exists(layout.controls(cands[0])) == 0
    assert get_controls(client, layout, cands).personalization == "full"


# -- key rotation ----------------------------------------------------------------------------


def test_entries_under_the_old_key_found_after_rotation(client, layout):
    publish_version(client, layout, "v1", ["alice"], pz=PZ)
    set_controls(client, layout, PZ.candidates("alice"), hide=["v1-alice-f0"])
    rotated = Pseudonymizer([KEY_OLD, KEY_NEW])
    old, new = PZ.pseudonym("alice"), rotated.pseudonym("alice")
    assert rotated.candidates("alice") == [new, old] and new.startswith("k2.")

    reader = Reader(client, rotated, layout)
    resp = reader.get("alice", n=2)
    assert resp.user == old and resp.source == "full"
    assert ids(resp) == ["v1-alice-f1", "v1-alice-f2"]  # old controls apply too

    # new writes use the newest key; the old controls move there
    set_controls(client, layout, rotated.candidates("alice"), personalization="limited")
    assert client.exists(layout.controls(old)) == 0
    assert get_controls(client, layout, [new]).hidden == {"v1-alice-f0"}
    publish_version(client, layout, "v2", ["alice"], pz=rotated)
    assert client.exists(layout.user("v2", new)) == 1 and client.exists(layout.user("v2", old)) == 0
    resp = reader.get("alice", n=2)
    assert resp.user == new and resp.source == "limited" and resp.version == "v2"


def test_newest_pseudonym_wins_when_both_exist(client, layout):
    rotated = Pseudonymizer([KEY_OLD, KEY_NEW])
    old, new = PZ.pseudonym("alice"), rotated.pseudonym("alice")
    recs = {old: user_recs("v1", "old"), new: user_recs("v1", "new")}
    publish(client, layout, "v1", recs, popular("v1"), {}, TTL)
    resp = Reader(client, rotated, layout).get("alice", n=1)
    assert resp.user == new and ids(resp) == ["v1-new-f0"]


# -- erasure ---------------------------------------------------------------------------------


def test_delete_user_leaves_no_key_with_the_pseudonym(client, layout):
    rotated = Pseudonymizer([KEY_OLD, KEY_NEW])
    publish_version(client, layout, "v1", ["alice", "bob"], pz=PZ)
    publish_version(client, layout, "v2", ["alice", "bob"], pz=rotated)
    set_controls(client, layout, PZ.candidates("alice"), hide=["x"])
    # a version being written (not switched yet) holds the user too
    client.zadd(layout.pending, {"v3": int(time.time() * 1000)})
    client.set(layout.user("v3", rotated.pseudonym("alice")), b"\x80", ex=TTL)

    candidates = rotated.candidates("alice")
    assert delete_user(client, layout, candidates) == 4  # v1 (old), v2 (new), v3 (new), controls
    leftovers = [k for k in all_keys(client) if any(p.encode() in k for p in candidates)]
    assert leftovers == []
    assert Reader(client, rotated, layout).get("alice").source == "popular"
    assert Reader(client, rotated, layout).get("bob").source == "full"
    assert delete_user(client, layout, candidates) == 0


# -- readers ---------------------------------------------------------------------------------


def test_get_many_matches_get(client, layout):
    users = [f"u{i}" for i in range(600)]
    publish_version(client, layout, "v1", users[:500])
    for u in users[::7]:
        set_controls(client, layout, PZ.candidates(u), personalization="limited", hide=[f"v1-{u}-l0"])
    reader = Reader(client, PZ, layout, batch_users=64)
    many = reader.get_many(users + users[:3], n=4)
    assert list(many) == users
    assert all(many[u] == reader.get(u, n=4) for u in users)


def test_reader_reloads_a_flushed_script(client, layout):
    publish_version(client, layout, "v1", ["alice"])
    reader = Reader(client, PZ, layout)
    assert reader.get("alice").source == "full"
    client.script_flush()
    assert reader.get("alice").source == "full"
    client.script_flush()
    assert reader.get_many(["alice"])["alice"].source == "full"


def test_corrupt_entry_is_served_as_absent(client, layout):
    publish_version(client, layout, "v1", ["alice"])
    client.set(layout.user("v1", PZ.pseudonym("alice")), b"\xc1 not msgpack", ex=TTL)
    resp = Reader(client, PZ, layout).get("alice", n=2)
    assert resp.source == "popular" and ids(resp) == ["v1-p0", "v1-p1"]


def test_reader_bad_n(client, layout):
    reader = Reader(client, PZ, layout)
    for n in [0, -1, 501, True]:
        with pytest.raises(ValueError):
            reader.get("alice", n=n)


def test_unreachable_redis_is_service_unavailable(layout):
    from pipeline.errors import ServiceUnavailable

    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=1)
    with pytest.raises(ServiceUnavailable):
        Reader(dead, PZ, layout).get("alice")


def test_async_reader_equals_sync_reader(client, layout, redis_url):
    users = [f"u{i}" for i in range(40)]
    publish_version(client, layout, "v1", users[:30])
    set_controls(client, layout, PZ.candidates("u1"), personalization="off")
    set_controls(client, layout, PZ.candidates("u2"), personalization="limited", hide=["v1-u2-l3"])
    set_controls(client, layout, PZ.candidates("u35"), hide=["v1-p1"])
    sync = Reader(client, PZ, layout)

    async def read_async():
        ac = aredis.Redis.from_url(redis_url)
        try:
            reader = AsyncReader(ac, PZ, layout, batch_users=16)
            singles = {u: await reader.get(u, n=6) for u in users}
            return singles, await reader.get_many(users, n=6)
        finally:
            await ac.aclose()

    singles, many = asyncio.run(read_async())
    expected = sync.get_many(users, n=6)
    assert singles == expected and many == expected
    assert {expected[u].source for u in users} == {"full", "limited", "popular"}


# -- HTTP ------------------------------------------------------------------------------------


# -- command line ----------------------------------------------------------------------------


def test_cli_recs_and_controls(client, redis_url, tmp_path):
    app_id = f"privrec-test-{uuid.uuid4().hex[:8]}"
    layout = Layout(f"privrec:{app_id}")
    env = cli_env(redis_url, app_id, tmp_path)
    try:
        empty = privrec("recs", "alice", "--json", env=env)
        assert empty.returncode == 0, empty.stderr
        assert json.loads(empty.stdout)["alice"]["source"] == "none"
        assert json.loads(empty.stdout)["alice"]["status"] == "none"

        publish_version(client, layout, "v1", ["alice", "bob"])
        users_file = tmp_path / "users.txt"
        users_file.write_text("bob\n\n# comment\ncarol\n")
        done = privrec("recs", "alice", "--users-file", str(users_file), "--n", "2", "--json", env=env)
        assert done.returncode == 0, done.stderr
        body = json.loads(done.stdout)
        assert list(body) == ["alice", "bob", "carol"]
        assert body["alice"]["source"] == "full" and body["alice"]["version"] == "v1"
        assert [i["content_id"] for i in body["alice"]["items"]] == ["v1-alice-f0", "v1-alice-f1"]
        assert body["carol"]["status"] == "unknown" and body["carol"]["user"] is None  # no silent list
        assert body["carol"]["items"] == []
        expected = Reader(client, PZ, layout).get_many(["alice", "bob", "carol"], n=2)
        for user in ("alice", "bob"):
            assert body[user]["status"] == "personalized"
            assert [(i["content_id"], i["score"], i["because"]) for i in body[user]["items"]] == [
                (r.content_id, r.score, list(r.because)) for r in expected[user].items
            ]

        shown = privrec("controls", "alice", "--personalization", "off", "--hide", "v1-p0", "--show", env=env)
        assert shown.returncode == 0, shown.stderr
        assert json.loads(shown.stdout) == {"personalization": "off", "hidden": ["v1-p0"]}
        after = json.loads(privrec("recs", "alice", "--n", "1", "--json", env=env).stdout)["alice"]
        assert after["personalized"] is False and after["items"][0]["content_id"] == "v1-p1"
        assert after["status"] == "popular" and after["items"][0]["score_kind"] == "viewers"

        text = privrec("recs", "bob", "--n", "1", env=env)
        assert text.returncode == 0 and "v1-bob-f0" in text.stdout
        assert "personalized (full list)" in text.stdout
    finally:
        keys = list(client.scan_iter(match=layout.all_pattern()))
        if keys:
            client.unlink(*keys)


def test_cli_errors_are_one_line(redis_url, tmp_path):
    env = cli_env("redis://127.0.0.1:1/0", "privrec-test-x", tmp_path)
    down = privrec("recs", "alice", env=env)
    assert down.returncode == 2
    assert down.stderr.startswith("privrec: error: redis") and len(down.stderr.strip().splitlines()) == 1
    bad_n = privrec("recs", "alice", "--n", "0", env=env)
    assert bad_n.returncode == 2 and "--n" in bad_n.stderr
    nobody = privrec("recs", env=cli_env(redis_url, "privrec-test-x", tmp_path))
    assert nobody.returncode == 2 and "at least one USER" in nobody.stderr
