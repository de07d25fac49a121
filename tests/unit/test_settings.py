"""Settings: env, nesting, TOML, secrets masked, bad configuration as one clear line."""

from __future__ import annotations

import pytest

from pipeline.errors import ConfigError
from pipeline.settings import Settings, load_settings
from tests.cli import privrec


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch, tmp_path):
    for key in list(__import__("os").environ):
        if key.startswith("PRIVREC_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def test_defaults():
    s = load_settings()
    assert s.topic_prefix == "privrec."
    assert s.partitions == 8
    assert s.kafka.embedded and s.redis.embedded
    assert s.topic("consent") == "privrec.consent"
    assert s.stream.window_size_ms == 3_600_000 and s.stream.window_grace_ms == 600_000
    assert s.stream.consent_default == "deny"


def test_env_nested(monkeypatch):
    monkeypatch.setenv("PRIVREC_KAFKA__BOOTSTRAP_SERVERS", "k1:9092,k2:9093")
    monkeypatch.setenv("PRIVREC_KAFKA__SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("PRIVREC_KAFKA__SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("PRIVREC_KAFKA__SASL_USERNAME", "svc")
    monkeypatch.setenv("PRIVREC_KAFKA__SASL_PASSWORD", "kafka-pass-123")
    monkeypatch.setenv("PRIVREC_PARTITIONS", "12")
    monkeypatch.setenv("PRIVREC_STREAM__WINDOW_GRACE_MS", "1000")
    s = load_settings()
    assert s.kafka.bootstrap_servers == "k1:9092,k2:9093" and not s.kafka.embedded
    assert s.partitions == 12 and s.stream.window_grace_ms == 1000
    opts = s.kafka.client_options()
    assert opts["security_protocol"] == "SASL_SSL"
    assert opts["sasl_plain_password"] == "kafka-pass-123"
    assert "kafka-pass-123" not in repr(s) and "kafka-pass-123" not in str(s.masked())


def test_toml_file(tmp_path):
    (tmp_path / "privrec.toml").write_text(
        'topic_prefix = "acme."\n[redis]\nurl = "redis://:pw-secret@r:6379/2"\n'
    )
    s = load_settings()
    assert s.topic_prefix == "acme."
    assert s.redis.url is not None and s.redis.url.get_secret_value().endswith("/2")
    masked = s.masked()
    assert masked["redis"]["url"] == "redis://:***@r:6379/2"
    assert "pw-secret" not in repr(s) and "pw-secret" not in str(masked)


def test_env_beats_toml(tmp_path, monkeypatch):
    (tmp_path / "privrec.toml").write_text("partitions = 4\n")
    monkeypatch.setenv("PRIVREC_PARTITIONS", "6")
    assert load_settings().partitions == 6


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({"PRIVREC_KAFKA__BOOTSTRAP_SERVERS": "no-port-here"}, "kafka.bootstrap_servers"),
        ({"PRIVREC_REDIS__URL": "http://x:1"}, "redis.url"),
        ({"PRIVREC_REDIS__URL": "redis://host:notaport/0"}, "redis.url"),
        ({"PRIVREC_PARTITIONS": "0"}, "partitions"),
    ],
)
def test_bad_values_name_the_setting(monkeypatch, env, setting):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert str(err.value).startswith(setting)
    assert "PRIVREC_" in str(err.value)


def test_secret_not_in_config_error(monkeypatch):
    monkeypatch.setenv("PRIVREC_REDIS__URL", "redis://:hunter2-secret@host:notaport/0")
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert "hunter2-secret" not in str(err.value)


def test_settings_repr_masks_pseudonym_keys():
    s = Settings(pseudonym={"keys": "k1:super-secret-key-material"})
    assert "super-secret-key-material" not in repr(s)
    assert "super-secret-key-material" not in str(s.masked())


# --- the CLI turns bad configuration into one line, exit 2, no traceback ---------


def _one_line_error(result, setting):
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("privrec: error: ") and setting in lines[0]
    assert "Traceback" not in result.stderr


def test_cli_malformed_redis_url(tmp_path):
    r = privrec("status", env={"PRIVREC_REDIS__URL": "redis://h:99999999/0"}, cwd=tmp_path)
    _one_line_error(r, "redis.url")


def test_cli_unreachable_bootstrap(tmp_path):
    env = {
        "PRIVREC_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:1",
        "PRIVREC_KAFKA__REQUEST_TIMEOUT_S": "1",
        "PRIVREC_REDIS__URL": "redis://127.0.0.1:1/0",
    }
    r = privrec("topics", "create", env=env, cwd=tmp_path)
    _one_line_error(r, "kafka.bootstrap_servers")


def test_cli_missing_key_file(tmp_path):
    env = {
        "PRIVREC_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:1",
        "PRIVREC_REDIS__URL": "redis://127.0.0.1:1/0",
        "PRIVREC_PSEUDONYM__KEY_FILE": str(tmp_path / "missing.keys"),
    }
    r = privrec("smoke", env=env, cwd=tmp_path)
    _one_line_error(r, "pseudonym.key_file")
