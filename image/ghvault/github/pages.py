"""Reading a list's pages ahead: the requests for pages 2..N in flight together, the pages
still handed over in order, exactly as following `Link: rel="next"` one page at a time.

Walking `rel="next"` makes a list of N pages a chain of N round trips, and the longest
list of the largest repository then sets the run's wall time however many requests may be
in flight (in month two nearly all of them are free 304s, each still a round trip). Once
page 1 has answered, GitHub's Link names its last page (`rel="last"`, `...&page=N`), so
the URLs of pages 2..N are known: that URL with `page=k`. They are planned only when the
one built for page 2 is exactly the `rel="next"` GitHub gave (so our URLs are GitHub's
own), and never past `rel="last"` (no page the walk would not ask for; lists with cursor
links have no `rel="last"` and are walked as before). PyGithub's PaginatedList builds page
URLs from `rel="last"` the same way for its reversed lists, but it makes no conditional
requests, so the walk is ours (client.py).

Each page's own `rel="next"` is still checked as it is handed over: while it names the
page read ahead, that page is used; when it does not (the list grew or shrank during the
walk), the pages read ahead are dropped and the walk follows the Links from there, one at
a time. At most `window` pages of one list are read ahead at once (their bodies are in
memory until handed over), and every request still takes one of the client's slots: the
number of requests in flight stays the client's `concurrency`.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from typing import Any

LINK_NEXT = re.compile(r'<([^>]+)>;\s*rel="next"')
LINK_LAST = re.compile(r'<([^>]+)>;\s*rel="last"')
_PAGE = re.compile(r"(?<=[?&])page=(\d+)(?=&|$)")

Page = tuple[Any, dict[str, Any]]  # (the decoded body, the response's headers)


def next_url(headers: dict[str, Any]) -> str | None:
    m = LINK_NEXT.search(headers.get("link", "") or "")
    return m.group(1) if m else None


def planned_pages(headers: dict[str, Any]) -> deque[str]:
    """The URLs of pages 2..N from page 1's Link, or none when GitHub gives no `rel="last"`
    or its `rel="next"` is not what page 2's URL built from `rel="last"` would be."""
    link = headers.get("link", "") or ""
    nxt, last = LINK_NEXT.search(link), LINK_LAST.search(link)
    if not nxt or not last or len(_PAGE.findall(last.group(1))) != 1:
        return deque()
    template, n = last.group(1), int(_PAGE.search(last.group(1)).group(1))  # type: ignore
    urls = deque(_PAGE.sub(f"page={k}", template) for k in range(2, n + 1))
    return urls if urls and urls[0] == nxt.group(1) else deque()


def walk(first: str, fetch: Callable[[str], Page], pool: Executor, window: int
         ) -> Iterator[Page]:
    """Every page of the list starting at `first`, in order, as `fetch` answers each;
    pages after the first are fetched up to `window` ahead on `pool` (see the module).
    An error of a page read ahead is raised only when the walk reaches that page."""
    ahead: deque[tuple[str, Future[Page]]] = deque()
    planned: deque[str] | None = None if window > 0 else deque()
    url: str | None = first
    try:
        while url:
            if ahead and ahead[0][0] == url:
                page = ahead.popleft()[1].result()
            else:
                page = fetch(url)
            nxt = next_url(page[1])
            if planned is None:  # page 1 answered: plan the rest from its Link
                planned = planned_pages(page[1])
            if ahead and ahead[0][0] != nxt or not ahead and planned and planned[0] != nxt:
                _drop(ahead)  # the list changed under the walk: follow its Links from here
                planned.clear()
            while planned and len(ahead) < window:
                u = planned.popleft()
                ahead.append((u, pool.submit(fetch, u)))
            yield page
            url = nxt
    finally:
        _drop(ahead)  # the caller stopped early: what was not started is not requested


def _drop(ahead: deque[tuple[str, Future[Page]]]) -> None:
    for _, future in ahead:
        future.cancel()
    ahead.clear()
