"""``privrec recs|controls``: read recommendations and set viewer controls (HTTP: ``privrec gateway``).

``recs`` shows what the reader serves, with the titles' names the replays left in the state dir
(:mod:`pipeline.sources.titles`, as ``demo`` shows them), a ``status`` per user
(:data:`STATUSES`: an id the live model does not hold is ``unknown``, not silently given the
popular list) and one meaning per score column (:data:`SCORE_KINDS`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import msgspec

from agents.cli._output import print_json, print_table, user_id
from pipeline.embedded import EmbeddedServices
from pipeline.errors import ServiceUnavailable
from pipeline.keys import pseudonymizer
from pipeline.settings import Settings

__all__ = ["SCORE_KINDS", "STATUSES", "n_items", "recs_view", "redis_url", "register", "user_status"]

_MAX_N = 500  # pipeline.serving.MAX_N, repeated so `privrec --help` does not import redis


def n_items(text: str) -> int:
    """argparse type of ``--n``: an integer in 1..500."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 1 <= value <= _MAX_N:
        raise argparse.ArgumentTypeError(f"must be between 1 and {_MAX_N}")
    return value


def register(sub: Any) -> None:
    p = sub.add_parser("recs", help="recommendations for user ids, as the services get them")
    p.add_argument(
        "users", nargs="*", type=user_id, metavar="USER", help="user ids (raw ids: pseudonymised here)"
    )
    p.add_argument("--users-file", type=Path, help="a file of user ids, one per line ('-' for stdin)")
    p.add_argument("--n", type=n_items, default=10, help=f"items per user (1..{_MAX_N}, default 10)")
    p.add_argument(
        "--json",
        action="store_true",
        help="an object mapping each user id to its response, with status and per-item title and score_kind",
    )
    p.set_defaults(handler=cmd_recs)

    p = sub.add_parser("controls", help="show or change a viewer's personalisation controls")
    p.add_argument("user", type=user_id, metavar="USER")
    p.add_argument(
        "--personalization",
        choices=["full", "limited", "off"],
        help="full: whole history; limited: recent history only; off: popular titles only",
    )
    p.add_argument("--hide", nargs="+", default=[], metavar="CONTENT", help="never recommend these titles")
    p.add_argument("--unhide", nargs="+", default=[], metavar="CONTENT", help="allow these titles again")
    p.add_argument("--show", action="store_true", help="print the resulting controls as JSON")
    p.add_argument("--json", action="store_true", help="the same as --show")
    p.set_defaults(handler=cmd_controls)


def redis_url(settings: Settings) -> str:
    """The configured Redis, else the running embedded one (Kafka is not needed here)."""
    if settings.redis.url is not None:
        return settings.redis.url.get_secret_value()
    rec = EmbeddedServices(settings.state_dir).running("redis")
    if rec is None:
        raise ServiceUnavailable(
            "redis.url (PRIVREC_REDIS__URL) is unset and the embedded Redis is not "
            "running: run `privrec up` or set it"
        )
    return rec.url


