"""``privrec config show``: the effective settings, the embedded services' addresses, and where
each value came from (:mod:`pipeline.ops.config`).

Text: one row per setting (``SETTING VALUE SOURCE``). ``--json``:
``{"values": <the settings as before, nested>, "sources": {"kafka.bootstrap_servers": "embedded",
...}, "files": {...}}``. Secrets are masked in both; the embedded Redis's password is never shown.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from agents.cli._output import print_json, print_table
from pipeline.embedded import EmbeddedServices
from pipeline.ops.config import flatten, setting_sources
from pipeline.settings import Settings

__all__ = ["cmd_config_show", "effective_config"]


def effective_config(settings: Settings) -> dict[str, Any]:
    """Values (masked), the source of each dotted setting, and the files that were read."""
    values = settings.masked()
    sources: dict[str, str] = dict(setting_sources(list(flatten(values))))
    embedded = EmbeddedServices(settings.state_dir)
    if settings.kafka.embedded and (kafka := embedded.running("kafka")) is not None:
        values["kafka"]["bootstrap_servers"] = kafka.display_url
        sources["kafka.bootstrap_servers"] = "embedded"
    if settings.redis.embedded and (redis := embedded.running("redis")) is not None:
        values["redis"]["url"] = redis.display_url  # password masked
        sources["redis.url"] = "embedded"
    toml = Path(os.environ.get("PRIVREC_CONFIG_FILE", "privrec.toml"))
    files = {
        ".env": str(Path(".env").resolve()) if Path(".env").is_file() else None,
        "file": str(toml.resolve()) if toml.is_file() else None,
    }
    return {"values": values, "sources": sources, "files": files}


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def cmd_config_show(settings: Settings, args: argparse.Namespace) -> int:
    shown = effective_config(settings)
    if args.json:
        print_json(shown)
        return 0
    sources = shown["sources"]
    print_table(
        ["SETTING", "VALUE", "SOURCE"],
        [[path, _cell(value), sources[path]] for path, value in flatten(shown["values"]).items()],
    )
    for name, path in shown["files"].items():
        if path:
            print(f"{name}: {path}")
    if settings.kafka.embedded and sources.get("kafka.bootstrap_servers") != "embedded":
        print("kafka: embedded, not running (run `privrec up`)")
    if settings.redis.embedded and sources.get("redis.url") != "embedded":
        print("redis: embedded, not running (run `privrec up`)")
    return 0
