"""``privrec audit`` on a small seeded deployment (real broker, Redis, worker and trainer).

Twelve viewers: eight grant everything, two analytics only, two nothing; each
watches six titles; one broken message goes to the DLQ; one viewer is erased
(with receipt) and one exported. The continuous trainer writes an audit after
its full retrain (HTML in the state dir, JSON on ``audits``); ``privrec
audit --json`` (a subprocess) must report what the stores hold, checked here
against independent reads; the HTML opens in headless Chromium.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time

import pytest

from agents.procs import settings_env
from pipeline.serving.layout import Layout
from pipeline.serving.reader import Reader
from pipeline.sources import consent_record
from tests.cli import privrec
from tests.integration.harness import (
    _redis,
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
ALL = {"analytics": True, "personalization": True, "advertising": True}
ANALYTICS = {"analytics": True, "personalization": False, "advertising": False}
NOTHING = {"analytics": False, "personalization": False, "advertising": False}
USERS = {f"aud-{i:02d}": ALL if i < 8 else ANALYTICS if i < 10 else NOTHING for i in range(12)}
ERASED, EXPORTED = "aud-00", "aud-01"


CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def _seed(s) -> None:
    raw, consent = s.topic("playback.raw"), s.topic("consent")
    records = [
        (u.encode(), json.dumps(consent_record(u, p, updated_at_ms=T0 - HOUR)).encode())
        for u, p in USERS.items()
    ]
    wait_processed(s, consent, produce(s, consent, records))
    envelopes = []
    for k in range(6):
        for i, user in enumerate(USERS):
            title = f"t{(i * (i % 3 + 1) + k) % 15:02d}"
            events = [
                playback_event(user=user, content=title, t=T0 + k * HOUR + 60_000, kind=kind, watched=600_000)
                for kind in ("play", "complete")
            ]
            envelopes.append(
                (user.encode(), json.dumps({"schema": "playback.batch.v1", "events": events}).encode())
            )
    envelopes.append((b"aud-03", b"{not json"))  # one dead letter: invalid_json
    produce(s, raw, envelopes)
    wait_processed(s, raw, close_windows(s))


def _served_coverage(s, users: list[str], n_items: int) -> float:
    from pipeline.keys import pseudonymizer

    reader = Reader(_redis(s), pseudonymizer(s), Layout.from_settings(s))
    lists = reader.get_many(users, n=10)
    shown = {it.content_id for r in lists.values() if r.personalized for it in r.items}
    return len(shown) / n_items


def test_audit_reports_the_deployment(deployment, tmp_path):
    s = deployment
    env = settings_env(s)
    _seed(s)
    trainer, finish = start_trainer(s)
    try:
        audits = tmp_path / "state" / "audits" / s.app_id
        wait_for(lambda: list(audits.glob("audit-*.html")), 180, "the trainer's audit after its retrain")
        erased = privrec("erase", ERASED, "--wait", "--timeout", "90", env=env, timeout=150)
        assert erased.returncode == 0, erased.stderr
        exported = privrec("export", EXPORTED, "--n", "5", env=env, timeout=90)
        assert exported.returncode == 0, exported.stderr
    finally:
        finish()
    assert trainer.counters.get("audits_written", 0) >= 1 and not trainer.counters.get("audits_failed")
    on_topic = [json.loads(v) for _, v in read_all(s, s.topic("audits")) if v]
    assert on_topic and on_topic[0]["schema"] == "audit.v1"

    day = time.strftime("%Y-%m-%d", time.gmtime(T0 / 1000))
    released = privrec("trending", "--release", "--day", day, "--json", env=env, timeout=120)
    assert released.returncode == 0, released.stderr

    done = privrec("audit", "--json", env=env, timeout=240)
    assert done.returncode == 0, done.stderr
    assert "aud-" not in done.stdout + done.stderr  # no raw id anywhere in the report or the log
    report = json.loads(done.stdout)
    for key in (
        "coverage_at_10", "gini_exposure", "arp", "popularity_lift", "personalisation_at_10",
        "ndcg_by_activity_tier", "exposure_by_popularity_tier", "consent_mix", "drops_by_reason",
        "dlq_by_reason", "erasure_receipt_seconds", "epsilon_spent_by_day", "attention",
    ):  # fmt: skip
        assert key in report, key

    # consent: seven viewers with everything (one erased: its record is a tombstone), two, two
    assert report["consent_mix"]["classes"] == {
        "personalization": 7, "analytics_only": 2, "none": 2, "withdrawn": 1,
    }  # fmt: skip
    assert report["dlq_by_reason"]["playback.dlq"] == {"invalid_json": 1}
    erasure = report["erasure_receipt_seconds"]
    assert erasure["requests"] == 1 and erasure["receipts"] == 1 and erasure["pending"] == 0
    assert 0 < erasure["p50"] == erasure["p95"] == erasure["max"] < 90
    assert report["exports_served"] == 1
    assert report["retention"]["audits"]["retention_ms"] == s.topics.history_retention_ms
    # the privacy budget comes from the dp.ledger topic: the one release made above
    assert report["epsilon_spent_by_day"] == {day: s.dp.epsilon_per_day}
    assert report["dp_ledger"] == "dp.ledger topic"

    model = report["model"]
    assert model["n_users"] == 7  # personalisation viewers left after the erasure
    personal = [u for u, p in USERS.items() if p is ALL and u != ERASED]
    assert report["coverage_at_10"] == pytest.approx(_served_coverage(s, personal, model["n_items"]))
    assert report["fairness_viewers"] == 7  # all personalisation viewers also granted analytics
    assert sum(v["users"] for v in report["activity_tiers"].values()) == 7
    assert 0 <= report["gini_exposure"] <= 1 and report["arp"] > 0
    assert {a["figure"] for a in report["attention"]} >= {"coverage_at_10", "gini_exposure", "dlq_share"}

    out = tmp_path / "report.html"
    latest = privrec("audit", "--latest", "--out", str(out), env=env, timeout=60)
    assert latest.returncode == 0, latest.stderr
    assert f"report: {out}" in latest.stdout
    page = out.read_text()
    assert "<svg" in page and "<script" not in page
    assert not re.findall(r'(?:href|src)="(?!#)', page)  # only in-page references (SVG markers)
    _screenshot(out, tmp_path)


def _screenshot(page_path, tmp_path) -> None:
    if CHROMIUM is None:
        pytest.skip("no chromium on this machine (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    requests: list[str] = []
    shot = tmp_path / "audit.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("request", lambda r: requests.append(r.url))
            page.goto(page_path.as_uri())
            assert page.locator("#attention tr").count() > 5
            assert page.locator("svg").count() >= 2
            assert page.locator("h1").inner_text() == "privrec ethics audit"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert requests == [page_path.as_uri()]  # self-contained: nothing else fetched
    assert shot.stat().st_size > 10_000
    print(f"audit screenshot: {shot}")
