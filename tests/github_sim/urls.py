"""Where things live on a running simulator, as GitHub Enterprise lays them out.

The REST API answers both at the server root (like api.github.com) and under `/api/v3`
(like GitHub Enterprise Server); the URLs inside a response use the prefix the request
came in on, so a client configured with either base URL keeps following its own links.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Urls:
    root: str  # "https://127.0.0.1:PORT" (no trailing slash): html pages and git
    api: str  # "https://127.0.0.1:PORT/api/v3" or the root itself

    @property
    def graphql(self) -> str:
        return f"{self.root}/api/graphql"

    @property
    def uploads(self) -> str:
        return f"{self.root}/api/uploads"

    def html(self, path: str = "") -> str:
        return f"{self.root}/{path}" if path else self.root

    def git(self, full_name: str, wiki: bool = False) -> str:
        return f"{self.root}/{full_name}{'.wiki' if wiki else ''}.git"

    def gist_git(self, gist_id: str) -> str:
        return f"{self.root}/gist/{gist_id}.git"

    def ssh(self, full_name: str) -> str:
        host = self.root.split("://", 1)[1].split(":")[0]
        return f"git@{host}:{full_name}.git"

    def download(self, token: str) -> str:
        """Signed asset download location (the target of the 302 GitHub answers). Like
        GitHub's object storage it is another host name (`localhost` for `127.0.0.1`), so
        a client that forwards its Authorization header across hosts is caught."""
        storage = self.root.replace("://127.0.0.1:", "://localhost:", 1)
        return f"{storage}/_sim/downloads/{token}"
