"""The titles' names a replay used, kept in the state dir so ``privrec recs`` shows them as ``demo`` does.

Recommendations carry catalogue ids only (``c0007``, a MovieLens id); the names
come from the dataset (or the synthetic audience) a replay read. Every replay
(``privrec replay``, ``privrec demo``, ``eval``) merges its ``content_id -> title``
map into ``<state_dir>/titles/<app_id>.json`` (0600, written atomically); readers
fall back to the id for a title the file does not name. Titles are catalogue
data, never about a viewer.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path

from pipeline.files import private_dir, write_private

__all__ = ["load_titles", "save_titles", "titles_path"]

log = logging.getLogger(__name__)


def titles_path(state_dir: Path, app_id: str) -> Path:
    """Where the titles of deployment ``app_id`` are kept."""
    return Path(state_dir) / "titles" / f"{app_id}.json"


def load_titles(state_dir: Path, app_id: str) -> dict[str, str]:
    """The saved ``content_id -> title`` map; empty when none was saved or it is unreadable."""
    path = titles_path(state_dir, app_id)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        log.warning("unreadable titles file in the state dir (%s); showing ids", path.name)
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): str(v) for k, v in data.items()}


def save_titles(state_dir: Path, app_id: str, titles: Mapping[str, str]) -> None:
    """Merge ``titles`` into the saved map (a later replay's name for an id wins)."""
    if not titles:
        return
    path = titles_path(state_dir, app_id)
    private_dir(path.parent)
    merged = load_titles(state_dir, app_id) | dict(titles)
    write_private(path, json.dumps(merged, ensure_ascii=False, sort_keys=True))
