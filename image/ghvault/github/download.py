"""Release asset downloads: the API's 302 to storage on another host is followed without
the token, and an asset URL outside the API origin is refused unrequested."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from ..errors import GitHubUnavailable, NotFound
from .pacing import CUT_BODY
from .urls import origin


class UntrustedLocation(NotFound):
    """An API answer names a URL outside the API origin (or plain http where the API is
    https): the token is not sent there, so the item is skipped like a missing one."""


class Downloads:
    """The download half of GitHubClient (which provides http, acct, gate, max_tries,
    api_origin, _pace, _cut, _path, _error and auth_header)."""

    http: requests.Session
    acct: Any
    gate: Any
    max_tries: int
    api_origin: str

    def check_location(self, url: str) -> None:
        """UntrustedLocation unless `url` is on the API origin, where the token may go."""
        if origin(url) != self.api_origin:
            parts = urlsplit(url)
            shown = parts._replace(netloc=parts.netloc.rpartition("@")[2], query="").geturl()
            raise UntrustedLocation(
                f"the API named {shown[:200]!r}, outside the API origin {self.api_origin}: "
                "not requested, so the token is not sent there (check --api-url, or the "
                "item on GitHub)")

    def download(self, url: str, dest: str) -> None:
        """A release asset. The API answers 302 to pre-signed object storage on another
        host. PyGithub's getFile refuses redirects outside the API prefix on Enterprise
        servers, so this one is ours: the token goes to the API only, never to storage.
        An asset `url` outside the API origin is refused (UntrustedLocation) unrequested.
        A body cut short is downloaded again, a bounded number of times."""
        self.check_location(url)
        tries = self.max_tries + 1
        for attempt in range(1, tries + 1):
            try:
                with self.slots:  # a request in flight like any other (client.py)
                    self._download_once(url, dest)
                return
            except CUT_BODY as e:
                if attempt == tries:
                    raise GitHubUnavailable(
                        f"the download of {self._path(url)} was cut short in each of {tries} "
                        f"tries ({type(e).__name__}): try again later") from None
                self._cut(url, e, attempt)
            except requests.RequestException as e:
                raise GitHubUnavailable(f"could not download {self._path(url)} in {tries} "
                                        f"tries ({type(e).__name__}): try again later") from None

    def _download_once(self, url: str, dest: str) -> None:
        resp = self._asset_request(url)
        hops = 0
        while resp.status_code in (301, 302, 303, 307, 308) and hops < 5:
            # Storage on another host: no Authorization (the session carries none).
            where = urljoin(resp.url or url, resp.headers.get("Location", ""))
            resp.close()
            if urlsplit(where).scheme not in ("https", "http"):
                raise UntrustedLocation(f"the download of {self._path(url)} was redirected "
                                        f"to a {urlsplit(where).scheme or 'relative'} URL: "
                                        "not followed (check the item on GitHub)")
            resp = self.http.get(where, timeout=300, stream=True)
            hops += 1
        if resp.status_code == 404:
            raise NotFound(f"{self._path(url)} was not found (404)")
        if resp.status_code >= 400:
            raise self._error(resp.status_code, _message(resp), url, dict(resp.headers))
        with open(dest, "wb") as f:
            for chunk in resp.iter_content(1 << 16):
                f.write(chunk)

    def _asset_request(self, url: str) -> requests.Response:
        """The API half of a download, with GitHub's rate-limit rules: a 403/429 carrying
        `retry-after` (secondary limit) or `x-ratelimit-remaining: 0` (primary) is waited
        out and tried again, a bounded number of times, like GithubRetry does for the rest."""
        for attempt in range(self.max_tries + 1):
            self._pace(f"GET {self._path(url)}")
            resp = self.http.get(url, headers={"Accept": "application/octet-stream",
                                               "Authorization": self.auth_header()},
                                 allow_redirects=False, timeout=60, stream=True)
            self.acct.record("asset", resp.headers, resp.status_code)
            if resp.status_code not in (403, 429) or attempt == self.max_tries:
                return resp
            reset = resp.headers.get("x-ratelimit-reset", "")
            if "retry-after" in resp.headers:
                resp.close()
                time.sleep(min(float(resp.headers["retry-after"]), 3600.0))
            elif resp.headers.get("x-ratelimit-remaining") == "0" and reset.isdigit():
                resp.close()
                self.gate.hold(int(reset) + 1, 0, self.acct.rate_limit,
                               f"GET {self._path(url)}", "spent (GitHub answered 403)")
            else:
                return resp  # a real permission problem
        return resp


def _message(resp: requests.Response) -> dict[str, Any]:
    try:
        body = resp.json()
    except ValueError:
        body = None
    return body if isinstance(body, dict) and "message" in body else {"message": resp.reason}
