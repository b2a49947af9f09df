"""The git credential helper of a run: git (and git-lfs, through `git credential fill`) run
it with `get` when a server asks for credentials; it asks the engine that started git, over
the Unix socket named by GHVAULT_CREDENTIAL_SOCKET, for a current token and prints it to git
on stdout. Nothing is written to disk. `store` and `erase` are no-ops: the engine keeps the
tokens. Standard library only: git runs this file by its path (`python -I`), so it needs no
import path.
"""

import json
import os
import socket
import sys

SOCKET_ENV = "GHVAULT_CREDENTIAL_SOCKET"


def main(argv: list[str]) -> int:
    if argv[1:2] != ["get"]:
        return 0
    asked = dict(line.split("=", 1) for line in sys.stdin.read().splitlines() if "=" in line)
    where = os.environ.get(SOCKET_ENV)
    if not where:
        return 0  # no engine to ask: git goes on without credentials
    request = {k: asked.get(k, "") for k in ("protocol", "host", "path")}
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(120)
            s.connect(where)
            s.sendall(json.dumps(request).encode() + b"\n")
            s.shutdown(socket.SHUT_WR)
            answer = json.loads(s.makefile("rb").read() or b"{}")
    except (OSError, ValueError) as e:
        print(f"ghvault credential helper: the engine did not answer ({type(e).__name__})",
              file=sys.stderr)
        return 0
    if answer.get("password"):
        sys.stdout.write(f"username={answer['username']}\npassword={answer['password']}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
