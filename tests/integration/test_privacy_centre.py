"""The privacy centre in a real headless Chromium, against the real gateway, broker and Redis.

A `privrec worker`, a continuous `privrec train` and `privrec gateway` run as
subprocesses; the viewer's recommendations are seeded by publishing a model's
output directly (pipeline.serving.publish). The viewer opens the link that
`privrec token issue --json` prints and, in the page: sees recommendations
with "because you watched", turns personalisation off (popular titles), hides
a title (gone from the list), downloads the export (the JSON is checked) and
deletes their data (the receipt appears). Screenshots go to
``$PRIVREC_TEST_ARTIFACTS`` when set, else the test's tmp dir.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from pathlib import Path

import pytest
import redis as redis_lib
from kafka import KafkaAdminClient

from agents.procs import ChildProcess, settings_env
from pipeline.kafka.topics import create_topics
from pipeline.keys import pseudonymizer
from pipeline.recs.types import PopularItem, Recommendation, UserRecs
from pipeline.serving.layout import Layout
from pipeline.serving.publish import publish
from pipeline.sources import consent_record
from tests.cli import privrec
from tests.integration.harness import Worker, produce, wait_assigned, wait_for, wait_processed

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWER = "Viewer.Browser@Example.com"  # canonical: viewer.browser@example.com
TITLES = [f"title-{i:02d}" for i in range(12)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _seed(settings, users: list[str]) -> None:
    """A published model: personalised lists with explanations, a popular list of other titles."""
    pz = pseudonymizer(settings)
    recs = {
        pz.pseudonym(u): UserRecs(
            full=[
                Recommendation(content_id=t, score=1 - i / 20, because=(f"watched-{i % 3}", "watched-9"))
                for i, t in enumerate(TITLES[:8])
            ],
            limited=[Recommendation(content_id=t, score=0.5, because=("watched-9",)) for t in TITLES[:4]],
        )
        for u in users
    }
    popular = [PopularItem(content_id=f"popular-{i:02d}", score=float(20 - i)) for i in range(12)]
    client = redis_lib.Redis.from_url(settings.redis.url.get_secret_value())
    try:
        publish(
            client, Layout.from_settings(settings), "seed-v1", recs, popular, {"version": "seed-v1"}, 3600
        )
    finally:
        client.close()


def _artifacts(tmp_path: Path) -> Path:
    where = Path(os.environ.get("PRIVREC_TEST_ARTIFACTS") or tmp_path / "screenshots")
    where.mkdir(parents=True, exist_ok=True)
    return where


@pytest.fixture
def deployment(make_settings, kafka_bootstrap, tmp_path):
    port = _free_port()
    settings = make_settings(
        partitions=2,
        trainer={"retrain_every_s": 3600.0, "factors": 8, "iterations": 5},
        gateway={"host": "127.0.0.1", "port": port, "public_url": f"http://127.0.0.1:{port}"},
    )
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    create_topics(admin, settings)
    admin.close()
    logs = tmp_path / "logs"
    children = [Worker(settings, logs).start()]
    try:
        wait_assigned(settings, 1)
        purposes = {"analytics": True, "personalization": True, "advertising": False}
        at = int(time.time() * 1000) - 60_000
        consent = [
            (
                VIEWER.lower().encode(),
                json.dumps(consent_record(VIEWER.lower(), purposes, updated_at_ms=at)).encode(),
            )
        ]
        wait_processed(
            settings, settings.topic("consent"), produce(settings, settings.topic("consent"), consent)
        )
        _seed(settings, [VIEWER, "someone-else"])
        children.append(ChildProcess(settings, logs / "train.log", ["train"]).start())
        gateway = ChildProcess(settings, logs / "gateway.log", ["gateway", "--port", str(port)]).start()
        children.append(gateway)
        wait_for(lambda: _up(port) or not gateway.running, 60, "the gateway to listen")
        assert gateway.running, gateway.log[-2000:]
        yield settings
    finally:
        for child in reversed(children):
            child.stop()


def _up(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.skipif(CHROMIUM is None, reason="no system chromium (apt install chromium)")
@pytest.mark.timeout(180)
def test_a_viewer_uses_the_privacy_centre(deployment, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    s = deployment
    env = settings_env(s)
    issued = privrec(
        "token", "issue", "--user", VIEWER, "--scope", "privacy:self", "recs:read:self", "--json", env=env
    )
    assert issued.returncode == 0, issued.stderr
    url = json.loads(issued.stdout)["url"]
    assert "#token=" in url and "?" not in url
    shots = _artifacts(tmp_path)
    saved: list[Path] = []
    t0 = time.monotonic()

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(
                accept_downloads=True, viewport={"width": 1000, "height": 1400}
            ).new_page()
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(url)
            expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=20_000)
            assert "#token" not in page.url  # the fragment left the address bar
            recs = page.locator("#recs li[data-content-id]")
            expect(recs.first).to_be_visible()
            expect(page.locator("#recs .because")).to_have_count(8)  # the rest is filled from popular
            expect(page.locator("#recs")).to_contain_text("Because you watched watched-0, watched-9")
            expect(page.locator("#consent-personalization")).to_be_checked()
            saved.append(shots / "1-recommendations.png")
            page.screenshot(path=saved[-1], full_page=True)

            # personalisation off: the popular list, without explanations
            page.locator("#level-off").check()
            expect(page.locator("#recs")).to_have_attribute("data-personalized", "false")
            expect(page.locator("#recs li[data-content-id='popular-00']")).to_be_visible()
            expect(page.locator("#recs .because")).to_have_count(0)
            saved.append(shots / "2-personalisation-off.png")
            page.screenshot(path=saved[-1], full_page=True)

            # back to full, then hide a title: it disappears and is listed as hidden
            page.locator("#level-full").check()
            expect(page.locator("#recs")).to_have_attribute("data-personalized", "true")
            page.get_by_role("button", name="Hide title-00").click()
            expect(page.locator("#recs li[data-content-id='title-00']")).to_have_count(0)
            expect(page.locator("#hidden li[data-content-id='title-00']")).to_be_visible()
            expect(page.locator("#status")).to_contain_text("title-00 hidden")
            saved.append(shots / "3-title-hidden.png")
            page.screenshot(path=saved[-1], full_page=True)

            # download my data
            with page.expect_download(timeout=60_000) as download_info:
                page.locator("#download").click()
            download = download_info.value
            assert download.suggested_filename == "privrec-export.json"
            export_path = shots / "privrec-export.json"
            download.save_as(export_path)
            document = json.loads(export_path.read_text())
            assert document["schema"] == "export.v1"
            assert document["user_id"] == VIEWER.lower()
            assert document["controls"]["hidden"] == ["title-00"]
            assert document["consent"]["purposes"]["personalization"] is True
            export_path.unlink()  # personal data: not kept among the artefacts

            # delete my data: the receipt's stages appear as they complete
            page.locator("#erase").click()
            page.locator("#erase-confirm").click()
            expect(page.locator("#erasure-stages li")).to_have_count(3)
            expect(page.locator("#receipt")).to_be_visible(timeout=90_000)
            expect(page.locator("#erasure-stages li.done")).to_have_count(3)
            expect(page.locator("#receipt")).to_contain_text("Deletion complete")
            expect(page.locator("#status")).to_contain_text("Your data is deleted")
            # what is left: no consent on record, no personal recommendations, no hidden titles
            expect(page.locator("#consent-updated")).to_contain_text("You have not chosen yet")
            expect(page.locator("#consent input:checked")).to_have_count(0)
            expect(page.locator("#recs")).to_have_attribute("data-personalized", "false")
            expect(page.locator("#hidden li")).to_have_count(0)
            saved.append(shots / "4-erasure-receipt.png")
            page.screenshot(path=saved[-1], full_page=True)

            # the token never travelled in a URL, and every request stayed on the gateway
            origin = url.split("/privacy")[0]
            assert all(r.startswith(origin) or r.startswith("blob:") for r in requests), requests
            assert not any("token=" in r.split("#")[0] for r in requests)
        finally:
            browser.close()

    print(f"privacy centre walk-through took {time.monotonic() - t0:.1f} s; screenshots:")
    for path in saved:
        print(f"  {path}")
