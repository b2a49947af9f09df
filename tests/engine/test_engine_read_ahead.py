"""Reading a list's pages ahead (github/pages.py): the walk with pages 2..N in flight
together gives exactly what following `rel="next"` one page at a time gives, at the same
cost, and never more requests in flight than the client's concurrency.

A small threaded server plays one paginated GitHub list (100 per page, GitHub's Link with
next/last/prev/first, weak ETags, 304 to a matching If-None-Match, 20 ms per answer) whose
items the tests change between months, or in the middle of a walk. Each walk with reading
ahead is compared with the serial walk (`read_ahead=0`) from an identical copy of the cache.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests
from ghvault.github.cache import HttpCache
from ghvault.github.client import GitHubClient
from ghvault.github.pages import planned_pages
from github import Auth

from tests.conftest import start_sim
from tests.engine.helpers import run_ghvault
from tests.github_sim.faults import Faults

PATH = "/api/v3/repos/o/r/issues/comments"


class ListServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, n: int) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.items = [{"id": i, "body": f"comment {i}"} for i in range(n)]
        self.lock = threading.Lock()
        self.seen: list[tuple[int, int]] = []  # (page, status)
        self.in_flight = self.peak = 0
        self.after_page_1: Callable[[], None] | None = None  # a change mid-walk

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/api/v3"

    def charged(self) -> int:
        return sum(1 for _, status in self.seen if status != 304)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ListServer

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib signature
        pass

    def do_GET(self) -> None:
        s = self.server
        with s.lock:
            s.in_flight += 1
            s.peak = max(s.peak, s.in_flight)
        try:
            time.sleep(0.02)
            self._answer()
        finally:
            with s.lock:
                s.in_flight -= 1

    def _answer(self) -> None:
        s = self.server
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query))
        per, page = int(query.get("per_page", 30)), int(query.get("page", 1))
        with s.lock:
            body = json.dumps(s.items[(page - 1) * per: page * per]).encode()
            last = max(1, -(-len(s.items) // per))
            if page == 1 and s.after_page_1 is not None:
                s.after_page_1()
                s.after_page_1 = None

        def url(k: int) -> str:
            return f"http://{self.headers['Host']}{parts.path}?" + urlencode(
                {**{k2: v for k2, v in query.items() if k2 != "page"}, "page": str(k)})

        links = [f'<{url(page + 1)}>; rel="next"', f'<{url(last)}>; rel="last"'] \
            if page < last else []
        links += [f'<{url(page - 1)}>; rel="prev"', f'<{url(1)}>; rel="first"'] \
            if page > 1 else []
        etag = 'W/"' + hashlib.sha256(body).hexdigest()[:40] + '"'
        status = 304 if self.headers.get("If-None-Match") == etag else 200
        with s.lock:
            s.seen.append((page, status))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("ETag", etag)
        if links:
            self.send_header("Link", ", ".join(links))
        self.send_header("Content-Length", "0" if status == 304 else str(len(body)))
        self.end_headers()
        if status != 304:
            self.wfile.write(body)


@pytest.fixture
def server():
    srv = ListServer(350)
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()


def client(srv: ListServer, cache: HttpCache | None, **kw) -> GitHubClient:
    return GitHubClient(srv.api, Auth.Token("ghp_x"), cache=cache, max_tries=1, **kw)


def walk(srv: ListServer, cache: HttpCache | None, **kw) -> tuple[list, list, int]:
    """(the items, the requests made as (page, status), the peak in flight)."""
    srv.seen, srv.peak = [], 0
    c = client(srv, cache, **kw)
    try:
        items = list(c.paginate("/repos/o/r/issues/comments"))
    finally:
        c.close()
    return items, sorted(srv.seen), srv.peak


def month_one(srv: ListServer, tmp_path) -> tuple[HttpCache, HttpCache]:
    """Month one's cache, twice (for the walk reading ahead and the serial one)."""
    first = HttpCache(tmp_path / "one.sqlite")
    walk(srv, first)
    first.close()
    shutil.copy(tmp_path / "one.sqlite", tmp_path / "ahead.sqlite")
    shutil.copy(tmp_path / "one.sqlite", tmp_path / "serial.sqlite")
    return HttpCache(tmp_path / "ahead.sqlite"), HttpCache(tmp_path / "serial.sqlite")


def grew(srv, caches):
    srv.items += [{"id": 1000 + i, "body": "new"} for i in range(120)]


def shrank(srv, caches):
    del srv.items[:160]  # a page and more gone from the front: every page differs


def changed_in_the_middle(srv, caches):
    srv.items[150] = {"id": 150, "body": "edited"}


def page_gone_from_the_cache(srv, caches):
    for cache in caches:  # the state lost page 3's entry
        with cache.lock:
            cache.db.execute("DELETE FROM entries WHERE key LIKE ?", ("%&page=3",))


