"""Viewer controls: parsing the stored hash, argument checks (no Redis needed)."""

from __future__ import annotations

import pytest

from pipeline.serving.controls import Controls, parse_controls, set_controls
from pipeline.serving.layout import Layout

P = "k1." + "a" * 32


def test_no_hash_means_defaults():
    assert parse_controls(None) == Controls()
    assert parse_controls([]) == Controls(personalization="full", hidden=frozenset())


def test_parse_mode_and_hidden():
    flat = [b"personalization", b"limited", b"hide:t1", b"1", b"hide:t\xc3\xa9", b"1", b"other", b"x"]
    assert parse_controls(flat) == Controls(personalization="limited", hidden=frozenset({"t1", "té"}))


def test_unknown_mode_reads_as_off():
    assert parse_controls([b"personalization", b"weird"]).personalization == "off"


def test_hidden_without_mode_is_full():
    assert parse_controls([b"hide:x", b"1"]) == Controls(hidden=frozenset({"x"}))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"personalization": "sometimes"},
        {"hide": [""]},
        {"unhide": [None]},
    ],
)
def test_set_controls_rejects_bad_arguments_before_touching_redis(kwargs):
    with pytest.raises(ValueError):
        set_controls(None, Layout("ns"), [P], **kwargs)


def test_set_controls_needs_a_pseudonym():
    with pytest.raises(ValueError):
        set_controls(None, Layout("ns"), [])
    with pytest.raises(ValueError):
        set_controls(None, Layout("ns"), ["alice"], personalization="off")
