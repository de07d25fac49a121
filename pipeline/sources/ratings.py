"""Readers for the rating datasets replayed as playback events.

Ids stay the dataset's own ids as strings (MovieLens user ``"196"``, movie
``"242"``): no prefixing, so a replayed event maps straight back to its row
and the two MovieLens releases keep their own id spaces.

The datasets are GroupLens research data that may not be redistributed, so
they are never copied into the repository: they are read from
:func:`dataset_root` (``$PRIVREC_DATASETS``, else ``../shared/datasets`` next
to the repository), and every missing file is a :class:`ConfigError`.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

from pipeline.errors import ConfigError

__all__ = [
    "FORMATS",
    "Rating",
    "dataset_path",
    "dataset_root",
    "read_ratings",
    "read_titles",
]

FORMATS = ("movielens", "csv", "interactions")
"""Formats :func:`read_ratings` understands: MovieLens (100k or latest-small), privrec csv, and
generic interaction logs without ratings (plays, listens, clicks)."""

_ENV_VAR = "PRIVREC_DATASETS"
_REPO_ROOT = Path(__file__).resolve().parents[2]
_CSV_HEADER = ["user_id", "content_id", "weight", "timestamp"]
_LOG_HEADER = ["user_id", "content_id", "timestamp"]  # then optionally ",weight" (default 1)
_CSV_TITLES = "titles.csv"
_ML100K_RATINGS, _ML100K_TITLES = "u.data", "u.item"
_MLSMALL_RATINGS, _MLSMALL_TITLES = "ratings.csv", "movies.csv"
_MLSMALL_HEADER = ["userId", "movieId", "rating", "timestamp"]


class Rating(NamedTuple):
    """One (user, title, weight, time) interaction: a star rating or an implicit weight.

    A ``NamedTuple`` because readers build 100k of them and they are never mutated.
    """

    user_id: str
    content_id: str
    weight: float
    timestamp_s: int


def dataset_root(environ: Mapping[str, str] | None = None) -> Path:
    """The folder holding the datasets: ``$PRIVREC_DATASETS``, else ``<repo>/../shared/datasets``."""
    env = os.environ if environ is None else environ
    configured = env.get(_ENV_VAR)
    if configured:
        return Path(configured).expanduser()
    return (_REPO_ROOT.parent / "shared" / "datasets").resolve()


def dataset_path(name: str, environ: Mapping[str, str] | None = None) -> Path:
    """``dataset_root() / name``, e.g. ``dataset_path("movielens-100k")``."""
    return dataset_root(environ) / name


def read_ratings(path: str | os.PathLike[str], fmt: str) -> list[Rating]:
    """Read every rating of a dataset, in file order.

    Args:
        path: for ``"movielens"`` the 100k folder or its ``u.data``, or the
            latest-small folder or its ``ratings.csv`` (detected); for
            ``"csv"`` a file with header ``user_id,content_id,weight,timestamp``; for
            ``"interactions"`` a log with header ``user_id,content_id,timestamp[,weight]``
            (each row one play, listen or click; weight 1 when absent).
        fmt: one of :data:`FORMATS`.

    Raises:
        ConfigError: the file is missing, the format unknown or a row malformed
            (the message names the file and line, never the row's content).
    """
    source = _ratings_file(Path(path), fmt)
    try:
        if source.name == _ML100K_RATINGS:
            return _read_rows(source, _ml100k_rows(source))
        if fmt == "movielens":
            return _read_rows(source, _csv_rows(source, _MLSMALL_HEADER))
        if fmt == "interactions":
            return _read_rows(source, _log_rows(source))
        return _read_rows(source, _csv_rows(source, _CSV_HEADER))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("dataset", f"cannot read {source}: {type(exc).__name__}") from exc


def read_titles(path: str | os.PathLike[str], fmt: str) -> dict[str, str]:
    """``content_id -> title`` from the dataset's metadata file, or ``{}`` when it has none.

    The metadata file sits beside the ratings: ``u.item`` (latin-1, ``|``-separated)
    for MovieLens 100k, ``movies.csv`` for latest-small, ``titles.csv``
    (``content_id,title``) for privrec csv.
    """
    source = _ratings_file(Path(path), fmt)
    if source.name == _ML100K_RATINGS:
        meta = source.with_name(_ML100K_TITLES)
        if not meta.is_file():
            return {}
        with meta.open(encoding="latin-1", newline="") as fh:
            return {row[0]: row[1] for row in csv.reader(fh, delimiter="|") if len(row) > 1}
    meta = source.with_name(_MLSMALL_TITLES if fmt == "movielens" else _CSV_TITLES)
    if not meta.is_file():
        return {}
    with meta.open(encoding="utf-8", newline="") as fh:
        rows = csv.reader(fh)
        next(rows, None)
        return {row[0]: row[1] for row in rows if len(row) > 1}


def _ratings_file(path: Path, fmt: str) -> Path:
    if fmt not in FORMATS:
        raise ConfigError("dataset", f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if fmt == "movielens" and path.is_dir():
        for name in (_ML100K_RATINGS, _MLSMALL_RATINGS):
            if (path / name).is_file():
                return path / name
        raise ConfigError("dataset", f"{path} holds neither {_ML100K_RATINGS} nor {_MLSMALL_RATINGS}")
    if not path.is_file():
        raise ConfigError("dataset", f"{path} does not exist (set {_ENV_VAR} to the datasets folder)")
    return path


def _ml100k_rows(source: Path) -> list[list[str]]:
    with source.open(encoding="latin-1") as fh:
        return [line.split("\t") for line in fh if line.strip()]


def _csv_rows(source: Path, header: list[str]) -> list[list[str]]:
    with source.open(encoding="utf-8", newline="") as fh:
        rows = csv.reader(fh)
        found = [cell.strip() for cell in next(rows, [])]
        if found != header:
            raise ConfigError("dataset", f"{source}: header must be {','.join(header)}")
        return [row for row in rows if row]


def _log_rows(source: Path) -> list[list[str]]:
    """Interaction-log rows reordered as ``user, item, weight, timestamp`` (weight ``1`` when absent)."""
    with source.open(encoding="utf-8", newline="") as fh:
        rows = csv.reader(fh)
        found = [cell.strip() for cell in next(rows, [])]
        if found not in (_LOG_HEADER, [*_LOG_HEADER, "weight"]):
            raise ConfigError("dataset", f"{source}: header must be {','.join(_LOG_HEADER)}[,weight]")
        width = len(found)
        # a row of the wrong width becomes one that cannot unpack, so that the reader names its line
        return [
            _as_rating_row(row) if len(row) == width else [*row, "", "", "", "", ""][:5]
            for row in rows
            if row
        ]


def _as_rating_row(row: list[str]) -> list[str]:
    """``user, item, timestamp[, weight]`` → ``user, item, weight, timestamp``."""
    return [row[0], row[1], row[3] if len(row) > 3 else "1", row[2]]


def _read_rows(source: Path, rows: list[list[str]]) -> list[Rating]:
    """Convert rows in one fast pass; on any doubt, redo it row by row to name the bad line."""
    try:
        out = [Rating(user, item, float(weight), int(ts)) for user, item, weight, ts in rows]
    except ValueError:
        return _read_rows_checked(source, rows)
    if all(r.user_id and r.content_id and 0.0 <= r.weight < math.inf for r in out):
        return out
    return _read_rows_checked(source, rows)


def _read_rows_checked(source: Path, rows: list[list[str]]) -> list[Rating]:
    out: list[Rating] = []
    for line_no, row in enumerate(rows, start=1):
        try:
            user, item, weight, ts = row
            rating = Rating(user, item, float(weight), int(float(ts)))
        except ValueError:
            raise ConfigError("dataset", f"{source}: malformed row {line_no}") from None
        if (
            not (math.isfinite(rating.weight) and rating.weight >= 0.0)
            or not rating.user_id
            or not rating.content_id
        ):
            raise ConfigError("dataset", f"{source}: row {line_no} needs ids and a weight >= 0")
        out.append(rating)
    return out
