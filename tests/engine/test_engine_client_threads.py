"""The client from many threads at once: every answer is the one to its own request.

PyGithub's Requester keeps one persistent connection object per instance, and that object
stores a request's verb, URL and headers in `request()` for `getresponse()` to send: two
threads sharing it can each send the other's request (a page of one list handed to another,
a page read twice, a page lost). The engine's API jobs and pages read ahead make requests
from several threads, so the client must never let two threads share that object.
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from ghvault.github.client import GitHubClient
from github import Auth


class Echo(BaseHTTPRequestHandler):
    """Answers every GET with its own path, after a short random pause (requests overlap)."""

    def do_GET(self):  # noqa: N802 (http.server's name)
        time.sleep(random.uniform(0, 0.004))
        body = json.dumps({"path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def echo_api():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/v3"
    server.shutdown()
    server.server_close()


@pytest.fixture
def eager_switching():
    """Threads switch as often as the interpreter can: the race, rare under a normal switch
    interval (a few answers in ten thousand on a loaded machine), shows up at once."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def test_each_thread_gets_the_answer_to_its_own_request(echo_api, eager_switching):
    client = GitHubClient(echo_api, Auth.Token("ghp_" + "t" * 36), concurrency=8)
    try:
        def ask(i: int) -> tuple[str, str]:
            path = f"/repos/o/r{i}/issues/comments"
            return path, client.get(path)["path"]

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(ask, range(2000)))
    finally:
        client.close()
    wrong = [(asked, got) for asked, got in answers if got != "/api/v3" + asked]
    assert not wrong, f"{len(wrong)} of {len(answers)} answers were another request's: {wrong[:3]}"
