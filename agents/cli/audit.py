"""``privrec audit``: the ethics audit of the live deployment (HTML and JSON); see agents/audit.py."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from agents.cli._output import print_json
from pipeline.errors import ConfigError
from pipeline.files import write_private
from pipeline.settings import Settings

__all__ = ["register"]


def register(sub: Any) -> None:
    p = sub.add_parser("audit", help="ethics audit: model, fairness, consent, data, privacy budget")
    p.add_argument("--out", type=Path, help="also write the HTML report here")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--latest", action="store_true", help="render the latest stored audit instead of computing"
    )
    p.set_defaults(handler=cmd_audit)


def cmd_audit(settings: Settings, args: argparse.Namespace) -> int:
    from agents.audit import collect_audit, latest_audit, write_audit
    from pipeline.audit import render_html

    if args.latest:
        found = latest_audit(settings)
        if found is None:
            raise ConfigError("audit --latest", "no stored audit in the state dir yet")
        report, path = found
    else:
        report = collect_audit(settings)
        path = write_audit(settings, report)
    if args.out is not None:
        write_private(args.out, render_html(report))
        path = args.out
    if args.json:
        print_json(report)
        return 0
    flagged = [a for a in report["attention"] if a["flagged"]]
    model = report.get("model") or {}
    print(f"ethics audit of model {model.get('version', '-')}: {len(flagged)} figure(s) need attention")
    for key in (
        "coverage_at_10",
        "gini_exposure",
        "arp",
        "popularity_lift",
        "novelty",
        "personalisation_at_10",
        "ndcg_at_10",
    ):
        print(f"  {key:<24} {report.get(key)}")
    for a in flagged:
        print(f"  ATTENTION {a['figure']} = {a['value']} ({a['rule']} {a['threshold']}): {a['why']}")
    print(f"report: {path}")
    return 0
