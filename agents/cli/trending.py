"""``privrec trending``: the DP trending list, what it cost, what is left of the day's budget."""

from __future__ import annotations

import argparse
import time
from typing import Any

from agents.cli._output import positive_number, print_json, print_table
from agents.cli.recs import n_items
from pipeline.settings import Settings

__all__ = ["register", "trending_view"]


def _day(text: str) -> str:
    from pipeline.dp.bounding import day_start_ms

    try:
        day_start_ms(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a day (YYYY-MM-DD): {text!r}") from None
    return text


def register(sub: Any) -> None:
    p = sub.add_parser("trending", help="the differentially private trending list and the privacy budget")
    p.add_argument("--day", type=_day, help="UTC day YYYY-MM-DD (default: the latest released day)")
    p.add_argument("--n", type=n_items, default=20, help="titles shown (default 20)")
    p.add_argument(
        "--json", action="store_true", help="JSON: day, items, epsilon_spent, delta, budget_left, ..."
    )
    p.add_argument(
        "--release",
        action="store_true",
        help="release the day now (default: the last full UTC day), spending its budget; refused when spent",
    )
    p.add_argument(
        "--epsilon", type=positive_number, help="with --release: spend this much (default dp.epsilon_per_day)"
    )
    p.set_defaults(handler=cmd_trending)


def trending_view(records: list[Any], settings: Settings, day: str | None, n: int) -> dict[str, Any]:
    """The JSON document of ``privrec trending`` from the ledger's records (pure)."""
    from pipeline.dp.ledger import latest_release, releases, spent_by_day

    last = latest_release(records, day)
    day = day or (last.day if last is not None else None)
    eps_spent, delta_spent = spent_by_day(records).get(day, (0.0, 0.0)) if day else (0.0, 0.0)
    budget = settings.dp.epsilon_per_day
    return {
        "day": day,
        "items": [{"content_id": i.content_id, "noisy_count": i.count} for i in last.items[:n]]
        if last
        else [],
        "released": last is not None,
        "release_id": last.release_id if last else None,
        "mechanism": last.mechanism if last else None,
        "epsilon": last.epsilon if last else None,
        "threshold": last.threshold if last else None,
        "noise_scale": last.scale if last else None,
        "max_titles_per_viewer_day": settings.dp.max_titles_per_viewer_day,
        "epsilon_spent": eps_spent,
        "delta": delta_spent,
        "epsilon_budget": budget,
        "delta_budget": settings.dp.delta,
        "budget_left": max(0.0, budget - eps_spent),
        "releases": sum(1 for r in releases(records) if r.day == day),
    }


def cmd_trending(settings: Settings, args: argparse.Namespace) -> int:
    from agents.trending import ledger_store, release
    from pipeline.dp.service import due_day
    from pipeline.services.connect import resolve

    endpoints = resolve(settings)
    day = args.day
    if args.release:
        day = day or due_day(time.time(), 0.0)
        release(settings, day, epsilon=args.epsilon, endpoints=endpoints)
    store = ledger_store(settings, endpoints)
    try:
        records = store.read()
    finally:
        store.close()
    view = trending_view(records, settings, day, args.n)
    if args.json:
        print_json(view)
        return 0
    if not view["released"]:
        print(f"no DP trending release{' for ' + view['day'] if view['day'] else ''} yet")
    else:
        print(
            f"trending {view['day']} (epsilon {view['epsilon']:g}, threshold {view['threshold']}, "
            f"noise scale {view['noise_scale']:g}): {len(view['items'])} titles shown"
        )
        print_table(
            ["#", "content_id", "noisy count"],
            [(i + 1, it["content_id"], it["noisy_count"]) for i, it in enumerate(view["items"])],
        )
    if view["day"]:
        print(
            f"budget of {view['day']}: epsilon spent {view['epsilon_spent']:g} of {view['epsilon_budget']:g} "
            f"(left {view['budget_left']:g}), delta spent {view['delta']:g} of {view['delta_budget']:g}"
        )
    return 0
