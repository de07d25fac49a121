"""Pure parts of the CLI convention: unknown settings names, status and lag exit codes."""

from __future__ import annotations

from agents.cli.ops import unknown_groups
from agents.cli.status import EXIT_OK, EXIT_SERVICE_DOWN, EXIT_UNHEALTHY, exit_status
from pipeline.settings import unknown_env_names


def test_unknown_env_names_follow_the_model_nested_with_double_underscore():
    env = {
        "PRIVREC_KAFKA__BOOTSTRAP_SERVERS": "k",
        "privrec_redis__url": "r",  # pydantic-settings reads names case-insensitively
        "PRIVREC_GATEWAY__LIMITS__EVENTS": "1/s",
        "PRIVREC_CONFIG_FILE": "x.toml",
        "PRIVREC_DATASETS": "/d",
        "PRIVREC_TEST_KAFKA": "k",
        "PRIVREC_KAFKA__BOOTSTRAP": "typo",
        "PRIVREC_PARTITIONS__X": "scalar has no children",
        "PRIVREC_NOPE": "",
        "PRIVREC_KAFKA____X": "",
        "OTHER": "",
    }
    assert unknown_env_names(env) == [
        "PRIVREC_KAFKA__BOOTSTRAP",
        "PRIVREC_KAFKA____X",
        "PRIVREC_NOPE",
        "PRIVREC_PARTITIONS__X",
    ]


def _status(reachable=True, groups=(), workers=()):
    return {
        "services": {"kafka": {"reachable": reachable}, "redis": {"reachable": True}},
        "lag": {"groups": [dict(g) for g in groups]},
        "workers": None if workers is None else list(workers),
    }


def test_status_exit_is_the_worst_finding():
    lagging = {"group": "app", "status": "OK", "total_lag": 5}
    stopped = {"group": "app-trainer", "status": "STOP", "total_lag": 1}
    live = {"live": True}
    assert exit_status(_status(), "app") == EXIT_OK
    assert exit_status(_status(groups=[lagging], workers=[live]), "app") == EXIT_OK
    assert exit_status(_status(groups=[lagging], workers=[{"live": False}]), "app") == EXIT_UNHEALTHY
    assert exit_status(_status(groups=[lagging], workers=None), "app") == EXIT_OK  # Redis not read
    assert exit_status(_status(groups=[stopped], workers=[live]), "app") == EXIT_UNHEALTHY
    assert exit_status(_status(reachable=False, groups=[stopped]), "app") == EXIT_SERVICE_DOWN
    assert (EXIT_OK, EXIT_SERVICE_DOWN, EXIT_UNHEALTHY) == (0, 1, 3)


def test_unknown_groups_are_named_ones_with_no_offsets_and_no_members():
    rows = [
        {"group": "typo", "status": "NOTFOUND", "members": 0},
        {"group": "starting", "status": "NOTFOUND", "members": 2},
        {"group": "app", "status": "OK", "members": 0},
        {"group": "default", "status": "NOTFOUND", "members": None},
    ]
    assert unknown_groups(rows, ["typo", "starting", "app"]) == ["typo"]
