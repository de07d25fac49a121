"""compose/docker-compose.yml: no Docker engine here, so check its structure."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.settings import Settings

yaml = pytest.importorskip("yaml")

COMPOSE = Path(__file__).resolve().parents[2] / "compose" / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load(COMPOSE.read_text())


def test_services_present(compose):
    assert {"kafka", "redis", "worker", "trainer"} <= set(compose["services"])


def test_kafka_is_kraft_apache_image(compose):
    kafka = compose["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = kafka["environment"]
    assert "broker" in env["KAFKA_PROCESS_ROLES"] and "controller" in env["KAFKA_PROCESS_ROLES"]
    assert "KAFKA_ZOOKEEPER_CONNECT" not in env


def test_redis_has_password(compose):
    redis = compose["services"]["redis"]
    assert redis["image"].startswith("redis:7")
    assert "--requirepass" in redis["command"]


@pytest.mark.parametrize("name", ["kafka", "redis", "worker", "trainer"])
def test_healthchecks(compose, name):
    check = compose["services"][name]["healthcheck"]
    assert check["test"] and check["interval"]


@pytest.mark.parametrize("name", ["worker", "trainer"])
def test_privrec_env_wiring(compose, name):
    svc = compose["services"][name]
    env = svc["environment"]
    assert env["PRIVREC_KAFKA__BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert env["PRIVREC_REDIS__URL"].startswith("redis://:${REDIS_PASSWORD")
    assert "PRIVREC_PSEUDONYM__KEY_FILE" in env
    # every PRIVREC_ variable must name a real setting
    fields = Settings.model_fields
    for key in env:
        assert key.startswith("PRIVREC_")
        top = key.removeprefix("PRIVREC_").split("__")[0].lower()
        assert top in fields, key
    assert svc["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert svc["depends_on"]["redis"]["condition"] == "service_healthy"
    assert (COMPOSE.parent / svc["build"]["dockerfile"].split("/")[-1]).exists()
    assert "pseudonym_keys" in svc["secrets"]


def test_no_secret_literals(compose):
    text = COMPOSE.read_text()
    assert 'requirepass", "${REDIS_PASSWORD' in text  # from env, never a literal
