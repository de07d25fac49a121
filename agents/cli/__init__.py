"""The ``privrec`` command line: ``privrec COMMAND [options]``.

Each module registers its sub-commands; settings are read once here, at the
edge, and handed to the command. Expected failures (a :class:`PrivrecError`)
print one line naming the problem and exit with status 2, never a traceback;
so do usage errors, after the usage of the sub-command they belong to.
Unknown ``PRIVREC_*`` variables get one warning line each (the name, never the value).
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
    models,
    ops,
    receipts,
    recs,
    rights,
    services,
    stream,
    train,
    trending,
)
from pipeline.embedded.registry import register_process
from pipeline.errors import PrivrecError
from pipeline.settings import load_settings, unknown_env_names

__all__ = ["build_parser", "main", "version"]

COMMAND_MODULES = (
    services, stream, train, models, trending, recs, gateway, rights, receipts, ops, demo, evaluate, bench,
    audit,
)  # fmt: skip

UNREGISTERED = frozenset({"up", "down", "config", "token"})
"""Commands that do not register in the state dir: the lifecycle itself and those touching no service."""


def version() -> str:
    """The installed distribution's version, else the checkout's ``pyproject.toml``."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("privrec")
    except PackageNotFoundError:
        import tomllib
        from pathlib import Path

        pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
        try:
            return str(tomllib.loads(pyproject.read_text())["project"]["version"])
        except (OSError, KeyError, ValueError):
            return "unknown"


class _Parser(argparse.ArgumentParser):
    """Sub-commands without sub-commands of their own refuse unknown arguments themselves,
    so the error comes with *their* usage (argparse hands extras up to ``privrec``'s)."""

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        ns, extras = super().parse_known_args(args, namespace)
        is_leaf = not any(isinstance(a, argparse._SubParsersAction) for a in self._actions)
        if extras and is_leaf and self.prog != "privrec":
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return ns, extras


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="privrec",
        description="Privacy-first personalisation pipeline: consent, redaction, windows, ALS.",
    )
    parser.add_argument("--version", action="version", version=f"privrec {version()}")
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
    for name in unknown_env_names():
        print(
            f"privrec: warning: unknown setting {name} ignored (see `privrec config show`)", file=sys.stderr
        )
    try:
        settings = load_settings()
        if args.command not in UNREGISTERED:  # so that `privrec down` can stop it
            register_process(settings.state_dir, args.command)
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
