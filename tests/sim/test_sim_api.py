"""The simulator's REST behaviour: paging, auth, rate limits, conditional requests,
faults and accounting, each as GitHub documents it."""

from __future__ import annotations

import json
import re
import socket
import ssl
import time

import requests

from tests.conftest import OTHER_TOKEN, TOKEN, start_sim

USER, ORG = "hubber", "hubworks"


def link_targets(resp: requests.Response) -> dict[str, str]:
    return {m[1]: m[0] for m in re.findall(r'<([^>]+)>; rel="(\w+)"', resp.headers.get("Link", ""))}


# paging ---------------------------------------------------------------------------------

def test_default_page_is_30_and_links_cover_everything(sim):
    s = sim.session(TOKEN)
    total = len([i for i in sim.sim.world.repos[f"{USER}/toolbox"].issues])
    first = s.get(f"{sim.api}/repos/{USER}/toolbox/issues", params={"state": "all"})
    assert first.status_code == 200
    assert len(first.json()) == 30
    links = link_targets(first)
    assert set(links) == {"next", "last"}
    assert "page=2" in links["next"] and "state=all" in links["next"]
    assert links["next"].startswith(sim.api + "/repos/")
    seen, url = [], first.url
    while url:
        r = s.get(url)
        seen += [i["number"] for i in r.json()]
        url = link_targets(r).get("next")
    assert len(seen) == total == len(set(seen))
    last = s.get(links["last"])
    assert set(link_targets(last)) == {"prev", "first"}


def test_per_page_is_capped_at_100(sim):
    s = sim.session(TOKEN)
    r = s.get(f"{sim.api}/repos/{USER}/toolbox/issues",
              params={"state": "all", "per_page": 500})
    assert len(r.json()) == 100
    assert "per_page=500" in link_targets(r)["next"]  # GitHub echoes the query as sent


def test_api_answers_at_root_and_under_api_v3(sim):
    s = sim.session(TOKEN)
    a = s.get(f"{sim.root}/repos/{USER}/toolbox").json()
    b = s.get(f"{sim.api}/repos/{USER}/toolbox").json()
    assert a["url"] == f"{sim.root}/repos/{USER}/toolbox"
    assert b["url"] == f"{sim.api}/repos/{USER}/toolbox"
    assert a["full_name"] == b["full_name"] == f"{USER}/toolbox"


