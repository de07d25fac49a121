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
from pipeline.privacy.pseudonym import Pseudonymizer, parse_keys
from pipeline.settings import Settings

__all__ = ["DEV_KEY_FILE", "ensure_dev_key", "key_source", "load_key_text", "pseudonymizer"]

DEV_KEY_FILE = "pseudonym.keys"


def key_source(settings: Settings) -> str:
    """Describe (without secrets) where the keys will be read from."""
    if settings.pseudonym.keys is not None:
        return "env/config (pseudonym.keys)"
    if settings.pseudonym.key_file is not None:
        return f"file {settings.pseudonym.key_file}"
    dev = settings.state_dir / DEV_KEY_FILE
    return f"development key file {dev}" if dev.exists() else "none configured"


def load_key_text(settings: Settings) -> str:
    """The configured key text; raises :class:`ConfigError` naming the setting."""
    if settings.pseudonym.keys is not None:
        return settings.pseudonym.keys.get_secret_value()
    path = settings.pseudonym.key_file
    setting = "pseudonym.key_file (PRIVREC_PSEUDONYM__KEY_FILE)"
    if path is None:
        path = settings.state_dir / DEV_KEY_FILE
        setting = "pseudonym.keys (PRIVREC_PSEUDONYM__KEYS)"
        if not path.exists():
            raise ConfigError(
                setting,
                "no pseudonym key configured: set it or PRIVREC_PSEUDONYM__KEY_FILE, "
                "or run `privrec up` to create a development key",
            )
    try:
        return Path(path).read_text()
    except FileNotFoundError:
        raise ConfigError(setting, f"key file not found: {path}") from None
    except OSError as exc:
        raise ConfigError(setting, f"key file unreadable: {path} ({exc.strerror})") from None


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
    return Pseudonymizer(
        parse_keys(load_key_text(settings)), casefold_user_ids=settings.pseudonym.casefold_user_ids
    )
