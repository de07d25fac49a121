"""Files privrec writes into its state dir: atomically, and readable by their owner only.

Exports, the snapshot of the embedded broker, Redis's password and config, the
port and process registries all go through :func:`write_private`: a temporary
file next to the target is created with mode 0600 (never a moment at 0644),
written, fsynced and renamed over the target, so a reader sees the old file or
the whole new one, and a crash leaves no half-written proof or secret.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

__all__ = ["private_dir", "write_private"]


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if needed and make it ``0700``; returns it."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def write_private(path: Path, data: str | bytes, *, sync_dir: bool = False) -> None:
    """Replace ``path`` atomically with ``data`` (text as UTF-8), mode 0600 from the first byte.

    With ``sync_dir`` the directory is fsynced after the rename too, so the new
    name survives a power cut (the broker snapshot needs that; a registry entry does not).
    """
    path = Path(path)
    body = data.encode("utf-8") if isinstance(data, str) else data
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(body)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if sync_dir:
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
