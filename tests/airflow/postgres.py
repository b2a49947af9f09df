"""A private PostgreSQL cluster for Airflow's metadata DB, as production runs it.

Debian's `postgresql` package (installed by `make test`'s system-deps) provides the server;
`initdb` and `pg_ctl` make a throw-away cluster in a directory of its own, on a free port,
listening on 127.0.0.1 only, with trust authentication for the one role it creates.
PostgreSQL refuses to run as root, so when the tests run as root the cluster belongs to
the `postgres` user Debian's package creates. SQLite is no substitute here: under a
scheduler, a dag-processor, a triggerer and the CLI writing at once it answers "database is
locked" now and then.

Durability is switched off (fsync, synchronous_commit, full_page_writes): the cluster lives
for one test session and nothing in it must survive a crash.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

ROLE = "airflow"
DATABASE = "airflow"


def _server_bin(name: str) -> str:
    """initdb/pg_ctl of the newest PostgreSQL Debian installed (they are not on PATH)."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                   key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    path = found[-1] if found else shutil.which(name)
    if not path:
        raise RuntimeError(f"PostgreSQL's {name} is missing: install Debian's postgresql "
                           "package (make system-deps does it with apt-get)")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivatePostgres:
    """initdb + pg_ctl start in a temporary directory; `url` is what Airflow connects to."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="ghvault-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        # as root, the cluster runs as Debian's `postgres` user, who must own the directory
        self.user = "postgres" if os.geteuid() == 0 else None
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://{ROLE}@127.0.0.1:{self.port}/{DATABASE}"

    def _run(self, *argv: str, timeout: float = 120) -> None:
        command = (["runuser", "-u", self.user, "--"] if self.user else []) + list(argv)
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                cwd=self.dir)
        if result.returncode != 0:
            server_log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() \
                else ""
            raise RuntimeError(f"{' '.join(argv[:2])} failed ({result.returncode}): "
                               f"{(result.stderr or result.stdout)[-2000:]}\n{server_log}")

    def start(self) -> PrivatePostgres:
        self._run(_server_bin("initdb"), "-D", str(self.data), "-U", ROLE, "-A", "trust",
                  "-E", "UTF8", "--no-sync")
        options = " ".join([
            f"-p {self.port}", f"-k {self.dir}", "-c listen_addresses=127.0.0.1",
            # each Airflow daemon keeps a pool of connections, the API server and every task
            # process more: Debian's default of 100 is too few for four daemons and workers
            "-c max_connections=300", "-c shared_buffers=64MB",
            "-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off",
        ])
        self._run(_server_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                  "-o", options, "-w", "-t", "60", "start")
        self._create_database()
        return self

    def _create_database(self) -> None:
        import psycopg2

        deadline = time.monotonic() + 30
        while True:
            try:
                con = psycopg2.connect(host="127.0.0.1", port=self.port, user=ROLE,
                                       dbname="postgres", connect_timeout=5)
                break
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        con.autocommit = True
        with con.cursor() as cur:
            cur.execute(f"CREATE DATABASE {DATABASE} OWNER {ROLE}")
        con.close()

    def connect(self):
        """A psycopg2 connection to the metadata DB (autocommit: reads see the newest)."""
        import psycopg2

        con = psycopg2.connect(host="127.0.0.1", port=self.port, user=ROLE, dbname=DATABASE,
                               connect_timeout=10)
        con.autocommit = True
        return con

    def stop(self) -> None:
        if self.data.exists():
            try:
                self._run(_server_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate",
                          "-w", "-t", "30", "stop", timeout=60)
            except (RuntimeError, subprocess.TimeoutExpired):
                pass  # not started, or already gone: the directory goes all the same
        shutil.rmtree(self.dir, ignore_errors=True)
