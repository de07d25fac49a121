"""Pseudonym keys: a key file must be private and every secret at least 32 bytes."""

from __future__ import annotations

import base64
import os

import pytest

from pipeline.errors import ConfigError
from pipeline.keys import MIN_KEY_BYTES, ensure_dev_key, load_keys, pseudonymizer
from pipeline.settings import Settings
from tests.cli import privrec

SECRET_32 = base64.b64encode(b"k" * 32).decode()
SECRET_31 = base64.b64encode(b"s" * 31).decode()


def _key_file(tmp_path, text, mode=0o600):
    path = tmp_path / "pseudonym.keys"
    path.write_text(text)
    os.chmod(path, mode)
    return path


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_key_file_readable_by_group_or_others_is_refused(tmp_path, mode):
    path = _key_file(tmp_path, f"k1:base64:{SECRET_32}\n", mode)
    with pytest.raises(ConfigError) as err:
        pseudonymizer(Settings(state_dir=tmp_path, pseudonym={"key_file": path}))
    message = str(err.value)
    assert str(path) in message and f"{mode:o}" in message and "chmod 600" in message
    assert SECRET_32 not in message and "\n" not in message


def test_private_key_file_of_32_bytes_loads(tmp_path):
    path = _key_file(tmp_path, f"# rotated 2025\nold:base64:{SECRET_32}\nnew:{'n' * 32}\n", 0o400)
    keys = load_keys(Settings(state_dir=tmp_path, pseudonym={"key_file": path}))
    assert [k.key_id for k in keys] == ["old", "new"]


def test_short_key_in_a_file_is_refused_naming_the_file_not_the_key(tmp_path):
    path = _key_file(tmp_path, f"old:base64:{SECRET_32}\nnew:base64:{SECRET_31}\n")
    with pytest.raises(ConfigError) as err:
        load_keys(Settings(state_dir=tmp_path, pseudonym={"key_file": path}))
    message = str(err.value)
    assert message.startswith("pseudonym.key_file")
    assert str(path) in message and "'new'" in message and f"at least {MIN_KEY_BYTES} bytes" in message
    assert SECRET_31 not in message and SECRET_32 not in message


@pytest.mark.parametrize("secret", ["plain-secret-of-24-bytes", f"base64:{SECRET_31}"])
def test_short_key_from_settings_is_refused(tmp_path, secret):
    with pytest.raises(ConfigError) as err:
        pseudonymizer(Settings(state_dir=tmp_path, pseudonym={"keys": f"k1:{secret}"}))
    assert str(err.value).startswith("pseudonym.keys (PRIVREC_PSEUDONYM__KEYS)")
    assert secret not in str(err.value)


def test_the_test_suites_key_and_the_dev_key_pass(tmp_path):
    assert pseudonymizer(Settings(state_dir=tmp_path, pseudonym={"keys": "test1:base64:" + "A" * 43 + "="}))
    settings = Settings(state_dir=tmp_path / "state")
    path = ensure_dev_key(settings)
    assert path is not None and os.stat(path).st_mode & 0o777 == 0o600
    assert len(load_keys(settings)[0].secret) == 32


def test_cli_refuses_a_shared_key_file_in_one_line(tmp_path):
    path = _key_file(tmp_path, f"k1:base64:{SECRET_32}\n", 0o644)
    env = {
        "PRIVREC_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:1",
        "PRIVREC_REDIS__URL": "redis://127.0.0.1:1/0",
        "PRIVREC_PSEUDONYM__KEY_FILE": str(path),
    }
    r = privrec("smoke", env=env, cwd=tmp_path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and "group or others" in lines[0]
    assert SECRET_32 not in r.stdout + r.stderr
