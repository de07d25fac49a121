"""``privrec lag``: consumer lag per partition with a Burrow-style status per group."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import deque
from typing import Any

from prometheus_client import CollectorRegistry

from agents.cli._output import interactive, now_rfc3339, print_json, print_table, sparkline, table
from agents.liveness import trainer_liveness
from agents.processes.clients import lag_consumer
from pipeline.errors import ConfigError, ServiceUnavailable
from pipeline.ops.collect import GroupInfo, LagCollector, Member, pipeline_groups
from pipeline.ops.lag import GroupLag, LagWindow, Status
from pipeline.ops.metrics import PipelineMetrics, serve_metrics, update_from_lag
from pipeline.services.connect import kafka_admin, resolve
from pipeline.settings import Settings

__all__ = ["register", "unknown_groups"]

COLUMNS = [
    "GROUP",
    "TOPIC",
    "PARTITION",
    "CURRENT-OFFSET",
    "LOG-END-OFFSET",
    "LAG",
    "CONSUMER-ID",
    "HOST",
    "CLIENT-ID",
    "LAG-SECONDS",
    "STATUS",
]
_NOBODY = Member("-", "-", "-")
HISTORY = 20
"""Rounds of total lag per group that ``lag --watch`` keeps (its sparkline, its JSON ``lag_history``)."""


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def _count(minimum: int) -> Any:
    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}")
        return value

    return parse


def register(sub: Any) -> None:
    p = sub.add_parser(
        "lag",
        help="consumer lag per partition and a Burrow-style status per group",
        description=(
            "Lag of the pipeline's consumer groups (<app_id> and <app_id>-trainer unless --group is "
            "given), sampled several times so each partition gets a status: OK, WARN (lag not "
            "decreasing while offsets advance), STALL (offset not moving), STOP (no commit for longer "
            "than the window), REWIND (offset went back). Exit status 1 when a group is STALL, STOP "
            "or REWIND; 2 when a group named with --group is unknown to the broker (no member, no "
            "committed offset), as for any usage error. The trainer reads with manual assignment, "
            "so the broker counts no member for <app_id>-trainer: its state and members come from "
            "the live trainers' heartbeats in Redis (state Live, members_from: heartbeat)."
        ),
    )
    p.add_argument("--group", action="append", metavar="G", help="a group to report (repeatable)")
    p.add_argument(
        "--json", action="store_true", help="JSON: a list of groups (one line per round with --watch)"
    )
    p.add_argument("--watch", action="store_true", help="keep sampling and reprinting until interrupted")
    p.add_argument(
        "--interval", type=_positive_float, default=1.0, metavar="S", help="seconds between samples"
    )
    p.add_argument(
        "--samples",
        type=_count(1),
        default=3,
        metavar="K",
        help="samples to take without --watch (default 3)",
    )
    p.add_argument(
        "--window",
        type=_count(2),
        default=10,
        metavar="N",
        help="samples per partition evaluated (default 10)",
    )
    p.add_argument(
        "--message-age",
        action="store_true",
        help="LAG-SECONDS as the age of the oldest unconsumed message (one fetch per lagging partition)",
    )
    p.add_argument(
        "--metrics-port", type=int, default=None, metavar="PORT", help="with --watch: serve /metrics here"
    )
    p.set_defaults(handler=cmd_lag)


def report(
    evaluation: list[GroupLag], infos: dict[str, GroupInfo], window: LagWindow
) -> list[dict[str, Any]]:
    """The JSON form: one object per group, its partitions with their owners."""
    out = []
    for group in evaluation:
        info = infos.get(group.group, GroupInfo(group.group))
        data = group.to_dict()
        data["state"] = info.state
        data["members"] = info.members
        data["members_from"] = info.via
        if info.via != "broker":
            data["broker_state"] = info.broker_state
            data["broker_members"] = info.broker_members
        data["window"] = _window(group, window)
        for part, pdata in zip(group.partitions, data["partitions"], strict=True):
            owner = info.owner((part.topic, part.partition)) or _NOBODY
            pdata.update(consumer_id=owner.consumer_id, host=owner.host, client_id=owner.client_id)
        out.append(data)
    return out


def _window(group: GroupLag, window: LagWindow) -> dict[str, Any]:
    spans = [window.samples(group.group, p.topic, p.partition) for p in group.partitions]
    samples = max((len(s) for s in spans), default=0)
    span_ms = max((s[-1].at_ms - s[0].at_ms for s in spans if s), default=0)
    return {"samples": samples, "size": window.size, "span_s": round(span_ms / 1000, 3)}


def _seconds(value: float | None, method: str = "") -> str:
    if value is None:
        return "-"
    return (">=" if method == "lower_bound" else "") + f"{value:.1f}"


def _table_rows(rows: list[dict[str, Any]]) -> list[list[Any]]:
    return [
        [
            g["group"],
            p["topic"],
            p["partition"],
            p["committed"],
            p["log_end"],
            p["lag"],
            p["consumer_id"],
            p["host"],
            p["client_id"],
            _seconds(p["lag_seconds"], p["seconds_method"]),
            p["status"],
        ]
        for g in rows
        for p in g["partitions"]
    ]


def _members(g: dict[str, Any]) -> str:
    n = g["members"]
    text = "? members" if n is None else f"{n} member" + ("" if n == 1 else "s")
    if g.get("members_from") == "heartbeat":
        text += f" by heartbeat (broker: {g.get('broker_state') or '?'}, manual assignment)"
    return text


def group_line(g: dict[str, Any]) -> str:
    """One group's summary: status, total and slowest lag, state, members, window (and history)."""
    if not g["partitions"]:
        line = f"{g['group']}: {g['status']}: no committed offsets"
        if g.get("members"):  # e.g. a trainer that has not committed yet
            line += f"; state {g['state'] or '?'}, {_members(g)}"
    else:
        w = g["window"]
        slowest = max(
            (p for p in g["partitions"] if p["lag_seconds"] is not None),
            key=lambda p: p["lag_seconds"],
            default=None,
        )
        max_seconds = _seconds(slowest["lag_seconds"], slowest["seconds_method"]) if slowest else "-"
        line = (
            f"{g['group']}: {g['status']}: lag {g['total_lag']} on {len(g['partitions'])} partitions, "
            f"max {max_seconds} s; state {g['state'] or '?'}, {_members(g)}; "
            f"window {w['samples']}/{w['size']} samples over {w['span_s']:g} s"
        )
    if g.get("lag_history"):
        line += f"; history {sparkline(g['lag_history'], HISTORY)}"
    return line


