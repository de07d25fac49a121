"""Where pseudonym keys come from: env, a key file, or a generated development key.

The text format (``key_id:secret`` items, oldest first) is parsed by
:func:`pipeline.privacy.pseudonym.parse_keys`. Key material never reaches logs
or error messages.
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

from pipeline.errors import ConfigError
from pipeline.privacy.pseudonym import Pseudonymizer, PseudonymKey, parse_keys
from pipeline.settings import Settings

__all__ = [
    "DEV_KEY_FILE",
    "MIN_KEY_BYTES",
    "ensure_dev_key",
    "key_source",
    "load_key_text",
    "load_keys",
    "pseudonymizer",
]

DEV_KEY_FILE = "pseudonym.keys"
MIN_KEY_BYTES = 32
"""HMAC-SHA256 keys of at least its output size (RFC 2104 §3); shorter ones can be guessed sooner."""

_ENV_SETTING = "pseudonym.keys (PRIVREC_PSEUDONYM__KEYS)"
_FILE_SETTING = "pseudonym.key_file (PRIVREC_PSEUDONYM__KEY_FILE)"


def key_source(settings: Settings) -> str:
    """Describe (without secrets) where the keys will be read from."""
    if settings.pseudonym.keys is not None:
        return "env/config (pseudonym.keys)"
    if settings.pseudonym.key_file is not None:
        return f"file {settings.pseudonym.key_file}"
    dev = settings.state_dir / DEV_KEY_FILE
    return f"development key file {dev}" if dev.exists() else "none configured"


def _key_file(settings: Settings) -> tuple[Path | None, str]:
    """The key file to read (None: keys come from the setting) and the setting to name."""
    if settings.pseudonym.keys is not None:
        return None, _ENV_SETTING
    if settings.pseudonym.key_file is not None:
        return Path(settings.pseudonym.key_file), _FILE_SETTING
    return settings.state_dir / DEV_KEY_FILE, _ENV_SETTING


def load_key_text(settings: Settings) -> str:
    """The configured key text; raises :class:`ConfigError` naming the setting.

    A key file must be private to its owner (no group or other permission bits):
    anyone who can read it can recompute every viewer's pseudonym.
    """
    if settings.pseudonym.keys is not None:
        return settings.pseudonym.keys.get_secret_value()
    path, setting = _key_file(settings)
    assert path is not None  # keys unset: a file
    if settings.pseudonym.key_file is None and not path.exists():
        raise ConfigError(
            setting,
            "no pseudonym key configured: set it or PRIVREC_PSEUDONYM__KEY_FILE, "
            "or run `privrec up` to create a development key",
        )
    try:
        with open(path) as fh:
            mode = os.fstat(fh.fileno()).st_mode
            if mode & 0o077:
                raise ConfigError(
                    setting,
                    f"key file {path} is readable by group or others (mode {mode & 0o777:o}): "
                    f"run chmod 600 {path}",
                )
            return fh.read()
    except FileNotFoundError:
        raise ConfigError(setting, f"key file not found: {path}") from None
    except OSError as exc:
        raise ConfigError(setting, f"key file unreadable: {path} ({exc.strerror})") from None


def load_keys(settings: Settings) -> list[PseudonymKey]:
    """The configured keys, oldest first; each secret at least :data:`MIN_KEY_BYTES` long."""
    path, setting = _key_file(settings)
    where = f"key file {path}" if path is not None else "the setting"
    try:
        keys = parse_keys(load_key_text(settings))
    except ConfigError as exc:
        if exc.setting == setting:
            raise
        raise ConfigError(setting, f"{where}: {exc.problem}") from None
    for key in keys:
        if len(key.secret) < MIN_KEY_BYTES:
            raise ConfigError(
                setting,
                f"{where}: key {key.key_id!r} has a {len(key.secret)}-byte secret; at least "
                f"{MIN_KEY_BYTES} bytes are required (e.g. dev:base64:$(head -c32 /dev/urandom | base64))",
            )
    return keys


def ensure_dev_key(settings: Settings) -> Path | None:
    """Create ``<state_dir>/pseudonym.keys`` (mode 0600) when no key is configured.

    Returns the path when a development key is (or already was) in use, None when
    the operator configured keys. Only meant for the embedded, single-machine setup.
    """
    if settings.pseudonym.keys is not None or settings.pseudonym.key_file is not None:
        return None
    path = settings.state_dir / DEV_KEY_FILE
    if not path.exists():
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        secret = base64.b64encode(secrets.token_bytes(32)).decode()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write("# privrec development pseudonym key: oldest first and the newest signs\n")
            fh.write(f"dev1:base64:{secret}\n")
    return path


def pseudonymizer(settings: Settings) -> Pseudonymizer:
    """The configured :class:`Pseudonymizer` (newest key signs, all keys look up)."""
    return Pseudonymizer(load_keys(settings), casefold_user_ids=settings.pseudonym.casefold_user_ids)
