"""docker-compose.yaml without an engine (`make compose-test` brings it up for real): it
validates against the Compose Specification's JSON schema (as shipped by the npm package
dclint), every file it builds from or mounts exists, services start in order, each
service's command is the one the README documents, and the official images stay the
defaults that local stand-ins (docker/local) replace only through variables."""

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
            elif source.startswith("${"):  # the engine's socket, see the docker runner test
                assert volume.startswith("${DOCKER_SOCKET:-/var/run/docker.sock}:"), name
            else:
                assert source in compose["volumes"], (name, source)
    dockerfile = (ROOT / "docker" / "airflow" / "Dockerfile").read_text()
    assert "ARG AIRFLOW_BASE=apache/airflow:3.3.2-python3.11\nFROM ${AIRFLOW_BASE} AS airflow" \
        in dockerfile


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


def test_official_images_are_the_defaults_and_stand_ins_replace_them_by_variable(
        compose) -> None:
    from devtools.compose_images import LOCAL, STAND_INS

    services = compose["services"]
    dockerfile = (ROOT / "docker" / "airflow" / "Dockerfile").read_text()
    official_airflow = re.search(r"^ARG AIRFLOW_BASE=(\S+)$", dockerfile, re.M)[1]
    assert official_airflow == "apache/airflow:3.3.2-python3.11"
    built = [s["build"] for s in services.values()
             if isinstance(s.get("build"), dict) and
             s["build"].get("dockerfile") == "docker/airflow/Dockerfile"]
    assert len(built) == 7  # 5 Airflow services through x-airflow-common, aws-init, github-sim
    for build in built:
        assert build["args"] == {"AIRFLOW_BASE": f"${{AIRFLOW_BASE:-{official_airflow}}}"}
    assert services["postgres"]["image"] == "${POSTGRES_IMAGE:-postgres:16}"
    moto_pin = re.search(r"^moto==(\S+)$", (ROOT / "constraints.txt").read_text(), re.M)[1]
    assert services["moto"]["image"] == f"${{MOTO_IMAGE:-motoserver/moto:{moto_pin}}}"
    text = COMPOSE.read_text()
    for variable, name in STAND_INS.items():
        assert f"${{{variable}:-" in text, variable
        stand_in = (LOCAL / name / "Dockerfile").read_text()
        assert re.search(r"^ARG BASE_IMAGE\nFROM \$\{BASE_IMAGE\}$", stand_in, re.M), name


def test_health_checks_survive_podmans_docker_api(compose) -> None:
    """podman 4.3's Docker API splits each argument of a CMD health check at whitespace, so
    an argument with a space must be a CMD-SHELL string instead."""
    checks = {name: s["healthcheck"]["test"] for name, s in compose["services"].items()
              if "healthcheck" in s}
    assert len(checks) == 7
    for name, test in checks.items():
        assert test[0] in ("CMD", "CMD-SHELL"), name
        if test[0] == "CMD":
            assert not any(re.search(r"\s", arg) for arg in test[1:]), (name, test)
        else:
            assert len(test) == 2, name


def test_host_ports_are_variables_with_the_documented_defaults(compose) -> None:
    ports = {name: s["ports"] for name, s in compose["services"].items() if "ports" in s}
    assert ports == {"moto": ["${MOTO_PORT:-5000}:5000"],
                     "airflow-apiserver": ["${AIRFLOW_PORT:-8080}:8080"],
                     "github-sim": ["${SIM_PORT:-8765}:8765"]}


def test_the_airflow_build_context_sends_what_the_dockerfile_copies() -> None:
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    dockerfile = (ROOT / "docker" / "airflow" / "Dockerfile").read_text()
    copied = set()
    for sources in re.findall(r"^COPY (?:--\S+ )*(.+) \S+$", dockerfile, re.M):
        copied |= {s.rstrip("/") for s in sources.split()}
    assert copied == allowed


def test_the_worker_reaches_the_engine_for_the_docker_runner(compose) -> None:
    """Only the worker (the scheduler, with the LocalExecutor) gets the engine's socket: it
    is root on the host. Its engine containers join the stack's named network and run the
    image the `ghvault` service builds."""
    services = compose["services"]
    socket = "${DOCKER_SOCKET:-/var/run/docker.sock}:/var/run/docker.sock"
    mounting = {name for name, s in services.items() if socket in s.get("volumes", [])}
    assert mounting == {"airflow-scheduler"}
    scheduler = services["airflow-scheduler"]
    common = compose["x-airflow-common"]["volumes"]
    assert scheduler["volumes"] == [*common, socket]  # the common mounts, repeated
    assert scheduler["group_add"] == ["${DOCKER_GID:-0}"]
    env = scheduler["environment"]
    assert env["GHVAULT_DOCKER_NETWORK"] == compose["networks"]["default"]["name"] == \
        "${COMPOSE_NETWORK:-ghvault}"
    engine_image = services["ghvault"]["image"]
    assert env["GHVAULT_DOCKER_IMAGE"] == f"${{GHVAULT_DOCKER_IMAGE:-{engine_image}}}"
