"""Small output and argument helpers shared by the commands."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["positive_number", "positive_seconds", "print_json", "print_table", "user_id"]


def positive_number(text: str, unit: str = "") -> float:
    """argparse type: a number more than zero (``unit`` names it in the error)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0{unit}")
    return value


def positive_seconds(text: str) -> float:
    """argparse type of a ``--timeout``: seconds, more than zero."""
    return positive_number(text, " seconds")


def user_id(text: str) -> str:
    """argparse type of a USER argument: an empty (or blank) id is refused here, at the CLI,
    rather than erased, exported or consented for a viewer nobody is."""
    if not text.strip():
        raise argparse.ArgumentTypeError("a user id must not be empty")
    return text


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=False, default=str)
    sys.stdout.write("\n")


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
