"""``privrec gateway`` and ``privrec token issue``: run the HTTP edge, mint development tokens."""

from __future__ import annotations

import argparse
import re
import sys
from urllib.parse import quote

from agents.cli._output import print_json
from pipeline.errors import ConfigError
from pipeline.settings import Settings

__all__ = ["parse_ttl", "register"]

_TTL = re.compile(r"^(\d+)([smhd]?)$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_ttl(text: str) -> int:
    """``90``, ``90s``, ``15m``, ``1h``, ``7d`` → seconds."""
    match = _TTL.match(text.strip())
    if match is None or int(match.group(1)) == 0:
        raise argparse.ArgumentTypeError("expected a positive duration such as 90s, 15m, 1h or 7d")
    return int(match.group(1)) * _UNIT_S[match.group(2)]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("gateway", help="run the authenticated HTTP gateway (events, recommendations, rights)")
    p.add_argument("--host", default=None, help="default: gateway.host")
    p.add_argument("--port", type=int, default=None, help="default: gateway.port (0 = a free port)")
    p.set_defaults(handler=cmd_gateway)

    token = sub.add_parser("token", help="development bearer tokens for the gateway")
    tsub = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    p = tsub.add_parser("issue", help="mint a token signed with the embedded HS256 key")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", help="a viewer id (the token's subject)")
    who.add_argument("--service", help="a service name")
    p.add_argument("--scope", nargs="+", required=True, metavar="S", help="e.g. events:write recs:read:self")
    p.add_argument("--ttl", type=parse_ttl, default=3600, help="lifetime, e.g. 15m, 1h (default 1h)")
    p.add_argument("--json", action="store_true", help="print {token, url} as JSON")
    p.set_defaults(handler=cmd_token_issue)


def cmd_token_issue(settings: Settings, args: argparse.Namespace) -> int:
    from pipeline.gateway.auth import issue_token

    scopes = [s for item in args.scope for s in item.replace(",", " ").split()]
    token = issue_token(settings, user=args.user, service=args.service, scopes=scopes, ttl_s=args.ttl)
    if not args.json:
        print(token)
        return 0
    out = {"token": token}
    if args.user is not None:
        out["url"] = f"{settings.gateway.public_url.rstrip('/')}/privacy#token={quote(token, safe='')}"
    print_json(out)
    return 0


def cmd_gateway(settings: Settings, args: argparse.Namespace) -> int:
    from agents.gateway.process import run_gateway

    host = args.host or settings.gateway.host
    port = settings.gateway.port if args.port is None else args.port
    if not 0 <= port < 65536:
        raise ConfigError("--port", "must be between 0 and 65535")

    def started(url: str) -> None:
        print(f"gateway: listening on {url}", flush=True)

    run_gateway(settings, host, port, started)
    print("gateway: stopped", file=sys.stderr)
    return 0
