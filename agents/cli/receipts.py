"""``privrec receipts``: every erasure request, where it stands, and its receipt."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from agents.cli._output import positive_seconds, print_json, print_table, rfc3339
from agents.receipts import since_ms
from pipeline.errors import ServiceUnavailable
from pipeline.settings import Settings

__all__ = ["register"]


def register(sub: Any) -> None:
    p = sub.add_parser(
        "receipts", help="erasure requests, the stages each has confirmed or awaits, and their receipts"
    )
    p.add_argument(
        "--since", type=since_ms, metavar="T", help="requested at or after T (RFC 3339 or 24h, 7d)"
    )
    p.add_argument("--pending", action="store_true", help="only requests without a receipt")
    p.add_argument("--json", action="store_true", help="one object per request, receipts in full")
    p.add_argument(
        "--timeout", type=positive_seconds, default=60.0, help="seconds to read the topics (default 60)"
    )
    p.set_defaults(handler=cmd_receipts)


def _rfc3339(ms: int | None) -> str | None:
    return rfc3339(ms, "milliseconds")


def cmd_receipts(settings: Settings, args: argparse.Namespace) -> int:
    from agents.receipts import collect_standings
    from pipeline.services.connect import resolve

    try:
        endpoints = resolve(settings)
    except ServiceUnavailable as exc:
        print(f"privrec: warning: {exc}; listing the proof ledger only", file=sys.stderr)
        endpoints = None
    try:
        standings, bad = collect_standings(settings, endpoints, args.timeout)
    except TimeoutError:
        raise ServiceUnavailable(
            f"receipts: could not read the erasure topics within {args.timeout:g} s (--timeout)"
        ) from None
    rows = standings.rows(since_ms=args.since, pending_only=args.pending)
    if bad:
        print(f"privrec: warning: {bad} unreadable records or ledger lines skipped", file=sys.stderr)
    if args.json:
        out = []
        for r in rows:
            d = r.to_dict()
            d["requested_at"] = _rfc3339(r.requested_at)
            d["completed_at"] = _rfc3339(d["completed_at"])
            d["stages"] = {s: _rfc3339(at) for s, at in d["stages"].items()}
            out.append(d)
        print_json(out)
        return 0
    if not rows:
        print("no erasure requests" + (" pending" if args.pending else ""))
        return 0
    table = []
    for r in rows:
        if r.complete:
            assert r.receipt is not None
            took = (r.receipt["completed_at"] - r.requested_at) / 1000
            status = f"complete in {took:.1f} s"
        else:
            status = "pending: " + ", ".join(r.pending)
        done = " ".join(f"{s}+{(at - r.requested_at) / 1000:.1f}s" for s, at in sorted(r.stages.items()))
        table.append(
            [
                r.request_id,
                r.pseudonym or "-",
                _rfc3339(r.requested_at),
                done or "-",
                status,
                ",".join(sorted(r.sources)),
            ]
        )
    print_table(["REQUEST", "PSEUDONYM", "REQUESTED", "STAGES", "STATUS", "FROM"], table)
    pending = sum(1 for r in rows if not r.complete)
    print(f"{len(rows)} requests, {len(rows) - pending} with a receipt, {pending} pending")
    return 0
