"""What ``privrec config show`` prints: every effective setting and where its value came from.

Settings are read from, highest precedence first, ``PRIVREC_*`` environment
variables, a ``.env`` file, ``privrec.toml`` (or ``PRIVREC_CONFIG_FILE``) and the
defaults (:mod:`pipeline.settings`). pydantic-settings merges them without
keeping track, so each source is read again here on its own and a setting's
source is the first of them that names it (or names a whole section holding it,
e.g. ``PRIVREC_KAFKA='{"…": …}'``). The caller adds ``embedded`` for the
addresses of the running embedded services, which no source holds.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic_settings import DotEnvSettingsSource, EnvSettingsSource, TomlConfigSettingsSource

from pipeline.settings import Settings

__all__ = ["SOURCES", "Source", "env_name", "flatten", "setting_sources"]

Source = Literal["env", ".env", "file", "default", "embedded"]
SOURCES: tuple[Source, ...] = ("env", ".env", "file", "default", "embedded")
"""Where a value can come from, most precedent first (``embedded``: the state dir's running service)."""


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"kafka": {"acks": "all"}}`` as ``{"kafka.acks": "all"}``; lists and scalars are leaves."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, path + "."))
        else:
            out[path] = value
    return out


def env_name(path: str) -> str:
    """The environment variable of a dotted setting: ``kafka.acks`` -> ``PRIVREC_KAFKA__ACKS``."""
    return "PRIVREC_" + path.upper().replace(".", "__")


def _names(data: Mapping[str, Any], path: str) -> bool:
    """Whether the source data ``data`` sets ``path`` or a section that holds it."""
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, Mapping):
            return False
        match = next((k for k in node if str(k).lower() == part), None)
        if match is None:
            return False
        node = node[match]
        if not isinstance(node, Mapping):
            return True
    return True


def setting_sources(paths: list[str]) -> dict[str, Source]:
    """The source of each dotted setting in ``paths`` (module docstring), read from the process's
    environment and working directory as :func:`pipeline.settings.load_settings` reads them."""
    toml = Path(os.environ.get("PRIVREC_CONFIG_FILE", "privrec.toml"))
    read: list[tuple[Source, Mapping[str, Any]]] = [
        ("env", EnvSettingsSource(Settings)()),
        (".env", DotEnvSettingsSource(Settings)()),
        ("file", TomlConfigSettingsSource(Settings, toml_file=toml)()),
    ]
    out: dict[str, Source] = {}
    for path in paths:
        out[path] = next((name for name, data in read if _names(data, path)), "default")
    return out
