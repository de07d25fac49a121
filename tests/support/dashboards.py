"""The provisioned Grafana dashboards and Prometheus config of compose/, read for the tests."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

COMPOSE = Path(__file__).resolve().parents[2] / "compose"
DASHBOARDS = COMPOSE / "grafana" / "dashboards"

_METRIC = re.compile(r"\b((?:privrec|process|python)_[a-z0-9_]+)\b")
_SUFFIXES = ("_total", "_created", "_bucket", "_sum", "_count", "_info")


def dashboards() -> dict[str, dict[str, Any]]:
    return {path.name: json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("*.json"))}


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(panel title, PromQL expression) for every target of every panel."""
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]


def metric_names(expr: str) -> set[str]:
    """The metric (or label-named-after-a-metric) identifiers an expression refers to."""
    return set(_METRIC.findall(expr))


def exported_names(text: str) -> set[str]:
    """Every family and sample name a /metrics page exports, with and without type suffixes."""
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
    return names


def is_exported(name: str, exported: set[str]) -> bool:
    if name in exported:
        return True
    return any(name.endswith(s) and name[: -len(s)] in exported for s in _SUFFIXES)
