"""``privrec export`` (Art. 15/20) on the real broker and Redis, against what the stores hold.

A real `privrec worker` runs the stream; one viewer grants consent, watches,
withdraws personalisation, grants it again, watches more (closed windows) and
starts one more title (an open window); the trainer runs in this process;
controls are set. The export, run as a subprocess, must hold exactly what the
trainer's store, the window state, the reader and the consent topic hold for
that viewer, and nothing of anyone else. After ``privrec erase --wait`` the
export of the same viewer shows the erasure and nothing left.
"""

from __future__ import annotations

import json
import stat

import msgspec
import pytest
import redis as redis_lib
from kafka import KafkaAdminClient

from agents.procs import settings_env
from pipeline.kafka.topics import create_topics
from pipeline.keys import pseudonymizer
from pipeline.serving.controls import set_controls
from pipeline.serving.layout import Layout
from pipeline.serving.reader import Reader
from pipeline.sources import consent_record
from tests.cli import privrec
from tests.integration.harness import close_windows, produce, start_trainer, wait_processed
from tests.support.events import playback_event

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HOUR = 3_600_000
T0 = 1_700_000_000_000 - 1_700_000_000_000 % HOUR
USERS = [f"viewer-x{i:02d}" for i in range(12)]  # no id is a substring of another
VIEWER = USERS[3]
GRANT = {"analytics": True, "personalization": True, "advertising": False}
WITHDRAW = {"analytics": True, "personalization": False, "advertising": False}
REGRANT = {"analytics": True, "personalization": True, "advertising": True}


def _plays(user: str, titles: list[str], start: int) -> list[tuple[bytes, bytes]]:
    """One envelope per title: the user plays and completes it, an hour after the previous one."""
    out = []
    for k, title in enumerate(titles):
        events = [
            playback_event(user=user, content=title, t=start + k * HOUR + 60_000, kind=kind, watched=600_000)
            for kind in ("play", "complete")
        ]
        out.append((user.encode(), json.dumps({"schema": "playback.batch.v1", "events": events}).encode()))
    return out


def _consent(user: str, purposes: dict[str, bool]) -> tuple[bytes, bytes]:
    record = consent_record(user, purposes, updated_at_ms=T0 - HOUR)  # before every event; ties: later wins
    return user.encode(), json.dumps(record).encode()


def _export(settings, *args: str) -> dict:
    done = privrec("export", VIEWER, *args, env=settings_env(settings), timeout=90)
    assert done.returncode == 0, done.stderr
    assert VIEWER not in done.stderr  # the raw id is never logged
    return json.loads(done.stdout) if not args else {"stdout": done.stdout}


def _rows(rows: list[dict]) -> set[tuple]:
    fields = ("user", "content_id", "window_start", "window_end", "watched_ms", "plays", "completed")
    return {tuple(r[f] for f in fields) for r in rows}


def _assert_nothing_of_others(text: str, pz) -> None:
    for user in USERS:
        if user != VIEWER:
            assert user not in text
            assert not any(p in text for p in pz.candidates(user))


def _viewer_history(s) -> dict:
    """Consent changes and viewing of VIEWER among everyone else's; returns the open window sent."""
    raw, consent = s.topic("playback.raw"), s.topic("consent")
    wait_processed(s, consent, produce(s, consent, [_consent(u, GRANT) for u in USERS]))
    # hour by hour for everyone, so that no event is late for its partition's watermark
    plays = [_plays(u, [f"t{(i + k) % 12:02d}" for k in range(6)], T0) for i, u in enumerate(USERS)]
    produce(s, raw, [envelopes[k] for k in range(6) for envelopes in plays])
    wait_processed(s, raw, close_windows(s))
    for purposes in (WITHDRAW, REGRANT):  # what was watched before the withdrawal is never held again
        wait_processed(s, consent, produce(s, consent, [_consent(VIEWER, purposes)]))
    produce(s, raw, _plays(VIEWER, ["t09", "t10", "t11"], T0 + 20 * HOUR))
    wait_processed(s, raw, close_windows(s))
    start = T0 + 40 * HOUR
    late = playback_event(
        user=VIEWER, content="t07", t=start + 300_000, kind="play", watched=123_000
    )  # stays open
    wait_processed(s, raw, produce(s, raw, [(VIEWER.encode(), json.dumps(late).encode())]))
    return {"content_id": "t07", "window_start": start, "window_end": start + HOUR, "watched_ms": 123_000}


def _train_once(s):
    from agents.processes.trainer import close_trainer, make_trainer

    trainer = make_trainer(s, commit=False)
    try:
        trainer.catch_up()
        report = trainer.train_and_publish(force=True)
        trainer.finish_erasures()
    finally:
        close_trainer(trainer)
    assert report.published, report.reason
    return trainer


