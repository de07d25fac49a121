"""``privrec recs|controls``: read recommendations and set viewer controls (HTTP: ``privrec gateway``)."""

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

__all__ = ["n_items", "redis_url", "register"]

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
    p.add_argument("--json", action="store_true", help="an object mapping each user id to its response")
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


def cmd_recs(settings: Settings, args: argparse.Namespace) -> int:
    import redis

    from pipeline.serving import Layout, Reader

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
    if args.json:
        print_json({user: msgspec.to_builtins(responses[user]) for user in users})
        return 0
    for user in dict.fromkeys(users):
        r = responses[user]
        kind = "personalised" if r.personalized else "not personalised"
        model = f" model={r.model}" if r.model else ""
        print(f"{user}: source={r.source} version={r.version or '-'}{model} ({kind})")
        if r.items:
            print_table(
                ["#", "CONTENT", "SCORE", "BECAUSE"],
                [
                    [rank, item.content_id, f"{item.score:.4f}", ", ".join(item.because) or "-"]
                    for rank, item in enumerate(r.items, start=1)
                ],
            )
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
    if args.show or not change:
        print_json({"personalization": controls.personalization, "hidden": sorted(controls.hidden)})
    else:
        print(f"controls: personalization={controls.personalization}, {len(controls.hidden)} hidden title(s)")
    return 0
