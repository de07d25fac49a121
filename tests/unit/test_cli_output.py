"""Terminal output of the CLI: rich tables that stay plain columns when redirected, progress bars
and live redraws only on a terminal, sparklines of lag history, RFC 3339 times."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from agents.cli._output import Progress, print_table, rfc3339, sparkline
from agents.cli.ops import _remember, group_line, watch_view
from agents.cli.rights import receipt_json

REPO = Path(__file__).resolve().parents[2]


def test_redirected_table_is_plain_columns(capsys) -> None:
    print_table(["GROUP", "LAG", "NOTE"], [["g", 1, "[bold]x[/bold]"], ["longer-group", 12345, "-"]])
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "GROUP         LAG    NOTE",
        "g             1      [bold]x[/bold]",  # a cell is text, never rich markup
        "longer-group  12345  -",
    ]


def test_redirected_wide_table_is_not_wrapped(capsys) -> None:
    print_table(["A", "B"], [["x" * 300, "y"]])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[1].split() == ["x" * 300, "y"]


def test_progress_is_silent_without_a_terminal(capsys) -> None:
    with Progress(10, "replay") as bar:
        assert not bar.enabled
        bar.update(5)
        bar.update(10, total=10, label="done")
    assert capsys.readouterr() == ("", "")


def _on_a_terminal(code: str) -> str:
    """Run ``code`` with stdout and stderr on a pseudo-terminal; what the terminal showed."""
    leader, follower = pty.openpty()
    env = os.environ | {"PYTHONPATH": str(REPO), "TERM": "xterm-256color", "COLUMNS": "120"}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=follower, stderr=follower, stdin=subprocess.DEVNULL, env=env
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    assert proc.wait(timeout=60) == 0
    return b"".join(chunks).decode(errors="replace")


def test_on_a_terminal_tables_are_styled_and_bars_drawn() -> None:
    shown = _on_a_terminal(
        "from agents.cli._output import Progress, print_table\n"
        "print_table(['GROUP', 'LAG'], [['g', 1]])\n"
        "with Progress(4, 'replay') as bar:\n"
        "    bar.update(2)\n"
        "    bar.update(4)\n"
    )
    assert "\x1b[" in shown  # styled
    assert "GROUP" in shown and "━" in shown  # the table, then the bar
    assert "4/4" in shown and "replay" in shown


def test_lag_history_sparkline_and_live_view() -> None:
    rows = [
        {
            "group": "g",
            "status": "OK",
            "total_lag": 0,
            "state": "Stable",
            "members": 1,
            "window": {"samples": 1, "size": 10, "span_s": 0.0},
            "partitions": [
                {
                    "topic": "t",
                    "partition": 0,
                    "committed": 5,
                    "log_end": 5,
                    "lag": 0,
                    "consumer_id": "-",
                    "host": "-",
                    "client_id": "-",
                    "lag_seconds": 0.0,
                    "seconds_method": "age",
                    "status": "OK",
                }
            ],
        }
    ]
    history: dict = {}
    for lag in (8, 4, 0):
        rows[0]["total_lag"] = lag
        _remember(rows, history)
    assert rows[0]["lag_history"] == [8, 4, 0]
    line = group_line(rows[0])
    assert line.startswith("g: OK: lag 0 on 1 partitions") and line.endswith("history █▅▁")

    from agents.cli._output import render_plain

    text = render_plain(watch_view(rows, "2024-05-01T00:00:00Z"))
    assert text.splitlines()[0] == "-- 2024-05-01T00:00:00Z"
    assert "CURRENT-OFFSET" in text and "history █▅▁" in text


def test_sparkline_scales_to_the_maximum_and_marks_unknown() -> None:
    assert sparkline([0, 5, 10, None]) == "▁▅█·"
    assert sparkline([0, 0]) == "▁▁"
    assert sparkline([100, 0, 0, 1], width=3) == "▁▁█"  # the last three only, scaled among themselves
    assert sparkline([]) == ""


def test_rfc3339_has_a_timezone() -> None:
    assert rfc3339(0) == "1970-01-01T00:00:00Z"
    assert rfc3339(1_714_564_800_123, "milliseconds") == "2024-05-01T12:00:00.123Z"
    assert rfc3339(None) is None


@given(st.integers(min_value=0, max_value=4_102_444_800_000))
def test_rfc3339_round_trips_milliseconds(ms: int) -> None:
    text = rfc3339(ms, "milliseconds")
    assert text is not None and text.endswith("Z")
    parsed = datetime.fromisoformat(text)
    assert parsed.tzinfo is not None and parsed.utcoffset().total_seconds() == 0
    assert round(parsed.astimezone(UTC).timestamp() * 1000) == ms


def test_receipt_json_keeps_the_record_and_adds_rfc3339() -> None:
    receipt = {
        "request_id": "r",
        "requested_at": 1000,
        "completed_at": 3000,
        "stages": {"stream": 2000},
        "remains": [{"what": "model", "until": 4000}, {"what": "backups", "rule": "30 days"}],
    }
    out = receipt_json(receipt)
    assert {k: out[k] for k in receipt if k != "remains"} == {
        k: v for k, v in receipt.items() if k != "remains"
    }
    assert out["requested_at_rfc3339"] == "1970-01-01T00:00:01.000Z"
    assert out["completed_at_rfc3339"] == "1970-01-01T00:00:03.000Z"
    assert out["stages_rfc3339"] == {"stream": "1970-01-01T00:00:02.000Z"}
    assert out["remains"][0]["until_rfc3339"] == "1970-01-01T00:00:04.000Z"
    assert "until_rfc3339" not in out["remains"][1]
