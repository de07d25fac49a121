"""The trainer group's members from heartbeats (it reads with manual assignment; the broker sees none)."""

from __future__ import annotations

from pipeline.ops.collect import LIVE_STATE, GroupInfo, Member, with_heartbeats

BROKER_MEMBER = Member("m-1", "/127.0.0.1", "faust")


def test_live_heartbeats_make_an_empty_group_live():
    empty = GroupInfo("privrec-trainer", state="Empty", members=0)
    info = with_heartbeats(empty, ["privrec:ab12cd34"], "heartbeat")
    assert (info.state, info.members, info.via) == (LIVE_STATE, 1, "heartbeat")
    assert (info.broker_state, info.broker_members) == ("Empty", 0)
    assert info.owner(("t", 3)) == Member("privrec:ab12cd34", "-", "heartbeat")


def test_no_live_heartbeat_leaves_the_brokers_word():
    empty = GroupInfo("privrec-trainer", state="Empty", members=0)
    assert with_heartbeats(empty, []) is empty
    assert empty.owner(("t", 0)) is None


def test_a_group_the_broker_counts_members_for_is_not_overridden():
    stable = GroupInfo("privrec", state="Stable", members=2, owners={("t", 0): BROKER_MEMBER})
    assert with_heartbeats(stable, ["x"]) is stable


def test_an_undescribed_group_takes_the_heartbeats():
    info = with_heartbeats(GroupInfo("g"), ["a", "b"])
    assert info.members == 2 and info.state == LIVE_STATE and info.broker_members is None
