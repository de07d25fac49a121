"""``privrec demo``: the whole product on the embedded services, in one command."""

from __future__ import annotations

import argparse
from typing import Any

from agents.cli import services
from pipeline.embedded import EmbeddedServices
from pipeline.settings import Settings

__all__ = ["register"]


def register(sub: Any) -> None:
    p = sub.add_parser("demo", help="run the pipeline end to end on the embedded services")
    p.add_argument("--keep", action="store_true", help="leave the services running afterwards")
    p.set_defaults(handler=cmd_demo)


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    started_here = not EmbeddedServices(settings.state_dir).records()
    services.cmd_up(settings, args)
    try:
        services.cmd_topics_create(settings, args)
        return services.cmd_smoke(settings, args)
    finally:
        if started_here and not args.keep:
            services.cmd_down(settings, args)
