"""The published JSON Schema files of the privrec wire contract.

The ``*.json`` files beside this module are package data, generated from the
structs in :mod:`pipeline.wire` by ``python -m pipeline.wire.jsonschema``; do
not edit them by hand. They are here for producers and tooling in other
languages; privrec itself validates with the structs.
"""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any

__all__ = ["load", "names"]

_SUFFIX = ".json"


def names() -> list[str]:
    """Return the sorted schema names, e.g. ``["consent.v1", "dlq.v1", ...]``."""
    return sorted(
        entry.name[: -len(_SUFFIX)]
        for entry in files(__name__).iterdir()
        if entry.name.endswith(_SUFFIX) and entry.is_file()
    )


def load(name: str) -> dict[str, Any]:
    """Return a fresh copy of the schema document called ``name``.

    Raises:
        KeyError: ``name`` is not one of :func:`names` (checked first, so a
            name can never reach outside this package).
    """
    if name.endswith(_SUFFIX):
        name = name[: -len(_SUFFIX)]
    if name not in names():
        raise KeyError(name)
    text = files(__name__).joinpath(name + _SUFFIX).read_text(encoding="utf-8")
    document: dict[str, Any] = json.loads(text)
    return document
