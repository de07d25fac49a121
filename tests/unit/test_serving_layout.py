"""Key layout of the recommendation cache: names, namespaces, pseudonym-only keys."""

from __future__ import annotations

import pytest

from pipeline.privacy.pseudonym import Pseudonymizer, PseudonymKey
from pipeline.serving.layout import Layout, check_pseudonym, check_version
from pipeline.serving.reader import read_script
from pipeline.settings import Settings

PZ = Pseudonymizer([PseudonymKey("k1", b"layout-secret-0123456789")])


def test_key_names_under_namespace():
    layout = Layout("privrec:app")
    p = PZ.pseudonym("alice")
    assert layout.live == "privrec:app:recs:live"
    assert layout.versions == "privrec:app:recs:versions"
    assert layout.pending == "privrec:app:recs:pending"
    assert layout.user("v1", p) == f"privrec:app:recs:v1:u:{p}"
    assert layout.popular("v1") == "privrec:app:recs:v1:popular"
    assert layout.meta("v1") == "privrec:app:recs:v1:meta"
    assert layout.controls(p) == f"privrec:app:controls:{p}"
    assert layout.version_pattern("v1") == "privrec:app:recs:v1:*"
    assert layout.all_pattern() == "privrec:app:*"


def test_every_key_starts_with_the_namespace():
    layout = Layout("ns")
    p = PZ.pseudonym("bob")
    keys = [layout.live, layout.versions, layout.pending, layout.user("v", p), layout.popular("v")]
    keys += [layout.meta("v"), layout.controls(p)]
    assert all(k.startswith("ns:") for k in keys)


def test_namespace_from_settings_isolates_app_ids():
    a = Layout.from_settings(Settings(app_id="one"))
    b = Layout.from_settings(Settings(app_id="two"))
    assert a.namespace == "privrec:one"
    assert a.live != b.live


@pytest.mark.parametrize("bad", ["", "ns:", "a b", "ns*", "x" * 200, "ns[1]"])
def test_namespace_rejects_glob_and_trailing_colon(bad):
    with pytest.raises(ValueError):
        Layout(bad)


def test_check_pseudonym_accepts_pseudonyms_only():
    p = PZ.pseudonym("carol")
    assert check_pseudonym(p) == p
    for raw in ["carol", "user-42", "alice@example.com", "k1.ABC", p + ":x", p.upper()]:
        with pytest.raises(ValueError) as info:
            check_pseudonym(raw)
        assert raw not in str(info.value)  # a raw id is never echoed


@pytest.mark.parametrize("good", ["v1", "20240101T000000Z-abc123", "a.b_c-d"])
def test_check_version_accepts(good):
    assert check_version(good) == good


@pytest.mark.parametrize("bad", ["", "a:b", "v*", "x" * 65, "v 1"])
def test_check_version_rejects(bad):
    with pytest.raises(ValueError):
        check_version(bad)


def test_read_script_bakes_in_prefixes_and_key_count():
    script = read_script(Layout("privrec:x"), 3)
    assert "'privrec:x:recs:'" in script
    assert "'privrec:x:controls:'" in script
    assert "local k = 3" in script