def print_report(rows: list[dict[str, Any]]) -> None:
    """The columns of ``kafka-consumer-groups --describe``, LAG-SECONDS, STATUS; then a line per group."""
    table_rows = _table_rows(rows)
    if table_rows:
        print_table(COLUMNS, table_rows)
        print()
    for g in rows:
        print(group_line(g))


def watch_view(rows: list[dict[str, Any]], at: str) -> Any:
    """What ``lag --watch`` redraws in place on a terminal: the time, the table, a line per group."""
    from rich.console import Group
    from rich.text import Text

    parts: list[Any] = [Text(f"-- {at}", style="bold")]
    table_rows = _table_rows(rows)
    if table_rows:
        parts.append(table(COLUMNS, table_rows, styled=True))
    for g in rows:
        style = "red" if Status[g["status"]].is_error else ("yellow" if g["status"] == "WARN" else "")
        parts.append(Text(group_line(g), style=style))
    return Group(*parts)


def _remember(rows: list[dict[str, Any]], history: dict[str, deque[int | None]]) -> None:
    """Append each group's total lag to its history and attach the history to the row."""
    for g in rows:
        seen = history.setdefault(g["group"], deque(maxlen=HISTORY))
        seen.append(g["total_lag"] if g["partitions"] else None)
        g["lag_history"] = list(seen)