def test_export_is_complete_then_empty_after_erasure(deployment, tmp_path):
    s = deployment
    pz = pseudonymizer(s)
    names = pz.candidates(VIEWER)
    opened = _viewer_history(s)
    trainer = _train_once(s)
    client = redis_lib.Redis.from_url(s.redis.url.get_secret_value())
    layout = Layout.from_settings(s)
    set_controls(client, layout, names, hide=["t01", "t00"])

    doc = _export(s)
    text = json.dumps(doc)
    assert doc["schema"] == "export.v1" and doc["user_id"] == VIEWER and doc["pseudonyms"] == names
    # another spelling of the id (case, surrounding whitespace) finds the same data: canonical user ids
    done = privrec("export", f"  {VIEWER.upper()}\t", env=settings_env(s), timeout=90)
    assert done.returncode == 0, done.stderr
    other = json.loads(done.stdout)
    for section in (
        "user_id",
        "pseudonyms",
        "consent",
        "erasure",
        "interactions",
        "open_windows",
        "controls",
    ):
        assert other[section] == doc[section], section

    # interactions: exactly the trainer's rows; the windows before the withdrawal are on the topic, not held
    held = doc["interactions"]["held"]
    assert _rows(held) == _rows(trainer.store.records(names[0])) != set()
    assert {r["content_id"] for r in held} == {"t09", "t10", "t11"}
    assert doc["interactions"]["refused"] == {"withdrawn": 6}
    assert doc["interactions"]["records_on_topic"] == 9

    # open windows: the one event sent after the last close
    assert [{k: w[k] for k in opened} for w in doc["open_windows"]] == [opened]
    assert doc["open_windows"][0] | {"plays": 1, "completed": False, "events": 1} == doc["open_windows"][0]
    assert doc["open_windows"][0]["pseudonym"] == names[0]

    # recommendations and controls: what the reader serves, with the controls set above
    n = doc["sources"]["recommendations"]["n"]
    assert doc["recommendations"] == json.loads(
        msgspec.json.encode(Reader(client, pz, layout).get(VIEWER, n))
    )
    assert doc["recommendations"]["personalized"] and doc["recommendations"]["user"] == names[0]
    assert not {"t00", "t01"} & {i["content_id"] for i in doc["recommendations"]["items"]}
    assert doc["controls"] == {"personalization": "full", "hidden": ["t00", "t01"]}

    # consent: every update in the order sent, the last one current; the workers' copy agrees
    history = doc["consent"]["history"]
    assert [h["record"]["purposes"] for h in history] == [GRANT, WITHDRAW, REGRANT]
    assert [h["timestamp"] for h in history] == sorted(h["timestamp"] for h in history)
    assert doc["consent"]["current"]["purposes"] == REGRANT and "compact" in doc["consent"]["note"]
    assert [e["purposes"] for e in doc["consent"]["stream_table"]] == [REGRANT]
    assert doc["erasure"] == {"requests": [], "stages": [], "receipts": [], "status": []}
    _assert_nothing_of_others(text, pz)

    # erasure (the trainer runs continuously to do its part), then the same viewer's export
    _, finish = start_trainer(s)
    try:
        done = privrec(
            "erase", VIEWER, "--wait", "--json", "--timeout", "60", env=settings_env(s), timeout=90
        )
        assert done.returncode == 0, done.stderr
    finally:
        finish()
    receipt = json.loads(done.stdout)
    out = tmp_path / "export.json"
    printed = _export(s, "--out", str(out))["stdout"]
    assert VIEWER not in printed and str(out) in printed
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    after = json.loads(out.read_text())
    assert after["interactions"]["held"] == [] and after["open_windows"] == []
    assert after["recommendations"]["personalized"] is False and after["recommendations"]["user"] is None
    assert after["controls"] == {"personalization": "full", "hidden": []}
    assert after["consent"]["current"] is None and after["consent"]["history"][-1]["tombstone"] is True
    assert after["consent"]["stream_table"] == []
    erasure = after["erasure"]
    assert [r["request_id"] for r in erasure["requests"]] == [receipt["request_id"]]
    assert {st["stage"] for st in erasure["stages"]} == {"stream", "trainer", "cache"}
    assert [r["request_id"] for r in erasure["receipts"]] == [receipt["request_id"]]
    assert erasure["receipts"][0]["stages"] == receipt["stages"]
    assert erasure["status"][0]["state"] == "complete"
    _assert_nothing_of_others(out.read_text(), pz)


def test_export_of_an_unknown_viewer_before_any_worker_ran(make_settings, kafka_bootstrap):
    """No records, no changelog topics yet, nothing published: an empty export, not an error."""
    s = make_settings(partitions=2)
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    create_topics(admin, s)
    admin.close()
    doc = _export(s)
    assert doc["consent"]["current"] is None and doc["consent"]["history"] == []
    assert doc["consent"]["status"] == "no consent record: every purpose is denied by default"
    assert doc["interactions"]["held"] == [] and doc["interactions"]["records_on_topic"] == 0
    assert doc["open_windows"] == [] and doc["sources"]["open_windows"]["exists"] is False
    assert doc["recommendations"]["source"] == "none" and doc["recommendations"]["items"] == []
    assert doc["controls"] == {"personalization": "full", "hidden": []}
    assert doc["erasure"]["requests"] == []
