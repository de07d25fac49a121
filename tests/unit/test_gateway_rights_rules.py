"""The pure rules of the viewer-rights routes (pipeline.gateway.rights)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.gateway.principal import EVENTS_WRITE, PRIVACY_SELF, RECS_READ_ANY, Principal
from pipeline.gateway.rights import (
    MAX_BODY_BYTES,
    MAX_HIDDEN,
    MAX_IDS_PER_REQUEST,
    ControlsChange,
    Refused,
    check_hidden_bound,
    check_viewer,
    consent_view,
    controls_view,
    erasure_view,
    parse_body,
    parse_consent_change,
    parse_controls_change,
    parse_request_id,
)
from pipeline.privacy.consent import Purposes
from pipeline.serving.controls import Controls
from pipeline.wire.fields import CONTENT_ID_PATTERN

PATTERN = re.compile(CONTENT_ID_PATTERN)


def refused(fn, *args) -> tuple[int, str]:
    with pytest.raises(Refused) as info:
        fn(*args)
    return info.value.status, info.value.reason


def test_only_viewer_tokens_with_privacy_self_pass():
    viewer = Principal("viewer", "alice", frozenset({PRIVACY_SELF}))
    assert check_viewer(viewer) == "alice"
    assert refused(check_viewer, None) == (401, "unauthenticated")
    assert refused(check_viewer, Principal("viewer", "alice", frozenset({EVENTS_WRITE}))) == (
        403,
        "insufficient_scope",
    )
    service = Principal("service", "shop", frozenset({PRIVACY_SELF, RECS_READ_ANY}))
    assert refused(check_viewer, service) == (403, "insufficient_scope")


def test_body_must_be_a_small_json_object():
    assert parse_body(b'{"a": 1}', "application/json; charset=utf-8") == {"a": 1}
    assert refused(parse_body, b"x" * (MAX_BODY_BYTES + 1), "application/json")[0] == 413
    assert refused(parse_body, b"{}", "text/plain")[0] == 415
    assert refused(parse_body, b"{nope", "application/json") == (400, "invalid_json")
    assert refused(parse_body, b"\xff\xfe", "application/json") == (400, "invalid_json")
    assert refused(parse_body, b"[1]", "application/json") == (400, "not_an_object")


def test_consent_change_merges_named_purposes_into_the_current_ones():
    current = Purposes(analytics=True, personalization=True, advertising=False)
    assert parse_consent_change({"personalization": False}, current) == Purposes(True, False, False)
    assert parse_consent_change({"advertising": True}, None) == Purposes(False, False, True)
    assert refused(parse_consent_change, {}, current) == (422, "no_purpose")
    assert refused(parse_consent_change, {"analytic": True}, current) == (422, "unknown_field")
    assert refused(parse_consent_change, {"analytics": 1}, current) == (422, "not_a_boolean")
    assert refused(parse_consent_change, {"analytics": "true"}, current) == (422, "not_a_boolean")


def test_consent_view_describes_each_purpose_and_says_when_nothing_is_recorded():
    view = consent_view(None, 123)
    assert view["recorded"] is False and view["updated_at"] is None
    assert [p["granted"] for p in view["purposes"].values()] == [False, False, False]
    assert all(len(p["description"]) > 20 for p in view["purposes"].values())
    view = consent_view(Purposes(True, False, False), 5)
    assert view["purposes"]["analytics"]["granted"] is True and view["updated_at"] == 5


def test_controls_change_validates_levels_ids_and_counts():
    change = parse_controls_change({"personalization": "off", "hide": ["t1", "t1", "t2"]}, PATTERN)
    assert change == ControlsChange("off", ("t1", "t2"), ())
    assert (
        refused(parse_controls_change, {"personalization": "some"}, PATTERN)[1] == "invalid_personalization"
    )
    assert refused(parse_controls_change, {"hide": ["a@b.example"]}, PATTERN)[1] == "invalid_content_id"
    assert refused(parse_controls_change, {"hide": [""]}, PATTERN)[1] == "invalid_content_id"
    assert refused(parse_controls_change, {"hide": [7]}, PATTERN)[1] == "invalid_content_id"
    assert refused(parse_controls_change, {"hide": "t1"}, PATTERN)[1] == "not_a_list"
    assert refused(parse_controls_change, {"hidden": []}, PATTERN)[1] == "unknown_field"
    assert refused(parse_controls_change, {}, PATTERN)[1] == "nothing_to_change"
    many = [f"t{i}" for i in range(MAX_IDS_PER_REQUEST + 1)]
    assert refused(parse_controls_change, {"hide": many}, PATTERN)[1] == "too_many_ids"


def test_hidden_titles_are_bounded_in_all():
    full = Controls(hidden=frozenset(f"t{i}" for i in range(MAX_HIDDEN)))
    check_hidden_bound(full, ControlsChange(None, ("t0",), ()))  # already hidden: no growth
    check_hidden_bound(full, ControlsChange(None, ("new",), ("t0",)))  # one out, one in
    assert refused(check_hidden_bound, full, ControlsChange(None, ("new",), ()))[1] == "too_many_hidden"


def test_controls_view_lists_hidden_titles_sorted():
    view = controls_view(Controls(personalization="limited", hidden=frozenset({"b", "a"})))
    assert view == {"personalization": "limited", "hidden": ["a", "b"], "max_hidden": MAX_HIDDEN}


def test_request_ids_are_uuid_hex_else_not_found():
    rid = "0123456789abcdef0123456789abcdef"
    assert parse_request_id(rid) == rid
    for bad in ("", "../etc", rid.upper(), rid + "0", rid[:-1] + "\n"):
        assert refused(parse_request_id, bad) == (404, "not_found")


def test_erasure_view_shows_stages_and_a_receipt_without_the_pseudonym():
    rid = "0" * 32
    pending = erasure_view(rid, {"stream": 10}, None)
    assert pending == {
        "request_id": rid,
        "stages": {"stream": 10, "trainer": None, "cache": None},
        "receipt": None,
        "complete": False,
    }
    receipt = {
        "schema": "receipt.v1",
        "request_id": rid,
        "pseudonym": "p-secret",
        "requested_at": 1,
        "completed_at": 40,
        "stages": {"stream": 10, "trainer": 20, "cache": 30},
        "remains": [],
    }
    done = erasure_view(rid, {}, receipt)
    assert done["complete"] is True and done["stages"] == {"stream": 10, "trainer": 20, "cache": 30}
    assert "pseudonym" not in done["receipt"] and "p-secret" not in repr(done)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.text(max_size=20), st.one_of(st.booleans(), st.integers(), st.text(max_size=5)), max_size=5
    )
)
def test_consent_change_is_total_refused_or_valid(data):
    try:
        out = parse_consent_change(data, None)
    except Refused as exc:
        assert exc.status == 422
    else:
        assert all(out.as_dict()[k] == v for k, v in data.items())