def unchanged(srv, caches):
    pass


@pytest.mark.parametrize("change", [unchanged, grew, shrank, changed_in_the_middle,
                                    page_gone_from_the_cache])
def test_month_two_reading_ahead_gives_the_serial_walk_at_its_cost(server, tmp_path, change):
    ahead, serial = month_one(server, tmp_path)
    change(server, (ahead, serial))
    got, requests_ahead, peak = walk(server, ahead)
    want, requests_serial, _ = walk(server, serial, read_ahead=0)
    assert got == want == server.items
    assert requests_ahead == requests_serial  # the same pages, each 304 or 200 alike
    assert peak <= 4
    if change is unchanged:
        assert peak > 1  # pages 2..4 were in flight together


def test_month_one_reads_each_page_once_with_at_most_concurrency_in_flight(server):
    got, seen, peak = walk(server, None, concurrency=2)
    assert got == server.items
    assert seen == [(1, 200), (2, 200), (3, 200), (4, 200)]
    assert peak == 2


def test_a_list_that_grows_during_the_walk_is_followed_past_the_planned_pages(server):
    def grow():
        server.items += [{"id": 1000 + i, "body": "new"} for i in range(100)]

    server.after_page_1 = grow
    got, seen, _ = walk(server, None)
    assert got == server.items and len(got) == 450
    assert seen == [(k, 200) for k in range(1, 6)]


def test_a_list_that_shrinks_during_the_walk_ends_where_its_links_end(server):
    def shrink():
        del server.items[200:]

    server.after_page_1 = shrink
    got, seen, _ = walk(server, None)
    want = [{"id": i, "body": f"comment {i}"} for i in range(200)]
    assert got == want  # what the serial walk gives: page 2 has no rel="next"
    # Pages 3 and 4 were planned from page 1's rel="last" before the list shrank: read
    # ahead (empty), then dropped. The only requests a serial walk would not have made.
    assert {1, 2} <= {p for p, _ in seen} <= {1, 2, 3, 4}


def test_two_lists_walked_at_once_never_exceed_the_concurrency(server):
    c = client(server, None, concurrency=3)
    results: list[list] = []

    def read() -> None:
        results.append(list(c.paginate("/repos/o/r/issues/comments")))

    threads = [threading.Thread(target=read) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    c.close()
    assert results == [server.items] * 3
    assert server.peak <= 3
    assert Counter(p for p, _ in server.seen) == {1: 3, 2: 3, 3: 3, 4: 3}


def test_a_walk_stopped_early_requests_no_more_than_its_window(server):
    server.items = [{"id": i} for i in range(2000)]  # 20 pages
    c = client(server, None, read_ahead=2)
    pages = c.paginate("/repos/o/r/issues/comments")
    next(pages)
    pages.close()
    time.sleep(0.2)
    c.close()
    assert len(server.seen) <= 3  # page 1 and at most the window


@pytest.mark.parametrize("link, planned", [
    ('<https://h/x?per_page=100&page=2>; rel="next", <https://h/x?per_page=100&page=4>; '
     'rel="last"', ["https://h/x?per_page=100&page=2", "https://h/x?per_page=100&page=3",
                    "https://h/x?per_page=100&page=4"]),
    ('<https://h/x?page=2&per_page=100>; rel="next", <https://h/x?page=2&per_page=100>; '
     'rel="last"', ["https://h/x?page=2&per_page=100"]),
    # cursor links: no rel="last", nothing planned
    ('<https://h/x?per_page=100&after=Y3Vyc29y>; rel="next"', []),
    # a next link not built the way rel="last" is: nothing planned
    ('<https://h/x?per_page=100&page=2&since=1>; rel="next", '
     '<https://h/x?per_page=100&page=9>; rel="last"', []),
    ("", []),
])
def test_pages_are_planned_only_from_githubs_own_last_link(link, planned):
    assert list(planned_pages({"link": link})) == planned


def test_whole_runs_keep_at_most_concurrency_requests_in_flight(moto_server, tmp_path):
    """Twice as many API jobs as slots, and pages read ahead: the simulator still never
    sees more than --concurrency API requests at once, in month one or month two."""
    running, stop = start_sim(faults=Faults.parse("latency=20"))
    try:
        login = running.sim.world.owners["user"]
        for month in ("2026-10", "2026-11"):
            running.reset()
            run = run_ghvault(running, moto_server, "--owner", login, "--month", month,
                              "--dest", (tmp_path / f"{month}.zip").as_uri(),
                              "--state", str(tmp_path / "state"), "--concurrency", "2")
            assert run.returncode == 0, run.stderr[-2000:]
            assert running.stats()["peak_concurrency"] == 2, month
            requests.post(f"{running.root}/_sim/mutate", verify=str(running.ca), timeout=60)
    finally:
        stop()