def _read_users(args: argparse.Namespace) -> list[str]:
    users = list(args.users)
    if args.users_file is not None:
        text = sys.stdin.read() if str(args.users_file) == "-" else args.users_file.read_text()
        users += [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return users


STATUSES = ("personalized", "popular", "unknown", "none")
"""``status`` of a user in ``privrec recs``: the viewer's own list (possibly filled from the
fallback); a known viewer (recommendations or controls stored) served the fallback (popular or
DP trending list: personalisation off, limited without recent history); an id with no entry at
all in the live model (a typo, a viewer without consent to personalisation, or one never seen):
no list is shown; nothing published yet."""

SCORE_KINDS = {"model": "affinity", "popular": "viewers", "trending_dp": "viewers_dp"}
"""What an item's ``score`` is, by where the item came from: the model's predicted preference
(ALS: user and title factors' dot product; only comparable within one user's list), the number
of distinct viewers of the title (the model's popular list), or that count with DP noise (the
trending release)."""


def user_status(r: Any) -> str:
    """One of :data:`STATUSES` for a reader response."""
    if r.personalized:
        return "personalized"
    if r.source == "none":
        return "none"
    if r.model == "popular":  # no model passed the gate: everyone gets the labelled popular list
        return "popular"
    return "popular" if r.user is not None else "unknown"


def recs_view(r: Any, titles: dict[str, str]) -> dict[str, Any]:
    """A user's answer as ``recs`` prints it: the reader's response, its ``status``, and per
    item the ``title``, where it came from (``from``) and what its ``score`` is (``score_kind``).
    An unknown user's fallback list is not shown (its ``items`` are empty)."""
    status = user_status(r)
    data: dict[str, Any] = {"status": status, **msgspec.to_builtins(r)}
    data.pop("personal_items", None)
    if status == "unknown":
        data["items"] = []
        return data
    fallback = "trending_dp" if r.source == "trending_dp" or r.trending_day else "popular"
    items = []
    for rank, item in enumerate(r.items):
        origin = "model" if rank < r.personal_items else fallback
        items.append(
            {
                "content_id": item.content_id,
                "title": titles.get(item.content_id),
                "from": origin,
                "score": item.score,
                "score_kind": SCORE_KINDS[origin],
                "because": list(item.because),
                "because_titles": [titles.get(b, b) for b in item.because],
            }
        )
    data["items"] = items
    return data


def _headline(user: str, v: dict[str, Any]) -> str:
    status, version = v["status"], v["version"] or "-"
    if status == "unknown":
        return (
            f"{user}: unknown: no recommendations or controls under this id in the live model "
            f"({version}); no list shown (a service would get the non-personalised one)"
        )
    if status == "none":
        return f"{user}: none: nothing published yet (no model, no trending release)"
    if status == "popular":
        why = "; no model passed the quality gate" if v.get("model") == "popular" else ""
        return f"{user}: popular: not personalised ({v['source']} list{why}), model {version}"
    return f"{user}: personalized ({v['source']} list), model {version}"


def print_recs(users: list[str], views: dict[str, dict[str, Any]]) -> None:
    """One headline per user, then a table: one meaning per score column (:data:`SCORE_KINDS`)."""
    for user in dict.fromkeys(users):
        v = views[user]
        print(_headline(user, v))
        if not v["items"]:
            continue
        dp = any(it["from"] == "trending_dp" for it in v["items"])
        print_table(
            ["#", "TITLE", "CONTENT", "FROM", "AFFINITY", "VIEWERS-DP" if dp else "VIEWERS", "BECAUSE"],
            [
                [
                    rank,
                    it["title"] or "-",
                    it["content_id"],
                    it["from"],
                    f"{it['score']:.4g}" if it["score_kind"] == "affinity" else "-",
                    "-" if it["score_kind"] == "affinity" else f"{it['score']:.0f}",
                    ", ".join(it["because_titles"]) or "-",
                ]
                for rank, it in enumerate(v["items"], start=1)
            ],
        )


def cmd_recs(settings: Settings, args: argparse.Namespace) -> int:
    import redis

    from pipeline.serving import Layout, Reader
    from pipeline.sources.titles import load_titles

    try:
        users = _read_users(args)
    except OSError as exc:
        print(f"privrec: error: --users-file: {exc.strerror}: {args.users_file}", file=sys.stderr)
        return 2
    if not users:
        print("privrec: error: give at least one USER or --users-file", file=sys.stderr)
        return 2
    pz = pseudonymizer(settings)
    client = redis.Redis.from_url(redis_url(settings))
    try:
        responses = Reader(client, pz, Layout.from_settings(settings)).get_many(users, args.n)
    finally:
        client.close()
    titles = load_titles(settings.state_dir, settings.app_id)
    views = {user: recs_view(responses[user], titles) for user in users}
    if args.json:
        print_json(views)
    else:
        print_recs(users, views)
    return 0


def cmd_controls(settings: Settings, args: argparse.Namespace) -> int:
    import redis

    from pipeline.serving import Layout, get_controls, set_controls

    pz = pseudonymizer(settings)
    layout = Layout.from_settings(settings)
    change = args.personalization is not None or args.hide or args.unhide
    client = redis.Redis.from_url(redis_url(settings))
    try:
        candidates = pz.candidates(args.user)
        if change:
            controls = set_controls(
                client,
                layout,
                candidates,
                personalization=args.personalization,
                hide=args.hide,
                unhide=args.unhide,
            )
        else:
            controls = get_controls(client, layout, candidates)
    except redis.ConnectionError:
        raise ServiceUnavailable("redis: no answer from the recommendation cache") from None
    finally:
        client.close()
    if args.show or args.json or not change:
        print_json({"personalization": controls.personalization, "hidden": sorted(controls.hidden)})
    else:
        print(f"controls: personalization={controls.personalization}, {len(controls.hidden)} hidden title(s)")
    return 0
