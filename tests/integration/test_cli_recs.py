"""`privrec recs` as a user runs it (issue 15, "One convention"): titles as `demo` shows them, one
score meaning per column, and a clear "unknown" for an id the live model does not hold."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from pipeline.serving import Layout
from pipeline.sources.titles import save_titles, titles_path
from tests.cli import privrec
from tests.support.serving import cli_env, publish_version

pytestmark = pytest.mark.integration


def test_recs_shows_titles_sources_and_an_unknown_marker(client, redis_url, tmp_path: Path):
    app_id = f"privrec-test-{uuid.uuid4().hex[:8]}"
    layout = Layout(f"privrec:{app_id}")
    env = cli_env(redis_url, app_id, tmp_path)
    state = tmp_path / "state"
    save_titles(state, app_id, {"v1-bob-l0": "The Silent Harbor", "w0": "Dark Night"})
    save_titles(state, app_id, {"v1-p0": "Ten Little Suns"})  # a second replay merges
    assert titles_path(state, app_id).stat().st_mode & 0o777 == 0o600
    try:
        publish_version(client, layout, "v1", ["alice", "bob"])
        # bob: limited history of 5 titles, so 7 items = 5 of the model's + 2 of the popular list
        limited = privrec("controls", "bob", "--personalization", "limited", env=env)
        assert limited.returncode == 0, limited.stderr
        done = privrec("recs", "bob", "alice", "nobody-knows-me", "--n", "7", "--json", env=env)
        assert done.returncode == 0, done.stderr
        body = json.loads(done.stdout)
        bob = body["bob"]
        assert bob["status"] == "personalized" and bob["source"] == "limited"
        assert [i["from"] for i in bob["items"]] == ["model"] * 5 + ["popular"] * 2
        assert [i["score_kind"] for i in bob["items"]] == ["affinity"] * 5 + ["viewers"] * 2
        assert bob["items"][0]["title"] == "The Silent Harbor"
        assert bob["items"][5] | {"score": None} == {
            "content_id": "v1-p0",
            "title": "Ten Little Suns",
            "from": "popular",
            "score": None,
            "score_kind": "viewers",
            "because": [],
            "because_titles": [],
        }
        assert body["alice"]["items"][0]["because_titles"] == ["Dark Night"]
        assert body["nobody-knows-me"]["status"] == "unknown" and body["nobody-knows-me"]["items"] == []

        text = privrec("recs", "bob", "nobody-knows-me", "--n", "7", env=env)
        assert text.returncode == 0, text.stderr
        lines = text.stdout.splitlines()
        assert lines[0] == "bob: personalized (limited list), model v1"
        header = lines[1].split()
        assert header == ["#", "TITLE", "CONTENT", "FROM", "AFFINITY", "VIEWERS", "BECAUSE"]
        assert "The Silent Harbor" in lines[2] and "model" in lines[2]
        popular_row = next(line for line in lines if "v1-p0" in line)
        assert "Ten Little Suns" in popular_row and popular_row.split()[-3:] == ["-", "30", "-"]
        assert lines[-1].startswith("nobody-knows-me: unknown: no recommendations or controls")
        assert not any("v1-p" in line for line in lines[lines.index(lines[-1]) :])

        off = privrec("controls", "bob", "--personalization", "off", env=env)
        assert off.returncode == 0, off.stderr
        known = json.loads(privrec("recs", "bob", "--n", "2", "--json", env=env).stdout)["bob"]
        assert known["status"] == "popular" and [i["from"] for i in known["items"]] == ["popular"] * 2
    finally:
        keys = list(client.scan_iter(match=layout.all_pattern()))
        if keys:
            client.unlink(*keys)
