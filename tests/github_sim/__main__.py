"""Run the GitHub simulator until killed.

    python -m tests.github_sim --size tiny --seed 7 --port 0 --tls --ready-file ready.json

Once it serves, it writes the ready file (JSON): api_url, git_url, graphql_url, root_url,
owners, token, ca_cert (with --tls), counts, data_dir; with --app-token-ttl also
app = {id, slug, client_id, private_key (PEM path), token_ttl, installations {user, org}}.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path

from .faults import Faults, FaultSpecError
from .generate import SIZES


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tests.github_sim", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", choices=list(SIZES), default="tiny")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--tls", action="store_true", help="serve HTTPS with a generated CA")
    p.add_argument("--token", action="append", default=[],
                   help="a token that authenticates as the user owner (repeatable)")
    p.add_argument("--latency-ms", type=int, default=0, help="added to every API answer")
    p.add_argument("--faults", default=None, help="fault spec, see tests/github_sim/faults.py")
    p.add_argument("--rate-limit", type=int, default=5000, help="requests per hour per token")
    p.add_argument("--rate-window", type=int, default=3600,
                   help="seconds from a pool's first request to its reset (GitHub: 3600)")
    p.add_argument("--git-kbps", type=int, default=0,
                   help="cap git and LFS transfer bandwidth per connection (0: none)")
    p.add_argument("--workdir", type=Path, default=None,
                   help="runtime copy of the repositories (default: a temporary directory)")
    p.add_argument("--app-token-ttl", type=int, default=None, metavar="SECONDS",
                   help="a GitHub App installed on both owners; its installation tokens "
                        "live this long (GitHub: 3600; default: no app)")
    p.add_argument("--split-git-host", action="store_true",
                   help="serve git and LFS on a second origin (another port), not the API's")
    p.add_argument("--ready-file", type=Path, required=True)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        faults = Faults.parse(args.faults, args.latency_ms)
    except FaultSpecError as e:
        print(f"error: --faults: {e}", file=sys.stderr)
        return 2
    from .server import Simulator, make_git_server, make_server
    from .tls import ensure_certs, server_context

    sim = Simulator(args.size, args.seed, tokens=args.token or None, rate_limit=args.rate_limit,
                    faults=faults, workdir=args.workdir, git_kbps=args.git_kbps,
                    rate_window=args.rate_window, app_token_ttl=args.app_token_ttl)
    tls = None
    ca = None
    if args.tls:
        from .generate import cache_root

        ca, cert, key = ensure_certs(cache_root() / "tls")
        tls = server_context(cert, key)
    server = make_server(sim, args.port, args.host, tls)
    port = server.server_address[1]
    root = f"{'https' if tls else 'http'}://{args.host}:{port}"
    git_server = make_git_server(sim, server, args.host) if args.split_git_host else None
    if git_server is not None:
        threading.Thread(target=git_server.serve_forever, kwargs={"poll_interval": 0.2},
                         daemon=True).start()
    ready = {
        "api_url": f"{root}/api/v3",
        "root_url": root,
        "git_url": sim.git_root or root,
        "graphql_url": f"{root}/api/graphql",
        "owners": sim.world.owners,
        "token": sim.tokens[0],
        "tokens": sim.tokens,
        "ca_cert": str(ca) if ca else None,
        "counts": sim.world.counts(),
        "size": args.size,
        "seed": args.seed,
        "data_dir": str(sim.workdir),
        "pid": os.getpid(),
    }
    if sim.app is not None:
        ready["app"] = sim.app.ready()

    def stop(*_: object) -> None:
        for s in (server, git_server):
            if s is not None:
                threading.Thread(target=s.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    tmp = args.ready_file.with_name(args.ready_file.name + ".tmp")
    tmp.write_text(json.dumps(ready, indent=1))
    tmp.replace(args.ready_file)
    print(f"GitHub simulator ({args.size}, seed {args.seed}) serving {root}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        if git_server is not None:
            git_server.server_close()
        sim.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
