"""Scratch deployments (``privrec eval``, the benches): their topics are deleted when the run ends."""

from __future__ import annotations

from typing import Any

from pipeline.settings import Settings

__all__ = ["drop_scratch_topics"]


def drop_scratch_topics(admin: Any, settings: Settings) -> None:
    """Delete every topic under the run's prefix or app id (best effort); closes ``admin``."""
    try:
        names = [t for t in admin.list_topics() if t.startswith((settings.topic_prefix, settings.app_id))]
        if names:
            admin.delete_topics(names)
    except Exception:  # noqa: S110 - cleanup only; the result stands either way
        pass
    finally:
        admin.close()
