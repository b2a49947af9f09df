"""Files attached to bodies (issues, pull requests, comments, reviews, releases,
discussions): found in every JSON document the run writes, downloaded once each, stored by
the SHA-256 of their content under `attachments/<sha256>`, listed in attachments/index.json.

The URL forms GitHub has used, recognised by their path on whatever host serves them:
`/user-attachments/assets/<uuid>` and `/user-attachments/files/<id>/<name>` (github.com, or
an Enterprise host), and `/<user id>/<n>-<uuid>.<ext>` (user-images.githubusercontent.com,
and private-user-images... with a signed `?jwt=` that expires after minutes: so each file
is downloaded as soon as the body naming it is read). The token goes only with a URL on the
git (web) origin, where user-attachments of private repositories need it; every other host
gets no credential (public, or signed by its own query), and redirects to object storage
are followed without it. PyGithub has no call for these, hence our own requests.

With --state each file is kept in the state by its SHA-256 and remembered by its URL
(without the signed query): a later month copies it from there instead of downloading it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from ..errors import GitHubUnavailable, NotFound
from ..github.urls import origin
from ..layout import attachment_entry
from . import Job, scratch_file

log = logging.getLogger("ghvault.collect")
URL = re.compile(
    r"https?://[A-Za-z0-9.-]+(?::\d+)?/(?:user-attachments/(?:assets/[0-9a-fA-F-]{36}"
    r"|files/\d+/[^\s()<>\"'\\\]\[]+)|\d+/\d+-[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}"
    r"[0-9a-fA-F]{12}\.\w+(?:\?jwt=[\w.=-]+)?)")
CHUNK = 1 << 20


def key_of(url: str) -> str:
    """What stays the same between views: the URL without its signed query."""
    return url.split("?", 1)[0]


class Attachments:
    def __init__(self, job: Job, web_origin: str):
        self.job, self.web = job, origin(web_origin)
        self.lock = threading.Lock()
        self.claimed: set[str] = set()
        self.index: list[dict[str, Any]] = []
        self.stored: set[str] = set()  # SHA-256s in the archive

    def scan(self, where: str, doc: Any) -> None:
        """Download every attachment `doc` names that this run has not seen yet."""
        if not where.startswith("attachments/"):
            self.scan_text(where, json.dumps(doc, ensure_ascii=False))

    def scan_text(self, where: str, text: str) -> None:
        """Like scan, for a document's JSON text."""
        if where.startswith("attachments/"):
            return
        for url in URL.findall(text):
            key = key_of(url)
            with self.lock:
                if key in self.claimed:
                    continue
                self.claimed.add(key)
            self.take(url, key, where)

    def take(self, url: str, key: str, where: str) -> None:
        with scratch_file(self.job.workdir, "attachment-", f"downloading {key}") as tmp:
            try:
                known = self.reuse(key, tmp)
                ctype = known["content_type"] if known else self.download(url, tmp)
                sha, size = digest(tmp)
                with self.lock:
                    new = sha not in self.stored
                    self.stored.add(sha)
                if new:
                    self.job.archive.add_file(attachment_entry(sha), tmp)
                if known is None:
                    self.keep(key, tmp, sha, size, ctype)
                with self.lock:
                    self.index.append({"url": key, "sha256": sha, "size": size,
                                       "content_type": ctype, "path": attachment_entry(sha),
                                       "found_in": where})
                self.job.ledger.add("attachments")
            except NotFound as e:
                self.job.ledger.skip(f"attachment {key}", str(e))

    # downloading -------------------------------------------------------------------------

    def download(self, url: str, dest: str) -> str:
        """The file at `url` into `dest`; its content type. NotFound when it is gone."""
        client = self.job.client
        headers = {"Authorization": client.auth_header()} if origin(url) == self.web else {}
        with client.slots:  # a request in flight like the client's own
            return self._download(client, url, headers, dest)

    @staticmethod
    def _download(client: Any, url: str, headers: dict[str, str], dest: str) -> str:
        try:
            resp = client.http.get(url, headers=headers, allow_redirects=False, timeout=60,
                                   stream=True)
            for _ in range(5):
                if resp.status_code not in (301, 302, 303, 307, 308):
                    break
                where = urljoin(resp.url or url, resp.headers.get("Location", ""))
                resp.close()
                if urlsplit(where).scheme not in ("https", "http"):
                    raise NotFound(f"{key_of(url)} redirected to a non-http URL")
                resp = client.http.get(where, timeout=60, stream=True)  # no credential
            if resp.status_code in (403, 404, 410):
                raise NotFound(f"{key_of(url)} answered {resp.status_code}: deleted, or "
                               "not visible to the token")
            if resp.status_code >= 400:
                raise GitHubUnavailable(f"{key_of(url)} answered {resp.status_code} after "
                                        "retries: try again later")
            with open(dest, "wb") as f:
                for chunk in resp.iter_content(CHUNK):
                    f.write(chunk)
            return resp.headers.get("Content-Type", "application/octet-stream")
        except requests.RequestException as e:
            raise GitHubUnavailable(f"could not download {key_of(url)} ({type(e).__name__}): "
                                    "try again later") from None

    # the state -----------------------------------------------------------------------------

    def _memo(self, key: str) -> str:
        return f"/ghvault/attachment/{key}"

    def reuse(self, key: str, dest: str) -> dict[str, Any] | None:
        """Last month's copy of `key` into `dest` when the state has a sound one."""
        cache, copies = self.job.client.cache, self.job.assets
        memo = cache.get(self._memo(key)) if cache is not None and copies is not None else None
        if not memo:
            return None
        try:
            skey = f"{copies.owner}/attachments/{memo['sha256']}"
            h = hashlib.sha256()
            with copies.store.open_read(skey, int(memo["size"])) as src, open(dest, "wb") as out:
                while data := src.read(CHUNK):
                    h.update(data)
                    out.write(data)
            if h.hexdigest() == memo["sha256"]:
                return memo
            why = "its content no longer hashes to its name"
        except Exception as e:  # noqa: BLE001 - an unreadable copy means: download it
            why = f"it cannot be read ({e})"
        log.warning("not using the state's copy of attachment %s: %s; downloading it", key, why)
        return None

    def keep(self, key: str, path: str, sha: str, size: int, ctype: str) -> None:
        cache, copies = self.job.client.cache, self.job.assets
        if cache is None or copies is None:
            return
        try:
            copies.store.put_file(f"{copies.owner}/attachments/{sha}", path)
            cache.put(self._memo(key), {"sha256": sha, "size": size, "content_type": ctype})
        except Exception as e:  # noqa: BLE001 - the backup itself does not depend on it
            log.warning("could not keep a copy of attachment %s in the state (%s)", key, e)

    def finish(self) -> None:
        """attachments/index.json, by URL."""
        self.job.archive.add_json(attachment_entry("index"),
                                  sorted(self.index, key=lambda x: x["url"]))


def digest(path: str) -> tuple[str, int]:
    h, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while data := f.read(CHUNK):
            h.update(data)
            size += len(data)
    return h.hexdigest(), size


class ScanningArchive:
    """The run's archive, with every JSON document it is given scanned for attachments."""

    def __init__(self, archive: Any, attachments: Attachments):
        self.archive, self.attachments = archive, attachments

    def __getattr__(self, name: str) -> Any:
        return getattr(self.archive, name)

    def add_json(self, name: str, obj: Any) -> None:
        self.attachments.scan(name, obj)
        self.archive.add_json(name, obj)

    @contextmanager
    def jsonl(self, name: str) -> Iterator[Any]:
        with self.archive.jsonl(name) as out:
            yield _ScanningLines(out, self.attachments, name)


class _ScanningLines:
    def __init__(self, out: Any, attachments: Attachments, name: str):
        self.out, self.attachments, self.name = out, attachments, name

    def write(self, obj: Any) -> None:
        line = self.out.line(obj)  # serialized once, for the scan and the entry
        self.attachments.scan_text(self.name, line)
        self.out.write_line(line)
