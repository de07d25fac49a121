"""Stable ports per state dir: ``up`` reuses the ports of the last run when they are free.

Clients that outlived a restart (a gateway, a worker started elsewhere) and
every address written down (a browser tab, a Prometheus target) keep working
when the services come back on the same ports. A port another program took
meanwhile is replaced by a free one, and the new one is remembered.
"""

from __future__ import annotations

import errno
import json
import socket
from pathlib import Path

from pipeline.embedded.process import free_port
from pipeline.files import write_private

__all__ = ["PORTS_FILE", "choose_port", "port_free", "remembered_ports"]

PORTS_FILE = "ports.json"


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether ``host:port`` can be bound now (SO_REUSEADDR, as servers bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def remembered_ports(state_dir: Path) -> dict[str, int]:
    """``{service: port}`` of earlier runs (empty when none or unreadable)."""
    try:
        data = json.loads((state_dir / PORTS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): int(v) for k, v in data.items() if isinstance(v, int) and 0 < v < 65536}


def choose_port(state_dir: Path, name: str) -> int:
    """The remembered port of ``name`` when free, else a new free one (remembered from now on)."""
    ports = remembered_ports(state_dir)
    port = ports.get(name)
    if port is None or not port_free(port):
        port = free_port()
        ports[name] = port
        state_dir.mkdir(parents=True, exist_ok=True)
        write_private(state_dir / PORTS_FILE, json.dumps(ports, indent=2, sort_keys=True))
    return port
