"""The images docker-compose.yaml runs, built with this machine's engine.

With Docker (or a podman that can pull), the compose file's defaults hold: the official
apache/airflow, postgres and motoserver/moto images. Where no registry answers (these
machines), each official image is replaced by a stand-in built once from docker/local/<name>
on the local Debian base of `make image` (devtools/image.py), tagged by a hash of what it
is made of and kept in the engine's image store (outside the repository), then the compose
file's own builds run on them through their build arguments (AIRFLOW_BASE) and image
variables (POSTGRES_IMAGE, MOTO_IMAGE).

The builds run through the engine's CLI rather than `docker-compose build`: docker-compose
1.29 cannot hand pip the CA bundle as a build secret, which pip needs behind this network's
TLS-inspecting proxy.

    python3 -m devtools.compose_images      # prints the variables compose needs, as JSON

Standard library only, as devtools/image.py.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from devtools import image
from devtools.containers import image_exists

ROOT = image.ROOT
LOCAL = ROOT / "docker" / "local"
AIRFLOW_DOCKERFILE = ROOT / "docker" / "airflow" / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yaml"
# compose variable -> the stand-in built from docker/local/<name>
STAND_INS = {"AIRFLOW_BASE": "airflow", "POSTGRES_IMAGE": "postgres", "MOTO_IMAGE": "moto"}


def log(msg: str) -> None:
    print(f"compose-images: {msg}", flush=True)


def compose_images() -> dict[str, str]:
    """The images compose's `up --no-build` expects, by service role: read from the
    compose file so the names stay in one place."""
    text = COMPOSE.read_text()
    names = {}
    for role, pattern in {"airflow": r"image: (ghvault-airflow:\S+)",
                          "tools": r"image: (ghvault-tools:\S+)",
                          "engine": r"image: (ghvault:\S+)"}.items():
        match = re.search(pattern, text)
        if not match:
            image.die(f"docker-compose.yaml names no `{pattern}` image")
        names[role] = match[1]
    return names


def build(cli: str, tag: str, context: Path, dockerfile: Path, args: dict[str, str],
          target: str | None = None) -> None:
    # the host's network: pip's many downloads met name-resolution failures on the
    # engine's private build network here
    cmd = [cli, "build", "--network", "host", "--tag", tag, "--file", str(dockerfile)]
    for key, value in args.items():
        cmd += ["--build-arg", f"{key}={value}"]
    if target:
        cmd += ["--target", target]
    cert = image.pip_cert()
    if cert:  # a build secret, as in devtools/image.py: in no layer
        cmd += ["--secret", f"id=pip_cert,src={cert}"]
    started = time.monotonic()
    log(f"{cli} build --tag {tag}" + (f" --target {target}" if target else ""))
    if subprocess.run([*cmd, str(context)], stdout=subprocess.DEVNULL).returncode != 0:
        image.die(f"{cli} build of {tag} failed (its output is above)")
    log(f"built {tag} in {time.monotonic() - started:.0f} s")


def stand_in(cli: str, name: str, base: str) -> str:
    """docker/local/<name> built on `base`, tagged by the hash of its files, the pinned
    set and the base (so a change to any of them makes a new image, and nothing else does)."""
    digest = hashlib.sha256(base.encode())
    files = sorted(p for p in (LOCAL / name).rglob("*") if p.is_file())
    for path in [*files, ROOT / "constraints.txt"]:
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    tag = f"localhost/ghvault-{name}-standin:{digest.hexdigest()[:16]}"
    if image_exists(cli, tag):
        return tag
    with tempfile.TemporaryDirectory(prefix=f"ghvault-{name}-") as tmp:
        context = Path(tmp)
        for path in files:
            shutil.copy2(path, context / path.name)
        shutil.copy2(ROOT / "constraints.txt", context / "constraints.txt")
        build(cli, tag, context, context / "Dockerfile", {"BASE_IMAGE": base})
    return tag


def build_all(cli: str, base_mode: str = "auto") -> dict[str, str]:
    """Build every image the stack runs; return the compose variables to set (empty when
    the official images are used)."""
    names = compose_images()
    base = image.choose_base(cli, base_mode)
    variables = {}
    if base != image.official_base():
        variables = {var: stand_in(cli, name, base) for var, name in STAND_INS.items()}
    args = {"AIRFLOW_BASE": variables["AIRFLOW_BASE"]} if variables else {}
    build(cli, names["airflow"], ROOT, AIRFLOW_DOCKERFILE, args, target="airflow")
    build(cli, names["tools"], ROOT, AIRFLOW_DOCKERFILE, args, target="tools")
    image.main(["--tag", names["engine"], "--base", base_mode])
    return variables


def engine() -> str:
    """docker, or podman installed and configured as `make image` does it."""
    from devtools.containers import docker_running

    if docker_running():
        return "docker"
    image.apt_install(["podman", "runc"])
    image.configure_podman()
    return "podman"


def main() -> int:
    variables = build_all(engine())
    print(json.dumps(variables, indent=2))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except subprocess.CalledProcessError as exc:
        image.die(f"`{' '.join(map(str, exc.cmd))[:200]}` failed with exit {exc.returncode}")
