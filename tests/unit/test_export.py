"""The data export (Art. 15/20) without Kafka: selection, decoding, ordering, the trainer's rules."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import msgspec
import pytest

from pipeline.files import write_private
from pipeline.privacy.pseudonym import Pseudonymizer, PseudonymKey
from pipeline.rights.export import (
    DENIED_BY_DEFAULT,
    SCHEMA,
    Selector,
    assemble,
    consent_section,
    erasure_section,
    interactions_section,
    latest_by_key,
    open_windows,
    render,
    stream_consent,
)
from pipeline.settings import Settings
from pipeline.sources import consent_record
from pipeline.stream.partition import UserEntry
from pipeline.wire import encode
from pipeline.wire.outbound import Interaction
from pipeline.wire.rights import ErasureRequest, ErasureStage, Receipt
from tests.support.records import Rec
from tests.support.stream import SPEC, Consents, enc, event, make

OLD, NEW = PseudonymKey("k1", b"0123456789abcdef0123"), PseudonymKey("k2", b"abcdefghijabcdefghij")
PZ = Pseudonymizer([OLD, NEW])
ALICE = PZ.candidates("alice")  # newest key first
BOB = PZ.candidates("bob")
RID = "0123456789abcdef0123456789abcdef"
HOUR = 3_600_000
T0 = 1_700_000_000_000 - 1_700_000_000_000 % HOUR


def consent(user: str, personalization: bool = True, advertising: bool = False, at: int = T0) -> bytes:
    purposes = {"analytics": True, "personalization": personalization, "advertising": advertising}
    return json.dumps(consent_record(user, purposes, updated_at_ms=at)).encode()


def interaction(user: str, content: str, start: int, watched: int = 60_000) -> bytes:
    row = Interaction(
        user=user,
        content_id=content,
        window_start=start,
        window_end=start + HOUR,
        watched_ms=watched,
        plays=1,
        completed=False,
        events=2,
    )
    return encode(row)


# -- selection ---------------------------------------------------------------------------------


def test_selector_matches_the_viewer_by_id_pseudonym_stage_and_changelog_key():
    s = Selector("alice", ALICE)
    assert s.by_user_id(b"alice") and not s.by_user_id(b"alice2") and not s.by_user_id(None)
    assert all(s.by_pseudonym(p.encode()) for p in ALICE) and not s.by_pseudonym(BOB[0].encode())
    assert s.interaction(ALICE[1].encode(), b"{}")
    assert s.interaction(b"other", interaction(ALICE[0], "c1", T0))  # judged by the value's user later
    assert not s.interaction(BOB[0].encode(), interaction(BOB[0], "c1", T0))
    mine = ErasureStage(request_id=RID, pseudonym=ALICE[1], stage="stream", requested_at=1, finished_at=2)
    theirs = ErasureStage(request_id=RID, pseudonym=BOB[0], stage="stream", requested_at=1, finished_at=2)
    assert s.stage(encode(mine)) == mine
    assert s.stage(encode(theirs)) is None and s.stage(b"{not json") is None and s.stage(None) is None
    assert s.changelog_key(f"3/{ALICE[0]}".encode()) == (3, ALICE[0])
    assert s.changelog_key(f"3/{BOB[0]}".encode()) is None
    assert s.changelog_key(b"3/#meta") is None
    assert s.changelog_key(b"\xff/x") is None and s.changelog_key(b"nonsense") is None


def test_latest_by_key_follows_log_order_and_keeps_tombstones():
    records = [
        Rec("t", 1, 7, 0, b"a", None),
        Rec("t", 1, 2, 0, b"a", b"old"),
        Rec("t", 0, 5, 0, b"b", b"b2"),
        Rec("t", 0, 1, 0, b"b", b"b1"),
        Rec("t", 0, 3, 0, b"x", b"not kept"),
    ]
    assert latest_by_key(records, lambda k: k in (b"a", b"b")) == {b"a": None, b"b": b"b2"}


# -- consent -----------------------------------------------------------------------------------


def test_consent_history_is_in_log_order_and_the_last_record_is_current():
    values = [consent("alice", True, False, T0), consent("alice", False, False, T0 + 1), None]
    values.insert(2, consent("alice", True, True, T0 + 2))
    records = [Rec("consent", 0, 10 + i, T0 + i, b"alice", v) for i, v in enumerate(values)]
    section = consent_section(list(reversed(records)))
    history = section["history"]
    assert [h["offset"] for h in history] == [10, 11, 12, 13]
    assert [h["timestamp"] for h in history] == [T0, T0 + 1, T0 + 2, T0 + 3]
    assert [h["record"]["purposes"]["personalization"] for h in history[:3]] == [True, False, True]
    assert history[3] == history[3] | {"record": None, "tombstone": True}
    assert section["current"] is None and section["purposes"] is None
    assert section["status"] == DENIED_BY_DEFAULT
    assert "compact" in section["note"]

    granted = consent_section(records[:3])
    assert granted["current"]["purposes"] == {"analytics": True, "personalization": True, "advertising": True}
    assert granted["status"] == "recorded"


def test_an_invalid_consent_record_is_listed_but_changes_nothing():
    records = [
        Rec("consent", 0, 0, T0, b"alice", consent("alice")),
        Rec("consent", 0, 1, T0 + 1, b"alice", b'{"schema": "consent.v1"}'),
    ]
    section = consent_section(records)
    assert section["history"][1]["invalid"] and section["history"][1]["record"] is None
    assert section["current"]["purposes"]["personalization"] is True
    assert consent_section([])["status"] == DENIED_BY_DEFAULT and consent_section([])["history"] == []


def test_stream_consent_table_entries_are_decoded():
    """The first encoding ``[a, p, d, updated_at]`` still reads, as a history of unknown past."""
    latest = {ALICE[0].encode(): b"[true,true,false,123]", ALICE[1].encode(): None, b"x": b"garbage"}
    purposes = {"analytics": True, "personalization": True, "advertising": False}
    assert stream_consent(latest) == [
        {
            "pseudonym": ALICE[0],
            "purposes": purposes,
            "updated_at": 123,
            "history": [{"updated_at": 123, "time": "1970-01-01T00:00:00.123Z", "purposes": purposes}],
            "complete": False,
        }
    ]


def test_stream_consent_reads_the_history_the_stream_writes():
    """Export decodes what the processor writes (one decoder): a grant, then a revoke."""
    proc = make()
    table: dict[str, bytes | None] = {}
    for offset, (personalization, at) in enumerate([(True, T0), (False, T0 + HOUR)]):
        fx = proc.on_consent(0, offset, b"alice", consent("alice", personalization, at=at), table.get)
        table.update(fx.consent)
    (entry,) = stream_consent({k.encode(): v for k, v in table.items()})
    assert entry["pseudonym"] == proc.pz.pseudonym("alice")
    assert entry["purposes"]["personalization"] is False and entry["updated_at"] == T0 + HOUR
    assert [h["purposes"]["personalization"] for h in entry["history"]] == [True, False]
    assert [h["updated_at"] for h in entry["history"]] == [T0, T0 + HOUR]
    assert entry["complete"] is True


# -- window state --------------------------------------------------------------------------------


def test_open_windows_decode_the_workers_changelog_entries():
    """Entries written by the real stream processor decode to the windows it holds open."""
    proc = make()
    consents = Consents()
    consents.set(proc, "alice", True, True)
    consents.set(proc, "bob", True, True)
    latest: dict[bytes, bytes | None] = {}
    msgs = [
        ("alice", event(t=T0 + 60_000, watched=1000)),
        ("alice", event(t=T0 + 120_000, kind="complete", watched=2000)),
        ("alice", event(content="c2", t=T0 + HOUR + 1, watched=500)),
        ("bob", event(user="bob", content="c9", t=T0 + 60_000)),
    ]
    for offset, (user, ev) in enumerate(msgs):
        for write in proc.on_playback(0, offset, user.encode(), enc(ev), consents.get).state:
            latest[write.key.encode()] = write.value
    alice = proc.pz.pseudonym("alice")
    got = open_windows(latest, Selector("alice", [alice]), SPEC.size_ms)
    assert [(w["content_id"], w["window_start"]) for w in got] == [("c1", T0), ("c2", T0 + HOUR)]
    first = got[0]
    assert first == {
        "pseudonym": alice,
        "partition": 0,
        "content_id": "c1",
        "window_start": T0,
        "window_end": T0 + HOUR,
        "watched_ms": 3000,
        "plays": 1,
        "completed": True,
        "events": 2,
        "first_event_ms": T0 + 60_000,  # when the viewer started it: their data, in their export
    }
    assert proc.pz.pseudonym("bob") not in json.dumps(got)
    # an erasure tombstones the entry: nothing open any more
    for write in proc.on_erasure(
        0, 9, b"alice", encode(ErasureRequest(request_id=RID, requested_at=1))
    ).state:
        latest[write.key.encode()] = write.value
    assert open_windows(latest, Selector("alice", [alice])) == []


def test_open_windows_skip_undecodable_entries():
    good = msgspec.json.encode(UserEntry(3, -1, [("c1", T0, 10, 1, False, 1)], None, None))
    mismatched = msgspec.json.encode(UserEntry(3, -1, [("c2", T0, 10, 1, False, 1)], None, None, [T0, T0]))
    latest = {
        f"0/{ALICE[0]}".encode(): b"[not",
        f"1/{ALICE[1]}".encode(): good,
        f"2/{ALICE[0]}".encode(): mismatched,  # malformed like the first: skipped, as a restore refuses it
    }
    got = open_windows(latest, Selector("alice", ALICE))
    assert [(w["partition"], w["pseudonym"]) for w in got] == [(1, ALICE[1])]
    assert "window_end" not in got[0] and "first_event_ms" not in got[0]  # written before first times


# -- erasure and interactions ------------------------------------------------------------------


def test_erasure_section_lists_requests_stages_receipts_and_where_each_stands():
    other = "f" * 32
    requests = [
        Rec("erasure", 0, 0, 100, b"alice", encode(ErasureRequest(request_id=RID, requested_at=100))),
        Rec("erasure", 0, 1, 200, b"alice", encode(ErasureRequest(request_id=other, requested_at=200))),
    ]
    stages = [
        Rec(
            "stages",
            0,
            i,
            110 + i,
            RID.encode(),
            encode(
                ErasureStage(
                    request_id=RID, pseudonym=ALICE[0], stage=s, requested_at=100, finished_at=110 + i
                )
            ),
        )
        for i, s in enumerate(("stream", "trainer", "cache"))
    ]
    receipt = Receipt(
        request_id=RID,
        pseudonym=ALICE[0],
        requested_at=100,
        completed_at=120,
        stages={"stream": 110, "trainer": 111, "cache": 112},
        remains=[],
    )
    receipts = [Rec("receipts", 0, 0, 120, ALICE[0].encode(), encode(receipt))]
    section = erasure_section(list(reversed(requests)), stages, receipts)
    assert [r["request_id"] for r in section["requests"]] == [RID, other]
    assert [s["stage"] for s in section["stages"]] == ["stream", "trainer", "cache"]
    assert section["receipts"][0]["request_id"] == RID and section["receipts"][0]["timestamp"] == 120
    assert section["status"] == [
        {
            "request_id": RID,
            "state": "complete",
            "finished": {"stream": 110, "trainer": 111, "cache": 112},
            "waiting_for": [],
        },
        {
            "request_id": other,
            "state": "in progress",
            "finished": {},
            "waiting_for": ["stream", "trainer", "cache"],
        },
    ]


def test_interactions_section_sorts_rows_and_counts_refusals():
    rows = [
        {"user": ALICE[0], "content_id": "b", "window_start": T0 + HOUR},
        {"user": ALICE[0], "content_id": "a", "window_start": T0 + HOUR},
        {"user": ALICE[0], "content_id": "z", "window_start": T0},
    ]
    counters = {"interactions": 9, "interactions_refused_withdrawn": 2, "interactions_refused_erased": 0}
    section = interactions_section(rows, 11, counters)
    assert [r["content_id"] for r in section["held"]] == ["z", "a", "b"]
    assert section["records_on_topic"] == 11 and section["refused"] == {"withdrawn": 2}


# -- the trainer's rules over the viewer's records only -----------------------------------------


@pytest.fixture
def export_trainer(tmp_path):
    from agents.export import ExportView
    from agents.trainer import trainer_topics

    settings = Settings(state_dir=tmp_path, pseudonym={"keys": "k1:base64:" + "A" * 43 + "="})
    pz = Pseudonymizer([OLD, NEW])
    return ExportView(trainer_topics(settings), pz, Selector("alice", pz.candidates("alice")))


def test_export_trainer_applies_the_trainers_rules_to_the_viewers_records_only(export_trainer):
    t = export_trainer
    topics = t.topics
    a, b = ALICE[0], BOB[0]
    log = [
        Rec(topics["consent"], 0, 0, 1_000, b"alice", consent("alice")),
        Rec(topics["consent"], 0, 1, 1_000, b"bob", consent("bob")),
        Rec(topics["interactions"], 0, 0, 2_000, a.encode(), interaction(a, "c1", T0)),  # withdrawn below
        Rec(topics["interactions"], 1, 0, 2_000, b.encode(), interaction(b, "c1", T0)),
        Rec(topics["consent"], 0, 2, 3_000, b"alice", consent("alice", personalization=False)),
        Rec(topics["consent"], 0, 3, 4_000, b"alice", consent("alice", advertising=True)),
        Rec(topics["interactions"], 0, 1, 5_000, a.encode(), interaction(a, "c2", T0 + HOUR, 10)),
        Rec(topics["interactions"], 0, 2, 6_000, a.encode(), interaction(a, "c2", T0 + HOUR, 20)),  # replaces
        Rec(topics["interactions"], 0, 3, 7_000, a.encode(), interaction(a, "c3", T0 + HOUR)),
        Rec(topics["interactions"], 0, 4, 2_500, a.encode(), interaction(a, "c4", T0)),  # made before it
    ]
    for r in log:
        t.take(r)
    held = t.held()
    assert [(r["content_id"], r["watched_ms"]) for r in held] == [("c2", 20), ("c3", 60_000)]
    assert [r.offset for r in t.kept["consent"]] == [0, 2, 3]  # bob's record was never applied
    assert len(t.kept["interactions"]) == 5
    assert b not in t.core.consent and b not in t.core.store
    assert t.counters["interactions_refused_withdrawn"] == 1


def test_export_trainer_refuses_interactions_up_to_an_erasure(export_trainer):
    t = export_trainer
    topics = t.topics
    a = ALICE[0]
    t.take(Rec(topics["consent"], 0, 0, 1_000, b"alice", consent("alice")))
    t.take(Rec(topics["interactions"], 0, 0, 2_000, a.encode(), interaction(a, "c1", T0)))
    request = encode(ErasureRequest(request_id=RID, requested_at=3_000))
    t.take(Rec(topics["erasure"], 0, 0, 3_000, b"alice", request))
    assert t.held() == []
    # read again after the request (a rebuild): refused while the stream stage is pending
    t.take(Rec(topics["interactions"], 0, 0, 2_000, a.encode(), interaction(a, "c1", T0)))
    assert t.held() == [] and t.counters["interactions_refused_erased"] == 1


# -- the document ------------------------------------------------------------------------------


def test_assemble_and_render_give_one_json_document():
    doc = assemble(
        user_id="alice",
        pseudonyms=ALICE,
        generated_at_ms=T0,
        consent=consent_section([]),
        erasure=erasure_section([], [], []),
        interactions=interactions_section([], 0, {}),
        windows=[],
        recommendations={"user": None, "personalized": False, "items": []},
        controls={"personalization": "full", "hidden": []},
        sources={},
    )
    text = render(doc)
    assert text.endswith("}\n")
    back = json.loads(text)
    assert back["schema"] == SCHEMA and back["pseudonyms"] == ALICE
    assert back["generated_at"].endswith("Z") and back["generated_at_ms"] == T0
    assert list(back)[:5] == ["schema", "generated_at", "generated_at_ms", "user_id", "pseudonyms"]


def test_write_private_replaces_atomically_with_mode_0600(tmp_path: Path):
    out = tmp_path / "export.json"
    out.write_text("old")
    os.chmod(out, 0o644)
    write_private(out, '{"new": true}\n')
    assert out.read_text() == '{"new": true}\n'
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["export.json"]  # no temporary file left


def test_write_private_leaves_nothing_behind_on_failure(tmp_path: Path):
    target = tmp_path / "a-directory"
    target.mkdir()
    with pytest.raises(OSError):
        write_private(target, "x")  # cannot replace a directory with a file
    assert [p.name for p in tmp_path.iterdir()] == ["a-directory"]
