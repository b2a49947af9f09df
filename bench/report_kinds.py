"""§1 of bench/RESULTS.md, by kind: where each tool's requests go, like for like."""

from __future__ import annotations

from bench.by_kind import Count, ghvault_only
from bench.coverage import PEER_KEEPS
from bench.tools import GHVAULT, PEER, ToolRun


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *["| " + " | ".join(row) + " |" for row in rows]]


def _total(counts) -> Count:
    counts = list(counts)
    return Count(sum(c.requests for c in counts), sum(c.charged for c in counts))


def by_kind(month_one: dict[str, list[ToolRun]]) -> list[str]:
    ours, peer = month_one[GHVAULT][0], month_one[PEER][0]
    if not ours.kinds or not peer.kinds:
        return ["Requests by kind: not available (a run's requests could not be mapped to "
                "kinds; see the failures above).", ""]
    both = [k for k in PEER_KEEPS if PEER_KEEPS[k] and (k in ours.kinds or k in peer.kinds)]
    none = Count()
    rows = [[k, PEER_KEEPS[k] or "", *(f"{t.kinds.get(k, none).requests}" for t in (ours, peer)),
             *(f"{t.kinds.get(k, none).charged}" for t in (ours, peer))] for k in both]
    sums = [_total(t.kinds.get(k, none) for k in both) for t in (ours, peer)]
    rows.append(["**content both keep**", "", *(f"**{s.requests}**" for s in sums),
                 *(f"**{s.charged}**" for s in sums)])
    only = ghvault_only(ours.kinds)
    only_total = _total(only.values())
    return [
        "The request target is judged like for like: each tool's requests for the content "
        "both keep, since the full-backup total also pays for the kinds only ghvault keeps "
        f"({only_total.requests} of its {ours.stats['requests_total']} requests; the total "
        "stays in the headline, without a target). The simulator counts every request by "
        "endpoint and every GraphQL query by what it reads; bench/by_kind.py maps each to a "
        "kind, and bench/coverage.py says which kinds python-github-backup keeps (with the "
        "option that keeps them). First run of each tool:", "",
        *_table(["kind", "python-github-backup keeps it with", f"{GHVAULT} requests",
                 f"{PEER} requests", f"{GHVAULT} charged", f"{PEER} charged"], rows), "",
        "Requests by kind only ghvault keeps (first run; charged counts GraphQL points):", "",
        *_table(["kind", "requests", "charged"],
                [[k, str(c.requests), str(c.charged)] for k, c in only.items()]
                + [["**only ghvault keeps**", f"**{only_total.requests}**",
                    f"**{only_total.charged}**"]]), "",
    ]
