"""`make image`: build the engine image (image/Dockerfile, context image/) as ghvault:dev.

Docker where a Docker engine runs; podman otherwise, installed from Debian's packages and
configured (/etc/containers/containers.conf) when neither is there. Docker builds on the
Dockerfile's default base, the official python image. Podman uses that base when it is
present or can be pulled; where no registry answers (these machines), it builds a local
Debian base once with debootstrap, tagged by a hash of what it holds, and reuses it.

    python3 -m devtools.image [--tag ghvault:dev] [--base official|local|auto]

Standard library only: this runs before the project's virtualenv exists.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

from devtools.containers import docker_running, image_exists

ROOT = Path(__file__).resolve().parents[1]
CONTEXT = ROOT / "image"
CONTAINERS_CONF = Path("/etc/containers/containers.conf")
# What the local base holds; any change here makes a new base (the tag is its hash).
BASE_RECIPE = {
    "version": 1,
    "suite": "bookworm",
    "variant": "minbase",
    # python3 + venv for the build stage; git, git-lfs, ca-certificates for the runtime
    # stage (so its apt-get step has nothing to do); passwd for groupadd/useradd.
    "packages": ["ca-certificates", "git", "git-lfs", "passwd", "python3", "python3-venv"],
}
BASE_REPO = "localhost/ghvault-base"
PULL_TIMEOUT = 60


def log(msg: str) -> None:
    print(f"image: {msg}", flush=True)


def die(msg: str) -> None:
    print(f"image: error: {msg}", file=sys.stderr)
    sys.exit(1)


def run(*argv: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), check=True, **kwargs)


def official_base() -> str:
    match = re.search(r"^ARG BASE_IMAGE=(\S+)", (CONTEXT / "Dockerfile").read_text(), re.M)
    if not match:
        die("image/Dockerfile has no `ARG BASE_IMAGE=...` default")
    return match[1]


# --- podman from Debian ------------------------------------------------------------------

def missing_debs(packages: list[str]) -> list[str]:
    out = []
    for pkg in packages:
        status = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg],
                                capture_output=True, text=True).stdout
        if not status.endswith("ok installed"):
            out.append(pkg)
    return out


def apt_install(packages: list[str]) -> None:
    missing = missing_debs(packages)
    if not missing:
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        die(f"{' '.join(missing)} missing: install them with apt-get as root (or start a "
            f"Docker engine)")
    log(f"installing {' '.join(missing)} with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run("apt-get", "update", "-qq", env=env)
    run("apt-get", "install", "-y", "-qq", *missing, env=env, stdout=subprocess.DEVNULL)


def set_toml_key(text: str, section: str, key: str, value: str) -> str:
    """`text` with `key = value` under `[section]`: replaced where the key is set, added
    under the header otherwise; everything else is left as it was."""
    lines = text.splitlines()
    header = next((i for i, line in enumerate(lines) if line.strip() == f"[{section}]"), None)
    if header is None:
        return text.rstrip("\n") + ("\n\n" if text.strip() else "") + \
            f"[{section}]\n{key} = {value}\n"
    end = next((i for i in range(header + 1, len(lines))
                if lines[i].lstrip().startswith("[")), len(lines))
    for i in range(header + 1, end):
        if re.match(rf"\s*{re.escape(key)}\s*=", lines[i]):
            lines[i] = f"{key} = {value}"
            break
    else:
        lines.insert(header + 1, f"{key} = {value}")
    return "\n".join(lines) + "\n"


def configure_podman() -> None:
    """The two settings podman needs here (see NOTES on containers): runc, since crun fails
    on hybrid cgroups, and no default ulimits, since raising RLIMIT_NOFILE is refused."""
    wanted = {("engine", "runtime"): '"runc"', ("containers", "default_ulimits"): "[]"}
    text = CONTAINERS_CONF.read_text() if CONTAINERS_CONF.exists() else ""
    current = tomllib.loads(text)
    new = text
    for (section, key), value in wanted.items():
        if current.get(section, {}).get(key) != tomllib.loads(f"v = {value}")["v"]:
            new = set_toml_key(new, section, key, value)
    if new != text:
        if os.geteuid() != 0:
            die(f"{CONTAINERS_CONF} needs {wanted}: run `make image` as root once")
        log(f"setting runc and default_ulimits = [] in {CONTAINERS_CONF}")
        CONTAINERS_CONF.parent.mkdir(parents=True, exist_ok=True)
        CONTAINERS_CONF.write_text(new)


# --- the local Debian base -----------------------------------------------------------------

def base_tag() -> str:
    digest = hashlib.sha256(json.dumps(BASE_RECIPE, sort_keys=True).encode()).hexdigest()
    return f"{BASE_REPO}:{digest[:16]}"


def debian_mirror() -> str:
    """The Debian mirror apt already uses (deb822 or one-line sources)."""
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in sources:
        try:
            text = path.read_text()
        except OSError:
            continue
        for uri in re.findall(r"^URIs:\s*(\S+)", text, re.M) + \
                re.findall(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+bookworm\s", text, re.M):
            if uri.rstrip("/").endswith("/debian"):
                return uri
    return "http://deb.debian.org/debian"


def build_local_base(cli: str, tag: str) -> None:
    apt_install(["debootstrap"])
    mirror = debian_mirror()
    log(f"building the local base {tag} with debootstrap from {mirror} (once per machine)")
    started = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="ghvault-base-", dir="/var/tmp"))
    try:
        run("debootstrap", f"--variant={BASE_RECIPE['variant']}",
            f"--include={','.join(BASE_RECIPE['packages'])}", BASE_RECIPE["suite"],
            str(root), mirror, stdout=subprocess.DEVNULL)
        for debris in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for entry in (root / debris).glob("*"):
                if entry.is_file():
                    entry.unlink()
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        run(cli, "import",
            "--change", "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "--change", "ENV LANG=C.UTF-8", "--change", 'CMD ["/bin/bash"]',
            "-", tag, stdin=tar.stdout, stdout=subprocess.DEVNULL)
        if tar.wait() != 0:
            die("tar of the debootstrap tree failed")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    log(f"local base {tag} built in {time.monotonic() - started:.0f} s")


def choose_base(cli: str, mode: str) -> str:
    official = official_base()
    if cli == "docker" or mode == "official":
        return official
    local = base_tag()
    if mode == "auto":
        if image_exists(cli, official):
            return official
        if image_exists(cli, local):
            return local
        log(f"pulling {official} (up to {PULL_TIMEOUT} s)")
        try:
            pulled = subprocess.run([cli, "pull", "--quiet", official], capture_output=True,
                                    timeout=PULL_TIMEOUT).returncode == 0
        except subprocess.TimeoutExpired:
            pulled = False
        if pulled:
            return official
        log(f"{official} cannot be pulled here: using a local Debian base")
    if not image_exists(cli, local):
        build_local_base(cli, local)
    return local


# --- the build -------------------------------------------------------------------------

def pip_cert() -> Path | None:
    """The CA bundle pip on this host is told to trust (PIP_CERT or pip's `cert`), which a
    build behind a TLS-inspecting proxy needs; None when pip trusts its own bundle."""
    value = os.environ.get("PIP_CERT")
    if not value:
        value = subprocess.run([sys.executable, "-m", "pip", "config", "get", "global.cert"],
                               capture_output=True, text=True).stdout.strip()
    return Path(value) if value and Path(value).is_file() else None


def revision() -> str:
    out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                         text=True)
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tag", default=os.environ.get("IMAGE_TAG", "ghvault:dev"))
    parser.add_argument("--base", choices=["auto", "official", "local"],
                        default=os.environ.get("IMAGE_BASE", "auto"))
    args = parser.parse_args(argv)

    started = time.monotonic()
    if docker_running():
        cli = "docker"
    else:
        # catatonit: the init the docker runner asks for (init=True), so a stop sent before
        # the engine sets its SIGTERM handler still ends the container
        apt_install(["podman", "runc", "catatonit"])
        configure_podman()
        cli = "podman"
        info = subprocess.run(["podman", "info"], capture_output=True, text=True)
        if info.returncode != 0:
            last = (info.stderr.strip().splitlines() or ["no output"])[-1]
            die(f"podman does not run here ({last}): see docs/development.md, "
                f"'The engine image'")
    base = choose_base(cli, args.base)
    cmd = [cli, "build", "--tag", args.tag, "--build-arg", f"BASE_IMAGE={base}",
           "--build-arg", f"REVISION={revision()}"]
    cert = pip_cert()
    if cert:  # a build secret: mounted for the pip step only, in no layer
        cmd += ["--secret", f"id=pip_cert,src={cert}"]
    cmd += ["--file", str(CONTEXT / "Dockerfile"), str(CONTEXT)]
    log(f"{cli} build --tag {args.tag} on {base}")
    env = {**os.environ, "DOCKER_BUILDKIT": "1"}  # secrets need BuildKit on older docker
    if subprocess.run(cmd, env=env).returncode != 0:
        die(f"{cli} build failed (its output is above)")
    log(f"built {args.tag} with {cli} in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except subprocess.CalledProcessError as exc:
        die(f"`{' '.join(map(str, exc.cmd))[:200]}` failed with exit {exc.returncode} "
            f"(its output is above)")
