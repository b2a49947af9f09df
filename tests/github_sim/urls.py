"""Where things live on a running simulator, as GitHub Enterprise lays them out.

The REST API answers both at the server root (like api.github.com) and under `/api/v3`
(like GitHub Enterprise Server); the URLs inside a response use the prefix the request
came in on, so a client configured with either base URL keeps following its own links.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Urls:
    root: str  # "https://127.0.0.1:PORT" (no trailing slash): the API server's root
    api: str  # "https://127.0.0.1:PORT/api/v3" or the root itself
    # html pages and git when they live on another origin (--split-git-host, like GHE.com's
    # SUBDOMAIN.ghe.com next to api.SUBDOMAIN.ghe.com); None: the API server's root
    web: str | None = None

    @property
    def site(self) -> str:
        return self.web or self.root

    @property
    def graphql(self) -> str:
        return f"{self.root}/api/graphql"

    @property
    def uploads(self) -> str:
        return f"{self.root}/api/uploads"

    def html(self, path: str = "") -> str:
        return f"{self.site}/{path}" if path else self.site

    def git(self, full_name: str, wiki: bool = False) -> str:
        return f"{self.site}/{full_name}{'.wiki' if wiki else ''}.git"

    def gist_git(self, gist_id: str) -> str:
        return f"{self.site}/gist/{gist_id}.git"

    def ssh(self, full_name: str) -> str:
        host = self.site.split("://", 1)[1].split(":")[0]
        return f"git@{host}:{full_name}.git"

    def download(self, token: str) -> str:
        """Signed asset download location (the target of the 302 GitHub answers). Like
        GitHub's object storage it is another host name (`localhost` for `127.0.0.1`), so
        a client that forwards its Authorization header across hosts is caught."""
        storage = self.root.replace("://127.0.0.1:", "://localhost:", 1)
        return f"{storage}/_sim/downloads/{token}"
