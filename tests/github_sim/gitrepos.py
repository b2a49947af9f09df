"""Real git repositories for the simulator, written quickly with `git fast-import`.

A `History` collects blobs, commits, tags, notes and refs as a fast-import stream; `run`
feeds it to `git fast-import` in a bare repository and returns the sha of every mark.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

GIT_ENV_BASE = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_TERMINAL_PROMPT": "0",
    "LC_ALL": "C",
}


def git(args: list[str], cwd: Path | None = None, env: dict[str, str] | None = None,
        input: bytes | None = None) -> bytes:
    import os

    full_env = {**os.environ, **GIT_ENV_BASE, **(env or {})}
    proc = subprocess.run(["git", *args], cwd=cwd, env=full_env, input=input,
                          capture_output=True)
    if proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {proc.stderr.decode(errors='replace')}")
    return proc.stdout


def init_bare(path: Path, default_branch: str = "main") -> None:
    path.mkdir(parents=True, exist_ok=True)
    git(["init", "--quiet", "--bare", f"--initial-branch={default_branch}", str(path)])
    # What `git http-backend` needs to serve the repository read-write over smart HTTP.
    git(["config", "http.receivepack", "true"], cwd=path)
    git(["config", "uploadpack.allowAnySHA1InWant", "true"], cwd=path)


@dataclass
class Person:
    name: str
    email: str

    def stamp(self, epoch: int) -> str:
        return f"{self.name} <{self.email}> {epoch} +0000"


@dataclass
class History:
    """A fast-import stream under construction. Marks are ints; `run` maps them to shas."""

    chunks: list[bytes] = field(default_factory=list)
    next_mark: int = 1

    def _mark(self) -> int:
        m = self.next_mark
        self.next_mark += 1
        return m

    @staticmethod
    def _data(payload: bytes) -> bytes:
        return b"data %d\n" % len(payload) + payload + b"\n"

    def blob(self, content: bytes) -> int:
        m = self._mark()
        self.chunks.append(b"blob\nmark :%d\n" % m + self._data(content))
        return m

    def commit(self, ref: str, who: Person, epoch: int, message: str,
               files: dict[str, int | None], parent: int | str | None = None,
               merge: int | None = None, reset_tree: bool = False) -> int:
        """files: path -> blob mark (None deletes the path)."""
        m = self._mark()
        out = [f"commit {ref}\nmark :{m}\n".encode(),
               f"author {who.stamp(epoch)}\ncommitter {who.stamp(epoch)}\n".encode(),
               self._data(message.encode())]
        if isinstance(parent, str):  # an existing commit, by sha
            out.append(f"from {parent}\n".encode())
        elif parent is not None:
            out.append(f"from :{parent}\n".encode())
        if merge is not None:
            out.append(f"merge :{merge}\n".encode())
        if reset_tree:
            out.append(b"deleteall\n")
        for path, blob in sorted(files.items()):
            if blob is None:
                out.append(f"D {path}\n".encode())
            else:
                out.append(f"M 100644 :{blob} {path}\n".encode())
        out.append(b"\n")
        self.chunks.append(b"".join(out))
        return m

    def annotated_tag(self, name: str, target: int, who: Person, epoch: int,
                      message: str) -> None:
        self.chunks.append(f"tag {name}\nfrom :{target}\ntagger {who.stamp(epoch)}\n".encode()
                           + self._data(message.encode()))

    def ref(self, ref: str, target: int) -> None:
        """A plain ref (branch, lightweight tag, refs/pull/N/head) at a commit."""
        self.chunks.append(f"reset {ref}\nfrom :{target}\n\n".encode())

    def note(self, target: int, text: str, who: Person, epoch: int,
             parent: int | None = None) -> int:
        m = self._mark()
        body = [f"commit refs/notes/commits\nmark :{m}\n".encode(),
                f"committer {who.stamp(epoch)}\n".encode(), self._data(b"Notes added")]
        if parent is not None:
            body.append(f"from :{parent}\n".encode())
        body.append(f"N inline :{target}\n".encode() + self._data(text.encode()))
        self.chunks.append(b"".join(body) + b"\n")
        return m

    def run(self, repo: Path) -> dict[int, str]:
        marks_file = repo / "fast-import.marks"
        stream = b"".join(self.chunks) + b"done\n"
        git(["fast-import", "--quiet", "--done", f"--export-marks={marks_file}"],
            cwd=repo, input=stream)
        marks: dict[int, str] = {}
        for line in marks_file.read_text().splitlines():
            mark, sha = line.split()
            marks[int(mark[1:])] = sha
        marks_file.unlink()
        return marks


def pack(repo: Path) -> None:
    """Repack so the repository is served from one pack, as a hosted repository is."""
    git(["repack", "-adq"], cwd=repo)
    git(["pack-refs", "--all"], cwd=repo)


def ref_map(repo: Path) -> dict[str, str]:
    """Every ref of a repository -> sha (what a mirror of it must contain)."""
    out = git(["for-each-ref", "--format=%(objectname) %(refname)"], cwd=repo).decode()
    refs = {}
    for line in out.splitlines():
        sha, name = line.split(" ", 1)
        refs[name] = sha
    return refs


def disk_kb(path: Path) -> int:
    total = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return max(1, total // 1024)
