"""The engine's container image, checked without Docker.

The Dockerfile is parsed and held to its contract (a BASE_IMAGE argument defaulting to the
pinned python slim base, git and git-lfs from Debian where the base lacks them, a numeric
non-root USER, `ghvault` as ENTRYPOINT, scratch space under /tmp, no secret-looking
ARG/ENV); the build context is computed from .dockerignore the way Docker does;
image/constraints.txt must pin exactly the runtime closure at the versions of the top-level
constraints.txt; and the build stage's COPY + `pip install -c constraints.txt .` is
replayed into an empty virtualenv whose `ghvault` must then work. The image itself is
built and run in tests/container/.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pytest
from ghvault import __version__
from ghvault.errors import EXIT_CODES
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
IMAGE = ROOT / "image"
DOCKERFILE = IMAGE / "Dockerfile"
BASE_IMAGE = re.compile(r"^python:3\.11\.\d+-slim-bookworm$")
SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|KEY|CREDENTIAL", re.I)


# --- a small Dockerfile parser ---------------------------------------------------------------

@dataclass(frozen=True)
class Instruction:
    stage: int  # index of the FROM this instruction belongs to
    cmd: str  # upper case: FROM, RUN, COPY, ...
    flags: tuple[str, ...]  # leading --flag[=value] words (COPY --from=..., RUN --mount=...)
    args: str  # the rest, continuations joined with a space

    def words(self) -> list[str]:
        return shlex.split(self.args)

    def exec_form(self) -> list[str] | None:
        """The JSON array of ENTRYPOINT/CMD/RUN in exec form, None in shell form."""
        try:
            value = json.loads(self.args)
        except ValueError:
            return None
        return value if isinstance(value, list) else None

    def assignments(self) -> dict[str, str]:
        """ENV/LABEL/ARG `k=v ...` (and the legacy `ENV k v`) as a dict."""
        words = self.words()
        if self.cmd == "ENV" and words and "=" not in words[0]:
            return {words[0]: " ".join(words[1:])}
        return dict(w.split("=", 1) if "=" in w else (w, "") for w in words)


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions in order: comments dropped, `\\` continuations joined (comment lines
    inside a continuation are skipped, as Docker does), flags split off."""
    instructions: list[Instruction] = []
    stage, pending = -1, ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        logical, pending = pending + line, ""
        cmd, _, rest = logical.partition(" ")
        cmd = cmd.upper()
        flags: list[str] = []
        rest = rest.strip()
        while rest.startswith("--"):
            flag, _, rest = rest.partition(" ")
            flags.append(flag)
            rest = rest.strip()
        if cmd == "FROM":
            stage += 1
        instructions.append(Instruction(stage, cmd, tuple(flags), rest))
    assert not pending, "the Dockerfile ends inside a line continuation"
    return instructions


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    """The instructions of each stage; global ARGs (before the first FROM) belong to none."""
    out: list[list[Instruction]] = []
    for ins in instructions:
        if ins.cmd == "FROM":
            out.append([])
        if not out:
            assert ins.cmd == "ARG", f"{ins.cmd} before the first FROM"
            continue
        out[-1].append(ins)
    return out


