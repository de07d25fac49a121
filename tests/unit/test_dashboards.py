"""compose/'s Prometheus and Grafana: the dashboards' JSON and the wiring that provisions them."""

from __future__ import annotations

import pytest

from tests.support.dashboards import COMPOSE, dashboards, metric_names, panels, queries

yaml = pytest.importorskip("yaml")


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())


def test_there_is_a_dashboard_for_each_area_the_issue_names():
    (dashboard,) = dashboards().values()
    titles = " | ".join(p["title"].lower() for p in panels(dashboard))
    for area in (
        "by stage",
        "drops by reason",
        "lag in messages",
        "lag in seconds",
        "status",
        "ndcg",
        "erasure",
    ):
        assert area in titles, area
    assert "gateway" in titles or "route" in titles
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 36


def test_every_panel_is_well_formed():
    for name, dashboard in dashboards().items():
        ids = [p["id"] for p in panels(dashboard)]
        assert len(ids) == len(set(ids)), name
        for panel in panels(dashboard):
            if panel["type"] == "row":
                continue
            assert panel["datasource"] == {"type": "prometheus", "uid": "prometheus"}, panel["title"]
            targets = panel["targets"]
            assert targets, panel["title"]
            assert len({t["refId"] for t in targets}) == len(targets)
            for target in targets:
                assert metric_names(target["expr"]), (panel["title"], target["expr"])
                assert target["expr"].count("(") == target["expr"].count(")"), target["expr"]


def test_panels_do_not_overlap():
    for dashboard in dashboards().values():
        taken: set[tuple[int, int]] = set()
        for panel in panels(dashboard):
            g = panel["gridPos"]
            assert g["x"] >= 0 and g["x"] + g["w"] <= 24, panel["title"]
            cells = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
            assert not cells & taken, f"{panel['title']} overlaps another panel"
            taken |= cells


def test_no_query_labels_by_user():
    for dashboard in dashboards().values():
        for _, expr in queries(dashboard):
            assert "user" not in expr and "pseudonym" not in expr


def test_grafana_is_provisioned_with_the_repo_files(compose):
    grafana = compose["services"]["grafana"]
    volumes = {v.split(":")[1]: v.split(":")[0] for v in grafana["volumes"] if v.startswith("./")}
    assert volumes["/etc/grafana/provisioning"] == "./grafana/provisioning"
    provider = yaml.safe_load((COMPOSE / "grafana/provisioning/dashboards/privrec.yml").read_text())
    path = provider["providers"][0]["options"]["path"]
    assert volumes[path] == "./grafana/dashboards"
    source = yaml.safe_load((COMPOSE / "grafana/provisioning/datasources/prometheus.yml").read_text())
    (ds,) = source["datasources"]
    assert ds["uid"] == "prometheus" and ds["url"] == "http://prometheus:9090"
    assert "GF_SECURITY_ADMIN_PASSWORD__FILE" in grafana["environment"]
    assert "GF_SECURITY_ADMIN_PASSWORD" not in grafana["environment"]
    for service in ("grafana", "prometheus"):
        for port in compose["services"][service]["ports"]:
            assert port.startswith("127.0.0.1:"), f"{service} is published beyond loopback"


def test_prometheus_scrapes_every_privrec_process_on_its_metrics_port(compose):
    prometheus = compose["services"]["prometheus"]
    assert "./prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in prometheus["volumes"]
    config = yaml.safe_load((COMPOSE / "prometheus/prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    services = compose["services"]
    worker = jobs["worker"]["dns_sd_configs"][0]
    assert worker["names"] == ["worker"]  # scaled workers: one target per container
    assert str(worker["port"]) == services["worker"]["environment"]["PRIVREC_METRICS__WORKER_PORT"]
    (trainer,) = jobs["trainer"]["static_configs"][0]["targets"]
    assert trainer == "trainer:" + services["trainer"]["environment"]["PRIVREC_METRICS__TRAINER_PORT"]
    (gateway,) = jobs["gateway"]["static_configs"][0]["targets"]
    assert gateway == "gateway:8080" and "8080" in " ".join(services["gateway"]["command"])