def test_since_and_state_filters(sim):
    s = sim.session(TOKEN)
    issues = sim.sim.world.repos[f"{USER}/toolbox"].issues
    cut = sorted(i.updated_at for i in issues)[len(issues) // 2]
    r = s.get(f"{sim.api}/repos/{USER}/toolbox/issues",
              params={"state": "all", "since": cut, "per_page": 100})
    want = {i.number for i in issues if i.updated_at >= cut}
    got = set()
    url = r.url
    while url:
        page = s.get(url)
        got |= {i["number"] for i in page.json()}
        url = link_targets(page).get("next")
    assert got == want
    closed = s.get(f"{sim.api}/repos/{USER}/toolbox/issues",
                   params={"state": "closed", "per_page": 100}).json()
    assert closed and all(i["state"] == "closed" for i in closed)


# authentication -------------------------------------------------------------------------

def test_bad_token_is_401_with_githubs_body(sim):
    r = sim.session(OTHER_TOKEN).get(f"{sim.api}/user")
    assert r.status_code == 401
    assert r.json()["message"] == "Bad credentials"
    assert "documentation_url" in r.json()


def test_user_requires_authentication(sim):
    r = sim.session().get(f"{sim.api}/user")
    assert r.status_code == 401
    assert r.json()["message"] == "Requires authentication"


def test_private_repo_is_404_without_access(sim):
    anon = sim.session()
    assert anon.get(f"{sim.api}/repos/{USER}/dotfiles").status_code == 404
    assert sim.session(TOKEN).get(f"{sim.api}/repos/{USER}/dotfiles").status_code == 200
    names = {r["name"] for r in anon.get(f"{sim.api}/users/{USER}/repos").json()}
    assert "dotfiles" not in names and "toolbox" in names


def test_token_sees_private_and_org_repos(sim):
    s = sim.session(TOKEN)
    repos = s.get(f"{sim.api}/user/repos", params={"per_page": 100}).json()
    names = {r["full_name"] for r in repos}
    assert f"{USER}/dotfiles" in names and f"{ORG}/infra" in names
    only_mine = s.get(f"{sim.api}/user/repos", params={"affiliation": "owner"}).json()
    assert {r["owner"]["login"] for r in only_mine} == {USER}
    org = s.get(f"{sim.api}/orgs/{ORG}/repos", params={"type": "private"}).json()
    assert org and all(r["private"] for r in org)
    bad = s.get(f"{sim.api}/user/repos", params={"type": "owner", "visibility": "all"})
    assert bad.status_code == 422


def test_basic_auth_with_token_as_password_or_username(sim):
    s = sim.session()
    for user, pw in (("x-access-token", TOKEN), (TOKEN, "x-oauth-basic")):
        r = s.get(f"{sim.api}/user", auth=(user, pw))
        assert r.status_code == 200 and r.json()["login"] == USER


# rate limits ----------------------------------------------------------------------------

def test_rate_limit_headers_and_exhaustion():
    running, stop = start_sim(rate_limit=5)
    try:
        s = running.session(TOKEN)
        seen = []
        for _ in range(5):
            r = s.get(f"{running.api}/repos/{USER}/toolbox")
            assert r.status_code == 200
            seen.append(int(r.headers["x-ratelimit-remaining"]))
            assert r.headers["x-ratelimit-limit"] == "5"
            assert r.headers["x-ratelimit-resource"] == "core"
            assert int(r.headers["x-ratelimit-reset"]) > time.time()
        assert seen == [4, 3, 2, 1, 0]
        r = s.get(f"{running.api}/repos/{USER}/toolbox")
        assert r.status_code == 403
        assert r.headers["x-ratelimit-remaining"] == "0"
        assert "API rate limit exceeded" in r.json()["message"]
        # /rate_limit is free and tells the truth
        rl = s.get(f"{running.api}/rate_limit")
        assert rl.status_code == 200
        assert rl.json()["resources"]["core"]["remaining"] == 0
        assert rl.json()["rate"]["used"] == 5
        stats = running.stats()
        assert stats["rate_limited"] == 1 and stats["charged"] == 5
    finally:
        stop()


def test_anonymous_limit_is_60_per_address(sim):
    r = sim.session().get(f"{sim.api}/repos/{USER}/toolbox")
    assert r.headers["x-ratelimit-limit"] == "60"


# conditional requests -------------------------------------------------------------------

def test_etag_304_costs_nothing(fresh_sim):
    s = fresh_sim.session(TOKEN)
    url = f"{fresh_sim.api}/repos/{USER}/toolbox/issues"
    r1 = s.get(url, params={"state": "all", "per_page": 100})
    etag = r1.headers["ETag"]
    before = int(r1.headers["x-ratelimit-remaining"])
    r2 = s.get(url, params={"state": "all", "per_page": 100}, headers={"If-None-Match": etag})
    assert r2.status_code == 304 and r2.content == b""
    assert int(r2.headers["x-ratelimit-remaining"]) == before
    assert r2.headers["ETag"] == etag
    stats = fresh_sim.stats()
    assert stats["not_modified"] == 1 and stats["requests_total"] == 2 and stats["charged"] == 1


def test_if_modified_since_on_single_resources(fresh_sim):
    s = fresh_sim.session(TOKEN)
    r1 = s.get(f"{fresh_sim.api}/repos/{USER}/toolbox")
    lm = r1.headers["Last-Modified"]
    r2 = s.get(f"{fresh_sim.api}/repos/{USER}/toolbox", headers={"If-Modified-Since": lm})
    assert r2.status_code == 304
    old = "Thu, 31 Dec 2020 00:00:00 GMT"  # before anything generated (generate.BASE_EPOCH)
    assert s.get(f"{fresh_sim.api}/repos/{USER}/toolbox",
                 headers={"If-Modified-Since": old}).status_code == 200


def test_mutate_changes_what_changed_only(fresh_sim):
    s = fresh_sim.session(TOKEN)
    tags = {}
    for name in ("toolbox", "dotfiles"):
        tags[name] = s.get(f"{fresh_sim.api}/repos/{USER}/{name}/issues",
                           params={"state": "all", "per_page": 100}).headers["ETag"]
    before = fresh_sim.stats()["requests_total"]
    summary = requests.post(f"{fresh_sim.root}/_sim/mutate", verify=str(fresh_sim.ca)).json()
    assert fresh_sim.stats()["requests_total"] == before  # control calls are not API calls
    assert summary["new_issues"] > 0 and summary["new_comments"] > 0
    assert summary["new_repo"] and summary["deleted_repo"] and summary["pushed_repos"]
    changed = f"{USER}/toolbox" in summary["pushed_repos"]
    r = s.get(f"{fresh_sim.api}/repos/{USER}/toolbox/issues",
              params={"state": "all", "per_page": 100}, headers={"If-None-Match": tags["toolbox"]})
    assert (r.status_code == 200) == changed
    r = s.get(f"{fresh_sim.api}/repos/{USER}/dotfiles/issues",
              params={"state": "all", "per_page": 100}, headers={"If-None-Match": tags["dotfiles"]})
    assert r.status_code == 304
    gone = summary["deleted_repo"]
    assert s.get(f"{fresh_sim.api}/repos/{gone}").status_code == 404
    assert s.get(f"{fresh_sim.api}/repos/{summary['new_repo']}").status_code == 200


# faults ---------------------------------------------------------------------------------

def set_faults(running, spec: str, latency_ms: int = 0) -> dict:
    r = requests.post(f"{running.root}/_sim/faults", params={"latency_ms": latency_ms},
                      data=spec, verify=str(running.ca))
    assert r.status_code == 200, r.text
    return r.json()


def test_scheduled_faults_hit_exactly_the_named_requests(fresh_sim):
    set_faults(fresh_sim, "502@2,secondary@3+5,503@4,retry-after=7")
    s = fresh_sim.session(TOKEN)
    url = f"{fresh_sim.api}/repos/{USER}/toolbox"
    codes = [s.get(url) for _ in range(6)]
    assert [r.status_code for r in codes] == [200, 502, 403, 503, 403, 200]
    assert codes[2].headers["retry-after"] == "7"
    assert "secondary rate limit" in codes[2].json()["message"]
    assert int(codes[2].headers["x-ratelimit-remaining"]) > 0
    stats = fresh_sim.stats()
    assert stats["faults"] == {"502": 1, "503": 1, "secondary": 2}
    assert stats["secondary_rate_limited"] == 2 and stats["charged"] == 2


def test_dropped_connection(fresh_sim):
    set_faults(fresh_sim, "drop@1")
    ctx = ssl.create_default_context(cafile=str(fresh_sim.ca))
    host, port = fresh_sim.host.split(":")
    with socket.create_connection((host, int(port))) as raw:
        with ctx.wrap_socket(raw, server_hostname=host) as tls:
            tls.sendall(f"GET /api/v3/repos/{USER}/toolbox HTTP/1.1\r\nHost: {fresh_sim.host}"
                        f"\r\nAuthorization: token {TOKEN}\r\n\r\n".encode())
            try:
                data = tls.recv(1024)
            except (ConnectionResetError, ssl.SSLError):
                data = b""
    assert data == b""
    assert fresh_sim.stats()["faults"] == {"drop": 1}


def test_probabilistic_faults_are_repeatable_with_a_seed(fresh_sim):
    outcomes = []
    for _ in range(2):
        set_faults(fresh_sim, "502:0.3,seed=11")
        s = fresh_sim.session(TOKEN)
        outcomes.append([s.get(f"{fresh_sim.api}/repos/{USER}/toolbox").status_code
                         for _ in range(20)])
    assert outcomes[0] == outcomes[1]
    assert 502 in outcomes[0] and 200 in outcomes[0]


def test_latency_is_added(fresh_sim):
    set_faults(fresh_sim, "", latency_ms=150)
    s = fresh_sim.session(TOKEN)
    t = time.monotonic()
    s.get(f"{fresh_sim.api}/repos/{USER}/toolbox")
    assert time.monotonic() - t >= 0.15


def test_concurrency_limit_gives_secondary_limits(fresh_sim):
    import concurrent.futures as cf

    set_faults(fresh_sim, "concurrency=2", latency_ms=300)
    s = fresh_sim.session(TOKEN)
    with cf.ThreadPoolExecutor(6) as pool:
        codes = list(pool.map(lambda _: requests.get(
            f"{fresh_sim.api}/repos/{USER}/toolbox", headers={"Authorization": f"token {TOKEN}"},
            verify=str(fresh_sim.ca)).status_code, range(6)))
    assert codes.count(403) >= 1 and codes.count(200) >= 2
    assert fresh_sim.stats()["peak_concurrency"] >= 3
    del s


# accounting ------------------------------------------------------------------------------

def test_stats_count_by_endpoint_template_and_reset(fresh_sim):
    s = fresh_sim.session(TOKEN)
    s.get(f"{fresh_sim.api}/repos/{USER}/toolbox/issues/1/comments")
    s.get(f"{fresh_sim.api}/repos/{USER}/toolbox/issues/comments")
    s.get(f"{fresh_sim.api}/repos/{USER}/nope")
    st = fresh_sim.stats()
    assert st["requests_total"] == 3
    eps = st["by_endpoint"]
    assert eps["GET /repos/{owner}/{repo}/issues/{issue_number}/comments"] == {"200": 1}
    assert eps["GET /repos/{owner}/{repo}/issues/comments"] == {"200": 1}
    assert eps["GET /repos/{owner}/{repo}"] == {"404": 1}
    assert st["bytes_served"] > 0
    fresh_sim.reset()
    assert fresh_sim.stats()["requests_total"] == 0


def test_release_asset_download_redirects_to_signed_storage(sim):
    s = sim.session(TOKEN)
    rel = s.get(f"{sim.api}/repos/{USER}/toolbox/releases").json()
    asset = next(a for r in rel for a in r["assets"])
    r = s.get(asset["url"], headers={"Accept": "application/octet-stream"},
              allow_redirects=False)
    assert r.status_code == 302
    where = r.headers["Location"]
    got = requests.get(where, verify=str(sim.ca))  # no token needed, like GitHub's storage
    assert got.status_code == 200 and len(got.content) == asset["size"]
    forged = where[:-4] + "AAAA"
    assert requests.get(forged, verify=str(sim.ca)).status_code == 403


def test_json_is_compact_and_typed(sim):
    r = sim.session(TOKEN).get(f"{sim.api}/repos/{USER}/toolbox")
    assert r.headers["Content-Type"].startswith("application/json")
    assert json.loads(r.content)["private"] is False