def unknown_groups(rows: list[dict[str, Any]], named: list[str]) -> list[str]:
    """Groups asked for by name that the broker does not know: no committed offset and no member.

    ``NOTFOUND`` with exit 0 hid typos (``--group privrec-trainr``) behind an empty report.
    """
    wanted = set(named)
    return [
        g["group"]
        for g in rows
        if g["group"] in wanted and g["status"] == Status.NOTFOUND.name and not g["members"]
    ]


def _exit_status(rows: list[dict[str, Any]]) -> int:
    return 1 if any(Status[g["status"]].is_error for g in rows) else 0


def cmd_lag(settings: Settings, args: argparse.Namespace) -> int:
    endpoints = resolve(settings)
    groups = list(dict.fromkeys(args.group)) if args.group else pipeline_groups(settings)
    admin = kafka_admin(endpoints)
    consumer = None
    server = None
    try:
        consumer = lag_consumer(endpoints)
        collector = LagCollector(
            admin,
            consumer,
            bootstrap=endpoints.kafka_bootstrap,
            client_options=endpoints.kafka_options,
            message_age=args.message_age,
            timeout_s=endpoints.request_timeout_s,
            liveness=trainer_liveness(settings, endpoints),
        )
        window = LagWindow(size=args.window)
        metrics = None
        if args.watch and args.metrics_port is not None:
            metrics = PipelineMetrics(CollectorRegistry(), sections={"lag"})
            server = serve_metrics(metrics.registry, port=args.metrics_port)
            print(f"metrics: http://127.0.0.1:{server.server_port}/metrics", file=sys.stderr)

        def round_() -> list[dict[str, Any]]:
            samples, infos = collector.sample(groups)
            window.extend(samples)
            evaluation = window.evaluate(groups)
            if metrics is not None:
                update_from_lag(metrics, evaluation)
            return report(evaluation, infos, window)

        first = True

        def checked_round() -> list[dict[str, Any]]:
            nonlocal first
            rows = round_()
            if first and args.group:
                unknown = unknown_groups(rows, groups)
                if unknown:
                    raise ConfigError(
                        "--group",
                        f"unknown consumer group: {', '.join(unknown)} (no member, no committed offset; "
                        f"the pipeline's groups: {', '.join(pipeline_groups(settings))})",
                    )
            first = False
            return rows

        next_at = time.monotonic()

        def pause() -> None:  # until the next tick; a slow round delays it, never shortens one
            nonlocal next_at
            next_at = max(next_at + args.interval, time.monotonic())
            time.sleep(max(0.0, next_at - time.monotonic()))

        if not args.watch:
            for i in range(args.samples):
                if i:
                    pause()
                rows = checked_round()
            if args.json:
                print_json(rows)
            else:
                print_report(rows)
            return _exit_status(rows)
        live = None
        if not args.json and interactive():  # redrawn in place; redirected, each round is printed
            from rich.live import Live

            live = Live(auto_refresh=False)
            live.start()
        history: dict[str, deque[int | None]] = {}
        try:
            while True:
                try:
                    rows = checked_round()
                except ServiceUnavailable as exc:  # keep watching: the broker may come back
                    print(f"privrec: error: {exc}", file=sys.stderr, flush=True)
                    pause()
                    continue
                _remember(rows, history)
                if args.json:
                    print(json.dumps(rows, separators=(",", ":")), flush=True)
                elif live is not None:
                    live.update(watch_view(rows, now_rfc3339()), refresh=True)
                else:
                    print(f"-- {now_rfc3339()}")
                    print_report(rows)
                    print(flush=True)
                pause()
        except KeyboardInterrupt:
            return 0
        finally:
            if live is not None:
                live.stop()
    finally:
        if server is not None:
            server.shutdown()
        if consumer is not None:
            consumer.close()
        admin.close()
