"""The production compose file, checked statically (no Docker engine here).

Its Airflow settings must be the ones the native topology test runs with:
both are rendered from deploy/settings.conf by ``airflow_local.topology_settings``.
"""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml

from orchestrate import isolated_airflow as airflow_local

REPO = airflow_local.REPO_ROOT
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
AIRFLOW_SERVICES = ("airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
                    "airflow-triggerer", "airflow-worker")
LONG_RUNNING = [name for name in SERVICES if name != "airflow-init"]
PASSWORD_VARS = ("AIRFLOW_DB_PASSWORD", "REVIEW_DB_PASSWORD", "REDIS_PASSWORD")


def _env_example() -> dict[str, str]:
    return airflow_local.read_env_file(REPO / ".env.example")


def test_services_and_topology() -> None:
    for name in ("postgres", "redis", *AIRFLOW_SERVICES, "review"):
        assert name in SERVICES, f"compose file lacks service {name}"
    assert SERVICES["airflow-apiserver"]["command"] == "api-server"
    assert SERVICES["airflow-scheduler"]["command"] == "scheduler"
    assert SERVICES["airflow-dag-processor"]["command"] == "dag-processor"
    assert SERVICES["airflow-triggerer"]["command"] == "triggerer"
    assert SERVICES["airflow-worker"]["command"] == "celery worker"
    # --scale airflow-worker=N needs workers without a fixed name or host port.
    assert "container_name" not in SERVICES["airflow-worker"]
    assert "ports" not in SERVICES["airflow-worker"]
    for name in AIRFLOW_SERVICES[1:] + ("review",):
        deps = SERVICES[name]["depends_on"]
        assert deps["airflow-init"]["condition"] == "service_completed_successfully", name
        assert deps["postgres"]["condition"] == "service_healthy", name


def test_images_are_pinned() -> None:
    for name, svc in SERVICES.items():
        image = svc["image"]
        tag = image.rsplit(":", 1)[-1] if ":" in image else ""
        assert tag and tag != "latest" and re.search(r"\d", tag), f"{name}: image {image!r} is not pinned"
    dockerfile = (REPO / "Dockerfile").read_text()
    base = re.search(r"^FROM\s+(\S+)", dockerfile, re.M).group(1)
    # The base is a build argument (deploy/build-images.sh builds on a local one): its default counts.
    args = dict(re.findall(r"^ARG\s+(\w+)=(\S+)", dockerfile, re.M))
    base = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), base)
    assert base == f"apache/airflow:{version('apache-airflow')}-python3.11", base
    assert "uv.lock" in dockerfile and "--frozen" in dockerfile


def test_healthchecks_and_volumes() -> None:
    for name in LONG_RUNNING:
        assert SERVICES[name].get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    declared = set(COMPOSE["volumes"])
    assert {"councilmatch-data", "postgres-data"} <= declared
    for name in ("airflow-worker", "airflow-init", "review"):
        mounts = {v.split(":", 1)[0]: v.split(":", 1)[1] for v in SERVICES[name]["volumes"]}
        assert mounts.get("councilmatch-data") == SERVICES[name]["environment"]["COUNCILMATCH_HOME"], name
    for name, svc in SERVICES.items():
        for v in svc.get("volumes", []):
            source = v.split(":", 1)[0]
            assert source.startswith(".") or source in declared, f"{name}: volume {source} not declared"


def test_every_variable_is_in_env_example_and_secrets_only_there() -> None:
    text = (REPO / "docker-compose.yml").read_text()
    referenced = set(re.findall(r"(?<!\$)\$\{([A-Z0-9_]+)(?::?[?-][^}]*)?\}", text))
    example = _env_example()
    assert referenced, "no ${VAR} found: the regex or the file is wrong"
    missing = referenced - set(example)
    assert not missing, f".env.example lacks {sorted(missing)}"
    for secret in ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET", "COUNCILMATCH_KEK", *PASSWORD_VARS):
        assert secret in referenced, f"{secret} must come from .env"
        assert secret not in airflow_local.shared_settings(), f"{secret} must not sit in deploy/settings.conf"
    # .env itself is never committed.
    assert ".env" in (REPO / ".gitignore").read_text().split()


def test_compose_fails_fast_without_a_kek_and_marks_production() -> None:
    """An empty or missing COUNCILMATCH_KEK must stop `docker compose up`, never reach a service as ""."""
    text = (REPO / "docker-compose.yml").read_text()
    uses = re.findall(r"\$\{COUNCILMATCH_KEK[^}]*\}", text)
    assert len(uses) == 3
    assert all(u.startswith("${COUNCILMATCH_KEK:?") for u in uses), uses
    for name in ("airflow-init", "airflow-worker", "review"):
        assert SERVICES[name]["environment"]["COUNCILMATCH_PRODUCTION"] == "1", name


def test_kek_reaches_only_the_services_that_need_it() -> None:
    holders = {name for name, svc in SERVICES.items() if "COUNCILMATCH_KEK" in (svc.get("environment") or {})}
    assert holders == {"airflow-init", "airflow-worker", "review"}
    for name, svc in SERVICES.items():
        assert ".env" not in svc.get("env_file", []), f"{name} would receive every secret in .env"


@pytest.mark.parametrize("service", AIRFLOW_SERVICES + ("review",))
def test_settings_match_the_native_topology(service: str) -> None:
    svc = SERVICES[service]
    assert svc["env_file"] == ["deploy/settings.conf"]
    expected = airflow_local.topology_settings(
        db_host="postgres", db_port=5432, redis_host="redis", redis_port=6379,
        api_server="http://airflow-apiserver:8080", passwords={k: "${%s}" % k for k in PASSWORD_VARS},
    )
    env = svc["environment"]
    for key in ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC",
                "AIRFLOW__CELERY__RESULT_BACKEND",
                "AIRFLOW__CELERY__BROKER_URL", "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
                "COUNCILMATCH_REVIEW_DB_URL"):
        assert env[key] == expected[key], f"{service}: {key}"
    assert expected["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    # Keys in settings.conf are not overridden per service (one place for them).
    assert not set(env) & set(airflow_local.shared_settings())


def test_postgres_init_creates_the_configured_databases() -> None:
    script = (REPO / "deploy" / "postgres-init.sh").read_text()
    pg = SERVICES["postgres"]
    assert "./deploy/postgres-init.sh:/docker-entrypoint-initdb.d/10-councilmatch.sh:ro" in pg["volumes"]
    for var in ("AIRFLOW_DB_USER", "AIRFLOW_DB_NAME", "REVIEW_DB_USER", "REVIEW_DB_NAME",
                "AIRFLOW_DB_PASSWORD", "REVIEW_DB_PASSWORD"):
        assert "${%s}" % var in script
        assert var in airflow_local.shared_settings() or var in pg["environment"], var
