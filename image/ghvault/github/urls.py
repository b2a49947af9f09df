"""The two origins the token may go to, the API's and git's, and how they are given."""

from __future__ import annotations

import re
from urllib.parse import urlsplit


def origin(url: str) -> str:
    """scheme://host:port of `url`, with the scheme's default port made explicit."""
    parts = urlsplit(url)
    try:
        port = parts.port or {"https": 443, "http": 80}.get(parts.scheme, 0)
    except ValueError:
        port = -1
    return f"{parts.scheme.lower()}://{(parts.hostname or '').lower()}:{port}"


def check_base_url(url: str, flag: str, fix: str) -> str:
    """`url` if it is an http(s) URL with a host and nothing a base URL cannot carry (user
    name or password, query, fragment), else ValueError: one sentence naming `flag`."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise ValueError(f"{flag} {url!r} is not a URL: {fix}.") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{flag} {url!r} is not an http(s)://host URL: {fix}.")
    if parts.username is not None or parts.password is not None:
        shown = parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]).geturl()
        raise ValueError(f"{flag} {shown!r} carries credentials: {fix} (the token comes "
                         "from the environment only).")
    if parts.query or parts.fragment or any(c.isspace() for c in url):
        raise ValueError(f"{flag} {url!r} has a query, a fragment or spaces: {fix}.")
    return url


def check_api_url(url: str) -> str:
    return check_base_url(url, "--api-url", "give the API's base URL, e.g. "
                          "https://api.github.com or https://HOST/api/v3")


def check_git_url(url: str) -> str:
    return check_base_url(url, "--git-url", "give the origin repositories are cloned from, "
                          "e.g. https://github.com or https://HOST")


def default_git_url(api_url: str) -> str:
    """Where GitHub serves git for an API URL: github.com for api.github.com, HOST for
    GitHub Enterprise Server's HOST/api/v3, SUBDOMAIN.ghe.com for GHE.com's
    api.SUBDOMAIN.ghe.com; otherwise the API's own origin."""
    parts = urlsplit(api_url.rstrip("/"))
    host = (parts.hostname or "").lower()
    netloc = parts.netloc.rpartition("@")[2]
    if host == "api.github.com":
        return f"{parts.scheme}://github.com"
    if re.fullmatch(r"api\.[a-z0-9-]+\.ghe\.com", host):
        return f"{parts.scheme}://{netloc.split('.', 1)[1]}"
    if re.search(r"/api/v3$", parts.path):
        return f"{parts.scheme}://{netloc}{parts.path[:-len('/api/v3')]}"
    return f"{parts.scheme}://{netloc}"
