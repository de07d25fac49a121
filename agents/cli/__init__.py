"""The ``privrec`` command line: ``privrec COMMAND [options]``.

Each module registers its sub-commands; settings are read once here, at the
edge, and handed to the command. Expected failures (a :class:`PrivrecError`)
print one line naming the problem and exit with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence

from agents.cli import (
    audit,
    bench,
    demo,
    evaluate,
    gateway,
    ops,
    recs,
    rights,
    services,
    stream,
    train,
    trending,
)
from pipeline.errors import PrivrecError
from pipeline.settings import load_settings

__all__ = ["build_parser", "main"]

COMMAND_MODULES = (
    services, stream, train, trending, recs, gateway, rights, ops, demo, evaluate, bench, audit,
)  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="privrec",
        description="Privacy-first personalisation pipeline: consent, redaction, windows, ALS.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv: debug)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.verbose < 2:  # client libraries are chatty about normal events
        for name in ("kafka", "aiokafka"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    # SIGTERM unwinds like Ctrl-C, so commands that started services or children clean up
    # (`privrec worker` replaces this with Faust's own handler).
    signal.signal(signal.SIGTERM, _terminate)
    try:
        settings = load_settings()
        return int(args.handler(settings, args) or 0)
    except PrivrecError as exc:
        print(f"privrec: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `privrec config show | head`
        return 0


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
