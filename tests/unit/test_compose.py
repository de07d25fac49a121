"""compose/docker-compose.yml: no Docker engine here, so check its structure."""

from __future__ import annotations

import os
import secrets as secrets_mod
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.kafka.topics import topic_specs
from pipeline.settings import Settings

yaml = pytest.importorskip("yaml")

COMPOSE = Path(__file__).resolve().parents[2] / "compose" / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load(COMPOSE.read_text())


PRIVREC_SERVICES = ("gateway", "worker", "trainer", "topics")


def test_services_present(compose):
    assert {"kafka", "kafka-init", "redis", "gateway", "worker", "trainer", "topics"} <= set(
        compose["services"]
    )


def test_kafka_is_kraft_apache_image(compose):
    kafka = compose["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert kafka["entrypoint"][-1] == "/privrec/start.sh"  # KRaft config written there (tested below)
    assert "./kafka:/privrec:ro" in kafka["volumes"]
    assert "KAFKA_ZOOKEEPER_CONNECT" not in kafka["environment"]


def test_redis_has_password(compose):
    redis = compose["services"]["redis"]
    assert redis["image"].startswith("redis:7")
    assert "--requirepass" in redis["command"]


@pytest.mark.parametrize("name", ["kafka", "redis", "gateway", "worker", "trainer"])
def test_healthchecks(compose, name):
    check = compose["services"][name]["healthcheck"]
    assert check["test"] and check["interval"]


@pytest.mark.parametrize("name", ["gateway", "worker", "trainer"])
def test_privrec_env_wiring(compose, name):
    svc = compose["services"][name]
    env = svc["environment"]
    assert env["PRIVREC_KAFKA__BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert env["PRIVREC_REDIS__URL"].startswith("redis://:${REDIS_PASSWORD")
    assert "PRIVREC_PSEUDONYM__KEY_FILE" in env
    # every PRIVREC_ variable must name a real setting
    fields = Settings.model_fields
    for key in env:
        if key == "KAFKA_PASSWORD_FILE":  # read by compose/entrypoint.sh, not a setting
            continue
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


# -- Kafka: SASL/SCRAM principals and ACLs ---------------------------------------------------------
#
# No broker here either, so compose/kafka/init-acls.sh runs against stub kafka-acls.sh and
# kafka-configs.sh that record their arguments; the ACLs it would create are then checked against
# what each role's code reads and writes (the topic registry, the Faust app, the trainer).

KAFKA_DIR = COMPOSE.parent / "kafka"
ROLES = ("gateway", "worker", "trainer", "operator", "analytics")
IMPLIES_DESCRIBE = {"Read", "Write", "Delete", "Alter", "Describe", "All"}
STUB = """#!/usr/bin/env bash
printf '%s\\x1f' "$(basename "$0")" "$@" >> "$STUB_LOG"
printf '\\n' >> "$STUB_LOG"
"""


@dataclass(frozen=True)
class Acl:
    principal: str
    ops: frozenset[str]
    resource: str  # topic | group | cluster
    name: str
    pattern: str  # literal | prefixed


@dataclass
class AclRun:
    acls: list[Acl]
    users: dict[str, str]  # name -> the --add-config value
    output: str
    passwords: dict[str, str]


def _stub_dir(tmp: Path, names: tuple[str, ...]) -> Path:
    bin_dir = tmp / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name in names:
        path = bin_dir / name
        path.write_text(STUB)
        path.chmod(0o755)
    return bin_dir


def _calls(log: Path) -> list[list[str]]:
    if not log.exists():
        return []
    return [line.split("\x1f")[:-1] for line in log.read_text().splitlines() if line]


def _flag(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


def _run_init(tmp: Path, settings: Settings, passwords: dict[str, str]) -> subprocess.CompletedProcess:
    secrets = tmp / "secrets"
    secrets.mkdir(exist_ok=True)
    for role, password in passwords.items():
        (secrets / f"kafka_{role}_password").write_text(password + "\n")
    env = {
        "PATH": os.environ["PATH"],
        "KAFKA_BIN": str(_stub_dir(tmp, ("kafka-acls.sh", "kafka-configs.sh"))),
        "SECRETS_DIR": str(secrets),
        "STUB_LOG": str(tmp / "calls.log"),
        "PRIVREC_TOPIC_PREFIX": settings.topic_prefix,
        "PRIVREC_APP_ID": settings.app_id,
    }
    return subprocess.run(
        ["bash", str(KAFKA_DIR / "init-acls.sh")], env=env, capture_output=True, text=True, timeout=60
    )


def _passwords() -> dict[str, str]:
    return {role: secrets_mod.token_hex(16) for role in ("admin", *ROLES)}


@pytest.fixture(scope="module")
def settings() -> Settings:
    return Settings()


@pytest.fixture(scope="module")
def acl_run(tmp_path_factory, settings) -> AclRun:
    tmp = tmp_path_factory.mktemp("acls")
    passwords = _passwords()
    done = _run_init(tmp, settings, passwords)
    assert done.returncode == 0, done.stderr
    acls: list[Acl] = []
    users: dict[str, str] = {}
    for call in _calls(tmp / "calls.log"):
        tool, args = call[0], call[1:]
        assert _flag(args, "--bootstrap-server") == "kafka:9092"
        assert _flag(args, "--command-config"), "admin tools must authenticate"
        if tool == "kafka-configs.sh":
            assert _flag(args, "--entity-type") == "users" and "--alter" in args
            users[_flag(args, "--entity-name")] = _flag(args, "--add-config")
            continue
        assert tool == "kafka-acls.sh" and "--add" in args
        ops = frozenset(args[i + 1] for i, a in enumerate(args) if a == "--operation")
        principal = _flag(args, "--allow-principal")
        if "--cluster" in args:
            acls.append(Acl(principal, ops, "cluster", "kafka-cluster", "literal"))
            continue
        resource = "topic" if "--topic" in args else "group"
        pattern = _flag(args, "--resource-pattern-type") or "literal"
        acls.append(Acl(principal, ops, resource, _flag(args, f"--{resource}"), pattern))
    return AclRun(acls, users, done.stdout + done.stderr, passwords)


def allowed(acls: list[Acl], role: str, op: str, resource: str, name: str) -> bool:
    """Kafka's rule: an ALLOW ACL for the principal whose pattern matches the resource and grants op."""
    for acl in acls:
        if acl.principal != f"User:{role}" or acl.resource != resource:
            continue
        if acl.pattern == "literal" and acl.name not in (name, "*"):
            continue
        if acl.pattern == "prefixed" and not name.startswith(acl.name):
            continue
        if op in acl.ops or "All" in acl.ops or (op == "Describe" and acl.ops & IMPLIES_DESCRIBE):
            return True
    return False


def _needs(settings: Settings) -> dict[str, dict[str, set[str]]]:
    """What each role's code reads and writes (full topic names), from the code itself."""
    from agents.app import AppTopics
    from agents.processes.trainer import trainer_group
    from agents.trainer import TOPICS as TRAINER_TOPICS
    from pipeline.kafka.topics import Topic

    t = settings.topic
    app = AppTopics.from_settings(settings)
    faust_internal = {
        f"{settings.app_id}-windows-changelog",  # agents.stream's tables
        f"{settings.app_id}-consent-changelog",
        f"{settings.app_id}-__assignor-__leader",  # faust.assignor.leader_assignor
    }
    trainer_topics = {t(name) for name in TRAINER_TOPICS}
    return {
        "gateway": {
            "write": {t("playback.raw"), t("consent"), t("erasure")},
            # consent route, export (the trainer's view), erasure progress and receipts
            "read": trainer_topics,
            "group": set(),
        },
        "worker": {
            "read": {app.raw, app.consent, app.erasure} | faust_internal,
            "write": {
                app.redacted,
                app.dlq,
                app.quarantine,
                app.interactions,
                app.erasure_stages,
                app.raw,  # idle-close control markers (agents.stream.idle_check)
                app.consent,  # the erased viewer's consent tombstone (StreamProcessor.on_erasure)
            }
            | faust_internal,
            "create": faust_internal,
            "group": {settings.app_id},
        },
        "trainer": {
            # DP trending (pipeline.dp, run by the trainer): the redacted stream in, the ledger
            # and the ethics audit after each full retrain (agents.audit): dead letters in, audits out
            "read": trainer_topics
            | {t("playback.redacted"), t(Topic.DP_LEDGER), t(Topic.DLQ), t(Topic.TRAINER_DLQ)},
            "write": {
                t(Topic.TRAINER_DLQ),
                t("erasure.stages"),
                t("receipts"),
                t(Topic.DP_LEDGER),
                t(Topic.AUDITS),
            },
            "group": {trainer_group(settings)},
        },
        "operator": {
            # privrec trending [--release]: the ledger, and the redacted stream for a release
            # ... and privrec audit (--latest reads the stored audits)
            "read": trainer_topics
            | {
                t(Topic.DLQ),
                t(Topic.TRAINER_DLQ),
                t(Topic.DP_LEDGER),
                t("playback.redacted"),
                t(Topic.AUDITS),
            },
            "write": {t("erasure"), t(Topic.DP_LEDGER)},
            "create": {name for name, _ in topic_specs(settings)},
            "group": set(),
        },
        # downstream consumers of the pseudonymised stream (nothing in privrec reads it back)
        "analytics": {"read": {t("playback.redacted")}, "write": set(), "group": {"analytics-reports"}},
        "_quarantine": {"name": {t(Topic.QUARANTINE)}},
    }


def test_init_script_syntax():
    for script in ("init-acls.sh", "start.sh"):
        subprocess.run(["bash", "-n", str(KAFKA_DIR / script)], check=True)
    subprocess.run(["sh", "-n", str(COMPOSE.parent / "entrypoint.sh")], check=True)


def test_one_scram_user_per_role_from_its_secret(acl_run):
    assert set(acl_run.users) == set(ROLES)
    for role, value in acl_run.users.items():
        assert value.startswith("SCRAM-SHA-512=[") and f"password={acl_run.passwords[role]}]" in value
    principals = {acl.principal for acl in acl_run.acls}
    assert principals == {f"User:{role}" for role in ROLES}  # admin is the broker's super user only


def test_no_password_in_the_scripts_output(acl_run):
    assert acl_run.output.strip()
    for password in acl_run.passwords.values():
        assert password not in acl_run.output


@pytest.mark.parametrize("role", ROLES)
def test_each_role_has_what_its_code_uses(acl_run, settings, role):
    needs = _needs(settings)[role]
    for topic in needs["read"]:
        assert allowed(acl_run.acls, role, "Read", "topic", topic), (role, "Read", topic)
    for topic in needs["write"]:
        assert allowed(acl_run.acls, role, "Write", "topic", topic), (role, "Write", topic)
    for topic in needs.get("create", ()):
        assert allowed(acl_run.acls, role, "Create", "topic", topic), (role, "Create", topic)
    for group in needs["group"]:
        assert allowed(acl_run.acls, role, "Read", "group", group), (role, "group", group)
    # metadata, end offsets and the pipeline groups' lag: every role, every topic of the registry
    from pipeline.ops.collect import pipeline_groups

    for name, _ in topic_specs(settings):
        assert allowed(acl_run.acls, role, "Describe", "topic", name), (role, "Describe", name)
    for group in pipeline_groups(settings):
        assert allowed(acl_run.acls, role, "Describe", "group", group), (role, "Describe", group)


def test_gateway_producer_is_idempotent_capable(acl_run):
    assert allowed(acl_run.acls, "gateway", "IdempotentWrite", "cluster", "kafka-cluster")


@pytest.mark.parametrize(
    ("topic", "writers"),
    [
        ("playback.raw", {"gateway", "worker"}),  # worker: its own idle-close markers only
        ("consent", {"gateway", "worker"}),  # worker: an erased viewer's tombstone only
        ("erasure", {"gateway", "operator"}),
        ("receipts", {"trainer"}),
    ],
)
def test_who_may_write_the_trust_topics(acl_run, settings, topic, writers):
    name = settings.topic(topic)
    assert {r for r in ROLES if allowed(acl_run.acls, r, "Write", "topic", name)} == writers


def test_no_role_beyond_its_needs(acl_run, settings):
    """Every Read/Write a role holds on a registry topic is one its code uses."""
    needs = _needs(settings)
    for name, _ in topic_specs(settings):
        for role in ROLES:
            for op in ("Read", "Write"):
                if allowed(acl_run.acls, role, op, "topic", name):
                    assert name in needs[role][op.lower()], (role, op, name)


def test_every_registry_topic_has_a_writer_and_a_reader(acl_run, settings):
    quarantine = _needs(settings)["_quarantine"]["name"]
    for name, _ in topic_specs(settings):
        assert any(allowed(acl_run.acls, r, "Write", "topic", name) for r in ROLES), name
        readers = {r for r in ROLES if allowed(acl_run.acls, r, "Read", "topic", name)}
        if name in quarantine:  # raw bytes of dead messages: personal data, the super user only
            assert not readers
        else:
            assert readers, name


def test_no_wildcards_or_cluster_wide_grants(acl_run):
    for acl in acl_run.acls:
        assert acl.name != "*" and "All" not in acl.ops, acl
        if acl.resource == "cluster":
            assert acl.ops == {"IdempotentWrite"}, acl


def test_weak_password_refused_without_echoing_it(tmp_path, settings):
    passwords = _passwords() | {"worker": "short!pw"}
    done = _run_init(tmp_path, settings, passwords)
    assert done.returncode == 2
    assert "kafka_worker_password" in done.stderr and "short!pw" not in done.stderr + done.stdout


def test_compose_principals_match_the_acls(compose, acl_run):
    for name in PRIVREC_SERVICES:
        svc = compose["services"][name]
        env = svc["environment"]
        user = env["PRIVREC_KAFKA__SASL_USERNAME"]
        assert user in ROLES
        assert env["PRIVREC_KAFKA__SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"
        assert env["PRIVREC_KAFKA__SASL_MECHANISM"] == "SCRAM-SHA-512"
        mounted = {s["source"]: s["target"] for s in svc["secrets"] if isinstance(s, dict)}
        assert mounted == {f"kafka_{user}_password": "kafka_password"}
        assert env["KAFKA_PASSWORD_FILE"] == "/run/secrets/kafka_password"
        assert svc["depends_on"]["kafka-init"]["condition"] == "service_completed_successfully"
    assert compose["services"]["gateway"]["environment"]["PRIVREC_KAFKA__SASL_USERNAME"] == "gateway"
    init = compose["services"]["kafka-init"]
    assert set(init["secrets"]) == {f"kafka_{r}_password" for r in ("admin", *ROLES)}
    for secret in compose["secrets"].values():
        assert secret["file"].startswith(("./secrets/", "${"))


def test_broker_admits_only_sasl_and_denies_by_default(tmp_path):
    bin_dir = _stub_dir(tmp_path, ("kafka-storage.sh", "kafka-server-start.sh"))
    home = tmp_path / "kafka"
    home.mkdir()
    (home / "bin").symlink_to(bin_dir)
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    password = secrets_mod.token_hex(16)
    (secrets / "kafka_admin_password").write_text(password)
    config = tmp_path / "conf" / "server.properties"
    env = {
        "PATH": os.environ["PATH"],
        "KAFKA_HOME": str(home),
        "SECRETS_DIR": str(secrets),
        "KAFKA_DATA_DIR": str(tmp_path / "data"),
        "KAFKA_CONFIG_OUT": str(config),
        "KAFKA_CLUSTER_ID": "test-cluster",
        "STUB_LOG": str(tmp_path / "calls.log"),
    }
    done = subprocess.run(
        ["bash", str(KAFKA_DIR / "start.sh")], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert password not in done.stdout + done.stderr
    props = dict(
        line.split("=", 1) for line in config.read_text().splitlines() if line and not line.startswith("#")
    )
    protocols = dict(item.split(":") for item in props["listener.security.protocol.map"].split(","))
    assert set(protocols.values()) == {"SASL_PLAINTEXT"}
    assert props["listener.name.client.sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["super.users"] == "User:admin"
    assert props["authorizer.class.name"].endswith("StandardAuthorizer")
    assert "CONTROLLER://localhost:" in props["listeners"]
    assert set(props["process.roles"].split(",")) == {"broker", "controller"}  # KRaft, no ZooKeeper
    assert not any(key.startswith("zookeeper") for key in props)
    assert config.stat().st_mode & 0o077 == 0
    calls = _calls(tmp_path / "calls.log")
    assert [c[0] for c in calls] == ["kafka-storage.sh", "kafka-server-start.sh"]
    assert f"SCRAM-SHA-512=[name=admin,password={password}]" in calls[0]


def test_no_committed_kafka_secrets():
    for path in [COMPOSE, *KAFKA_DIR.iterdir()]:
        text = path.read_text()
        for line in text.splitlines():
            if "password=" in line and "${" not in line and "$(" not in line:
                pytest.fail(f"{path.name}: a literal password? {line.strip()[:60]}")
    ignored = (COMPOSE.parent / "secrets" / ".gitignore").read_text().splitlines()
    assert "*" in ignored
