"""docker-compose.yaml (no Docker engine here): it validates against the Compose
Specification's JSON schema (as shipped by the npm package dclint), every file it builds
from or mounts exists, services start in order, and each service's command is the one the
README documents."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yaml"
SCHEMA = ROOT / "node_modules" / "dclint" / "schemas" / "compose.schema.json"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())  # resolves the YAML anchors and << merges


def test_validates_against_the_compose_specification(compose) -> None:
    schema = json.loads(SCHEMA.read_text())
    assert schema["$id"] == "compose_spec.json"
    jsonschema.Draft7Validator(schema).validate(compose)
    broken = {**compose, "services": {"x": {"image": "a", "depends_on": {"y": {
        "condition": "service_done"}}}}}
    with pytest.raises(jsonschema.ValidationError):  # the schema really checks services
        jsonschema.Draft7Validator(schema).validate(broken)


def test_every_referenced_file_exists(compose) -> None:
    for name, service in compose["services"].items():
        build = service.get("build")
        if build:
            context = ROOT / (build if isinstance(build, str) else build["context"])
            assert context.is_dir(), name
            dockerfile = context / (build.get("dockerfile", "Dockerfile")
                                    if isinstance(build, dict) else "Dockerfile")
            assert dockerfile.is_file(), (name, dockerfile)
            target = build.get("target") if isinstance(build, dict) else None
            if target:
                assert re.search(rf"^FROM \S+ AS {target}$", dockerfile.read_text(), re.M)
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), (name, source)
            else:
                assert source in compose["volumes"], (name, source)
    assert "FROM apache/airflow:3.3.2-python3.11 AS airflow" in (
        ROOT / "docker" / "airflow" / "Dockerfile").read_text()


def test_services_come_up_in_order(compose) -> None:
    services = compose["services"]
    assert {"postgres", "moto", "aws-init", "airflow-init", "airflow-apiserver",
            "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer",
            "github-sim", "ghvault"} == set(services)
    one_shots = {"aws-init", "airflow-init"}
    for name, service in services.items():
        for dependency, rule in (service.get("depends_on") or {}).items():
            condition = rule["condition"]
            if dependency in one_shots:
                assert condition == "service_completed_successfully", (name, dependency)
            else:
                assert condition == "service_healthy", (name, dependency)
                assert "healthcheck" in services[dependency], dependency
    for name in ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
                 "airflow-triggerer"):
        assert services[name]["depends_on"]["airflow-init"]["condition"] == \
            "service_completed_successfully"
        assert services[name]["environment"]["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert services["aws-init"]["depends_on"] == {"moto": {"condition": "service_healthy"}}
    assert services["github-sim"]["profiles"] == ["github-sim"]
    assert services["ghvault"]["build"] == {"context": "image"}
    assert "_PIP_ADDITIONAL_REQUIREMENTS" not in COMPOSE.read_text()


def readme_section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("## Local Airflow with Docker")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


def test_commands_are_the_ones_the_readme_documents(compose) -> None:
    section = readme_section()
    for name, service in compose["services"].items():
        argv = [*(service.get("entrypoint") or [] if isinstance(service.get("entrypoint"),
                                                                 list) else []),
                *(service.get("command") or [])]
        if isinstance(service.get("entrypoint"), str):
            argv = [service["entrypoint"], *argv]
        if not argv:
            continue  # the image's own command (postgres, moto)
        documented = shlex.join(argv).replace("$$", "$")
        assert f"`{name}`" in section and documented in section, (name, documented)