@pytest.fixture(scope="module")
def dockerfile() -> list[Instruction]:
    return parse_dockerfile(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def final_stage(dockerfile: list[Instruction]) -> list[Instruction]:
    return stages(dockerfile)[-1]


# --- .dockerignore, with Docker's matching rules ----------------------------------------------

def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Go's filepath.Match syntax plus `**` (any number of directories), as moby's
    patternmatcher translates it."""
    out, i = "", 0
    while i < len(pattern):
        ch = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):
                i += 1
            out += ".*" if i == len(pattern) else "(.*/)?"
            continue
        if ch == "*":
            out += "[^/]*"
        elif ch == "?":
            out += "[^/]"
        elif ch == "[":
            end = pattern.index("]", i + 1)
            out += "[" + pattern[i + 1:end].replace("\\", "\\\\") + "]"
            i = end
        elif ch == "\\" and i + 1 < len(pattern):
            i += 1
            out += re.escape(pattern[i])
        else:
            out += re.escape(ch)
        i += 1
    return re.compile(out + r"\Z")


def dockerignore_rules(text: str) -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        line = line[1:].strip() if negate else line
        cleaned = os.path.normpath(line).lstrip("/")
        rules.append((negate, _pattern_regex(cleaned)))
    return rules


def excluded(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether Docker leaves `path` (relative, POSIX) out of the build context: the last
    rule matching the path or one of its parent directories decides."""
    parts = PurePosixPath(path).parts
    candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    verdict = False
    for negate, regex in rules:
        if any(regex.match(c) for c in candidates):
            verdict = not negate
    return verdict


def build_context() -> set[str]:
    """The files Docker sends for `docker build image/`."""
    rules = dockerignore_rules((IMAGE / ".dockerignore").read_text())
    files = {p.relative_to(IMAGE).as_posix() for p in IMAGE.rglob("*") if p.is_file()}
    return {f for f in files if not excluded(f, rules)}


def copy_sources(instructions: list[Instruction]) -> list[tuple[Instruction, list[str], str]]:
    """(instruction, sources, destination) of every COPY/ADD that reads the build context."""
    out = []
    for ins in instructions:
        if ins.cmd in ("COPY", "ADD") and not any(f.startswith("--from") for f in ins.flags):
            words = ins.exec_form() or ins.words()
            out.append((ins, words[:-1], words[-1]))
    return out


# --- constraints --------------------------------------------------------------------------

def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(path: Path) -> dict[str, tuple[str, str]]:
    """canonical name -> (name as written, version) of every `name==version` line."""
    pins = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", line)
        assert match, f"{path.name}: {raw!r} is not a `name==version` pin"
        assert canonical(match[1]) not in pins, f"{path.name}: {match[1]} is pinned twice"
        pins[canonical(match[1])] = (match[1], match[2])
    return pins


def runtime_closure() -> dict[str, str]:
    """canonical name -> installed version for image/pyproject.toml's dependencies and,
    recursively, theirs (extras and environment markers honoured), from this venv."""
    project = tomllib.loads((IMAGE / "pyproject.toml").read_text())["project"]
    todo = [Requirement(r) for r in project["dependencies"]]
    found: dict[str, str] = {}
    expanded: set[tuple[str, str]] = set()
    while todo:
        req = todo.pop()
        name = canonical(req.name)
        dist = importlib.metadata.distribution(req.name)
        found[name] = dist.version
        for extra in ("", *sorted(req.extras)):
            if (name, extra) in expanded:
                continue
            expanded.add((name, extra))
            for spec in dist.requires or []:
                dep = Requirement(spec)
                if dep.marker is None:
                    if not extra:
                        todo.append(dep)
                elif dep.marker.evaluate({"extra": extra}) and (
                        not extra or "extra" in str(dep.marker)):
                    todo.append(dep)
    return found


# --- the Dockerfile --------------------------------------------------------------------------

def test_every_stage_builds_on_one_base_argument_defaulting_to_python_311_slim(dockerfile):
    global_args = {k: v for ins in dockerfile if ins.cmd == "ARG" and ins.stage == -1
                   for k, v in ins.assignments().items()}
    base = global_args.get("BASE_IMAGE", "")
    assert BASE_IMAGE.match(base), \
        f"ARG BASE_IMAGE={base} should default to python:3.11.<patch>-slim-bookworm"
    froms = [ins.words() for ins in dockerfile if ins.cmd == "FROM"]
    aliases = {w[2].lower() for w in froms if len(w) == 3 and w[1].upper() == "AS"}
    bases = {w[0] for w in froms if w[0].lower() not in aliases}
    assert bases == {"${BASE_IMAGE}"}, f"every stage should be FROM ${{BASE_IMAGE}}: {bases}"
    final = stages(dockerfile)[-1]
    assert any(ins.cmd == "ARG" and ins.args == "BASE_IMAGE" for ins in final), \
        "the final stage should re-declare ARG BASE_IMAGE for its label"
    labels = {k: v for ins in dockerfile if ins.cmd == "LABEL"
              for k, v in ins.assignments().items()}
    assert labels.get("org.opencontainers.image.base.name") == "${BASE_IMAGE}"


def test_final_stage_runs_ghvault_as_a_numeric_non_root_user(final_stage):
    users = [ins.args for ins in final_stage if ins.cmd == "USER"]
    assert users, "the final stage has no USER: the engine would run as root"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0, f"USER {users[-1]} must be a numeric UID, not 0"
    assert not gid or (gid.isdigit() and int(gid) != 0), f"USER {users[-1]}: numeric GID"
    entrypoints = [ins for ins in final_stage if ins.cmd == "ENTRYPOINT"]
    assert entrypoints and entrypoints[-1].exec_form() == ["ghvault"], \
        'the final stage needs ENTRYPOINT ["ghvault"] (exec form)'
    cmds = [ins for ins in final_stage if ins.cmd == "CMD"]
    assert cmds and cmds[-1].exec_form() == ["--help"], 'the final stage needs CMD ["--help"]'


def test_scratch_space_is_under_tmp_and_writable_by_that_user(final_stage):
    workdir = [ins.args for ins in final_stage if ins.cmd == "WORKDIR"][-1]
    assert PurePosixPath(workdir).is_relative_to("/tmp"), f"WORKDIR {workdir} not under /tmp"
    env = {k: v for ins in final_stage if ins.cmd == "ENV" for k, v in ins.assignments().items()}
    assert env.get("TMPDIR") == workdir, "TMPDIR (the --workdir default) should be WORKDIR"
    assert PurePosixPath(env.get("HOME", "/")).is_relative_to("/tmp")
    assert env.get("PYTHONDONTWRITEBYTECODE") == "1"
    assert env.get("PYTHONUNBUFFERED") == "1"
    uid = [ins.args for ins in final_stage if ins.cmd == "USER"][-1].split(":")[0]
    runs = " ".join(ins.args for ins in final_stage if ins.cmd == "RUN")
    assert re.search(rf"install -d -o {uid} -g \d+ -m 07\d\d {re.escape(workdir)}\b", runs), \
        f"{workdir} should be created owned by UID {uid}"


def test_git_and_git_lfs_come_from_debian_without_recommends(final_stage):
    runs = [ins.args for ins in final_stage if ins.cmd == "RUN"]
    installs = [r for r in runs if "apt-get install" in r]
    assert len(installs) == 1, "the final stage should have one apt-get install step"
    run = installs[0]
    assert "apt-get update" in run, "apt-get update belongs in the same RUN as install"
    assert "--no-install-recommends" in run, f"apt-get install without "\
        f"--no-install-recommends: {run}"
    assert "rm -rf /var/lib/apt/lists/*" in run, "apt lists should not stay in the layer"
    # only the packages the base lacks are installed (a base that has them needs no apt)
    listed = re.search(r"for pkg in ([^;]+); do", run)
    assert listed and "dpkg-query" in run and "$missing" in run, run
    assert {"git", "git-lfs", "ca-certificates"} <= set(listed[1].split()), listed[1]


def test_no_secret_in_build_arguments_or_environment(dockerfile):
    for ins in dockerfile:
        if ins.cmd in ("ARG", "ENV"):
            for name in ins.assignments():
                assert not SECRET_NAME.search(name), \
                    f"{ins.cmd} {name}: secrets are passed at run time, never baked in"
    text = DOCKERFILE.read_text()
    assert "GITHUB_TOKEN=" not in text and "ghp_" not in text


def test_image_version_label_follows_the_package(dockerfile):
    args = {k: v for ins in dockerfile if ins.cmd == "ARG" for k, v in ins.assignments().items()}
    project = tomllib.loads((IMAGE / "pyproject.toml").read_text())["project"]
    assert args.get("VERSION") == project["version"] == __version__


def test_the_build_installs_the_package_with_the_image_constraints(dockerfile):
    build = stages(dockerfile)[0]
    copied = {s for _, sources, _ in copy_sources(build) for s in sources}
    assert {"pyproject.toml", "constraints.txt", "ghvault/"} <= copied
    runs = " ".join(ins.args for ins in build if ins.cmd == "RUN")
    assert re.search(r"pip install (--no-cache-dir )?-c constraints\.txt \.", runs), runs
    assert "--no-cache-dir" in runs
    final_copies = [ins for ins in stages(dockerfile)[-1] if ins.cmd == "COPY"]
    assert all(any(f.startswith("--from=") for f in ins.flags) for ins in final_copies), \
        "the final stage should take only the built virtualenv, not the sources"


def test_every_copy_source_is_in_the_build_context(dockerfile):
    context = build_context()
    for _ins, sources, _ in copy_sources(dockerfile):
        for source in sources:
            path = source.rstrip("/")
            assert (IMAGE / path).exists(), f"COPY {source}: no such file in image/"
            if (IMAGE / path).is_dir():
                assert any(f.startswith(path + "/") for f in context), \
                    f"COPY {source}: .dockerignore leaves all of it out"
            else:
                assert path in context, f"COPY {source}: excluded by .dockerignore"


def test_dockerignore_keeps_the_package_and_drops_debris():
    rules = dockerignore_rules((IMAGE / ".dockerignore").read_text())
    modules = [p.relative_to(IMAGE).as_posix() for p in (IMAGE / "ghvault").rglob("*.py")
               if "__pycache__" not in p.parts]
    assert modules
    for kept in ["pyproject.toml", "constraints.txt", *modules]:
        assert not excluded(kept, rules), f"{kept} would be missing from the build context"
    for dropped in ["ghvault/__pycache__/cli.cpython-311.pyc",
                    "ghvault/collect/__pycache__/repos.cpython-311.pyc",
                    "ghvault/collect/stale.pyc", "ghvault.egg-info/PKG-INFO",
                    "ghvault/ghvault.egg-info/SOURCES.txt", "build/lib/ghvault/cli.py",
                    "dist/ghvault-0.1.0.whl", "tests/test_cli.py", ".venv/bin/python",
                    ".git/config", "ghvault/.pytest_cache/v/cache/nodeids", ".env",
                    "notes.txt"]:
        assert excluded(dropped, rules), f"{dropped} would be sent to the Docker daemon"


def test_dockerignore_matcher_follows_docker_rules():
    rules = dockerignore_rules("*\n!keep/\n**/*.log\n!keep/important.log\n/abs\n")
    assert excluded("top.txt", rules) and excluded("abs", rules)
    assert not excluded("keep/a/b.py", rules)
    assert excluded("keep/a/x.log", rules)
    assert not excluded("keep/important.log", rules)


# --- image/constraints.txt ---------------------------------------------------------------------

def test_image_constraints_agree_with_the_top_level_pins():
    image, top = read_pins(IMAGE / "constraints.txt"), read_pins(ROOT / "constraints.txt")
    missing = sorted(name for _, (name, _) in image.items() if canonical(name) not in top)
    assert not missing, f"pinned for the image but not in constraints.txt: {missing}"
    drift = {image[n][0]: (image[n][1], top[n][1]) for n in image if image[n][1] != top[n][1]}
    assert not drift, f"image/constraints.txt differs from constraints.txt ({{name: " \
                      f"(image, top)}}): {drift}"


def test_image_constraints_pin_exactly_the_runtime_closure():
    closure = runtime_closure()
    image, top = read_pins(IMAGE / "constraints.txt"), read_pins(ROOT / "constraints.txt")
    expected = "\n".join(f"{top[n][0]}=={top[n][1]}" if n in top else f"{n}==?"
                         for n in sorted(closure))
    assert set(image) == set(closure), (
        f"image/constraints.txt should pin the engine's runtime closure, no more, no less: "
        f"missing {sorted(set(closure) - set(image))}, extra "
        f"{sorted(set(image) - set(closure))}; expected pins:\n{expected}")
    off = {n: (closure[n], image[n][1]) for n in closure if closure[n] != image[n][1]}
    assert not off, f"installed in .venv vs pinned for the image: {off} (run make test)"


# --- a real install into an empty virtualenv ---------------------------------------------------

def _replay_build_copies(dockerfile: list[Instruction], dest_root: Path) -> Path:
    """Lay out the build stage's WORKDIR as its COPY instructions would (context filtered by
    .dockerignore) and return it."""
    build = stages(dockerfile)[0]
    workdir = PurePosixPath([ins.args for ins in build if ins.cmd == "WORKDIR"][-1])
    target = dest_root / workdir.relative_to("/")
    context = build_context()
    for _, sources, dest in copy_sources(build):
        into = target / dest
        for source in sources:
            path = source.rstrip("/")
            if (IMAGE / path).is_dir():  # Docker copies a directory's contents
                for rel in sorted(f for f in context if f.startswith(path + "/")):
                    out = into / rel[len(path) + 1:]
                    out.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(IMAGE / rel, out)
            else:
                out = into / Path(path).name if dest.endswith("/") else into
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(IMAGE / path, out)
    return target


def _clean_env(home: Path) -> dict[str, str]:
    """This machine's environment (pip's index settings included) without GitHub or AWS
    credentials, virtualenv or Python path leaking in."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GITHUB_", "GH_", "AWS_", "PYTHON", "VIRTUAL_ENV"))}
    env.update({"HOME": str(home), "PYTHONDONTWRITEBYTECODE": "1", "LC_ALL": "C.UTF-8"})
    return env


@pytest.mark.slow
def test_ghvault_installs_into_an_empty_venv_and_its_entrypoint_works(dockerfile, tmp_path):
    src = _replay_build_copies(dockerfile, tmp_path / "root")
    home = tmp_path / "home"
    home.mkdir()
    env = _clean_env(home)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    started = time.monotonic()
    install = subprocess.run(
        [str(venv / "bin/python"), "-m", "pip", "install", "--quiet",
         "--disable-pip-version-check", "-c", "constraints.txt", "."],
        cwd=src, env=env, capture_output=True, text=True, timeout=480)
    took = time.monotonic() - started
    assert install.returncode == 0, f"pip install failed after {took:.0f} s:\n{install.stderr}"
    print(f"pip install -c constraints.txt . into an empty venv took {took:.1f} s")

    def run(*argv: str, **kwargs) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(argv), cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=120, **kwargs)

    python, ghvault = str(venv / "bin/python"), str(venv / "bin/ghvault")
    check = run(python, "-m", "pip", "check", "--disable-pip-version-check")
    assert check.returncode == 0, check.stdout + check.stderr
    freeze = run(python, "-m", "pip", "freeze", "--disable-pip-version-check")
    installed = {canonical(n.strip()): v.strip() for n, v in (
        line.split(" @ " if " @ " in line else "==", 1) for line in freeze.stdout.splitlines())}
    assert installed.pop("ghvault", "").startswith("file://"), freeze.stdout
    pins = {n: v for n, (_, v) in read_pins(src / "constraints.txt").items()}
    assert installed == pins, \
        "the empty venv should hold exactly the package and image/constraints.txt"
    where = run(python, "-c", "import ghvault; print(ghvault.__file__)")
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout + where.stderr

    top = run(ghvault, "--help")
    assert top.returncode == 0 and "run" in top.stdout, top.stdout + top.stderr
    version = run(ghvault, "--version")
    assert version.returncode == 0 and version.stdout.strip() == f"ghvault {__version__}"
    run_help = run(ghvault, "run", "--help")
    assert run_help.returncode == 0, run_help.stderr
    for code, text in EXIT_CODES.items():
        assert f"  {code}  {text}" in run_help.stdout, f"exit code {code} is not documented"
    assert "GITHUB_TOKEN" in run_help.stdout

    out, work = tmp_path / "out", tmp_path / "work"
    out.mkdir()
    work.mkdir()
    no_token = run(ghvault, "run", "--owner", "octocat", "--month", "2026-01",
                   "--dest", f"file://{out}/octocat-2026-01.zip",
                   "--api-url", "http://127.0.0.1:9/api/v3", "--workdir", str(work))
    assert no_token.returncode == 3, no_token.stdout + no_token.stderr
    lines = [line for line in no_token.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("ghvault: error:"), no_token.stderr
    assert "GITHUB_TOKEN" in lines[0]
    assert no_token.stdout == ""
    assert not any(out.iterdir()) and not any(work.iterdir()), "nothing should be written"
