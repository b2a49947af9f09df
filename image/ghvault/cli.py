"""`ghvault`: the engine's command line (also the container's ENTRYPOINT)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shlex
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import __version__
from .contract import (
    EXIT_MEANINGS,
    EXPECT_PREVIOUS,
    KINDS,
    SIDECAR_SUFFIX,
    Exit,
    check_month,
    check_owner,
    check_shard,
    summary_line,
)
from .errors import EXIT_CODES, ConfigError, GhvaultError
from .github.urls import check_api_url, check_git_url
from .memory import bound_malloc
from .scrub import SCRUBBER

log = logging.getLogger("ghvault")

EPILOG = "exit codes:\n" + "\n".join(f"  {code}  {text}" for code, text in sorted(
    EXIT_CODES.items())) + """
  130, 143  stopped by SIGINT or SIGTERM (128 + the signal): git children killed, the upload
            aborted, the scratch directory removed; nothing was published

credentials come from the environment only, never from arguments:
  GITHUB_TOKEN                     a personal access token (classic: repo, read:org,
                                   read:user, gist; fine-grained: read access to
                                   contents, issues, pull requests, metadata)
  GITHUB_APP_ID                    or a GitHub App: its numeric id,
  GITHUB_APP_PRIVATE_KEY           its private key (PEM text, or the path of the .pem
                                   file), and optionally
  GITHUB_APP_INSTALLATION_ID       its installation on the owner (found from --owner when
                                   unset); installation tokens are renewed before they
                                   expire, for the API and for git
the token goes to the API origin (--api-url) and the git origin (--git-url) only.
the last line on stdout is a one-line JSON summary of the run."""


def checked(check: Callable[[str], str]) -> Callable[[str], str]:
    """A contract check as an argparse type: its sentence becomes argparse's error (exit 2)."""
    def argument(value: str) -> str:
        try:
            return check(value)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    return argument


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ghvault", description="Back up whole GitHub owners into "
                                "verifiable archives.")
    p.add_argument("--version", action="version", version=f"ghvault {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="back up one owner into one archive",
                         epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("--owner", required=True, type=checked(check_owner),
                     help="user or organisation login")
    run.add_argument("--dest", required=True,
                     help="s3://bucket/key.zip or file:///path/x.zip (the manifest goes beside "
                          f"it as <dest>{SIDECAR_SUFFIX})")
    run.add_argument("--month", type=checked(check_month),
                     default=datetime.now(UTC).strftime("%Y-%m"),
                     help="the month this archive stands for (default: the current month)")
    run.add_argument("--api-url", type=checked(check_api_url),
                     default=os.environ.get("GITHUB_API_URL", "https://api.github.com"),
                     help="GitHub API base URL (Enterprise: https://HOST/api/v3)")
    run.add_argument("--git-url", type=checked(check_git_url),
                     help="the origin repositories are cloned from (default from --api-url: "
                          "https://github.com for api.github.com, https://HOST for "
                          "HOST/api/v3, SUB.ghe.com for api.SUB.ghe.com, else the API's "
                          "origin)")
    run.add_argument("--include", help=f"comma-separated kinds to back up (default all): "
                     f"{','.join(KINDS)}")
    run.add_argument("--exclude", help="comma-separated kinds to leave out")
    run.add_argument("--repos", help="regex: only repositories whose name matches")
    run.add_argument("--exclude-repos", help="regex: leave out repositories whose name matches")
    run.add_argument("--no-forks", action="store_true", help="leave out forks")
    run.add_argument("--no-archived", action="store_true", help="leave out archived repos")
    run.add_argument("--concurrency", type=int, default=4,
                     help="API requests in flight at once (default 4, at most 20)")
    run.add_argument("--git-concurrency", type=int, default=2,
                     help="git mirrors at once (default 2; each needs the repo's disk size)")
    run.add_argument("--state", help="s3://bucket/prefix/ or a directory: HTTP validators "
                     "kept between months so unchanged data costs a free 304")
    run.add_argument("--git-state", action="store_true",
                     help="keep each repository's last bundle in --state and fetch only "
                          "what changed since (the archive still holds full bundles)")
    run.add_argument("--retries", type=int, default=8,
                     help="tries per GitHub request on 5xx, dropped connections and secondary "
                          "rate limits, with exponential backoff (default 8: about 2 minutes)")
    run.add_argument("--shard", metavar="K/N", type=checked(check_shard),
                     help="back up part K of N of the owner: the repositories whose id "
                          "hashes to K, and (K=1) the account and gists; --dest is then "
                          "{owner}-{YYYY-MM}.part-K-of-N.zip (docs/operations.md#shards)")
    run.add_argument("--workdir", help="scratch directory (default: the system temp dir)")
    run.add_argument("-v", "--verbose", action="store_true")
    add_archive_commands(sub)
    return p


ARCHIVE_EPILOG = "exit codes:\n  0  all is well\n" + "".join(
    f"  {int(code)}  {EXIT_MEANINGS[code]}\n"
    for code in (Exit.CONFIG, Exit.NOT_READY, Exit.INVALID, Exit.UNREADABLE)
) + f"  {int(Exit.DESTINATION)}  (restore) --to cannot be written or --push-to refused a push"
LIST_EPILOG = ARCHIVE_EPILOG + (f"; (list --expect) the SNS topic refused the message\n"
                                f"  {int(Exit.INCOMPLETE_MONTH)}  "
                                f"{EXIT_MEANINGS[Exit.INCOMPLETE_MONTH]}")


def add_archive_commands(sub: Any) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    where = "s3://bucket/key.zip, file:///path/x.zip or a path"
    verify = sub.add_parser("verify", help="check an archive's entries, bundles and counts",
                            epilog=ARCHIVE_EPILOG, formatter_class=fmt)
    verify.add_argument("archive", help=where)
    restore = sub.add_parser("restore", help="rebuild bare mirrors, LFS objects and metadata",
                             epilog=ARCHIVE_EPILOG + "\n\nthe token for --push-to comes "
                             "from GITHUB_TOKEN only, never from an argument.",
                             formatter_class=fmt)
    restore.add_argument("archive", help=where)
    restore.add_argument("--to", required=True, help="an empty (or new) directory")
    restore.add_argument("--repos", help="regex: only repositories whose name matches (their "
                         "mirrors, wikis, LFS objects and metadata; no gists or account)")
    restore.add_argument("--push-to", metavar="URL_TEMPLATE",
                         help="push each repository's branches and tags (and LFS objects) "
                              "to this URL, {repo} replaced by its name, e.g. "
                              "https://github.com/neworg/{repo}.git")
    for p in (verify, restore):
        glacier = p.add_argument_group("archives in Glacier (S3 only)")
        glacier.add_argument("--tier", choices=("Bulk", "Standard", "Expedited"),
                             default="Bulk", help="restore tier (default Bulk, the cheapest)")
        glacier.add_argument("--days", type=int, default=7,
                             help="days the restored copy stays readable (default 7)")
        glacier.add_argument("--wait", action="store_true",
                             help="wait for the restore to complete instead of exiting 7")
        glacier.add_argument("--poll", type=float, default=60.0,
                             help="seconds between restore checks with --wait (default 60)")
        p.add_argument("-v", "--verbose", action="store_true")
    listing = sub.add_parser("list", help="the archives by owner and month, with gaps",
                             epilog=LIST_EPILOG, formatter_class=fmt)
    listing.add_argument("location", help="s3://bucket/prefix/ or a directory")
    listing.add_argument("--owner", type=checked(check_owner), help="only this owner")
    listing.add_argument("--json", action="store_true", help="JSON instead of a table")
    watch = listing.add_argument_group(
        "the watchdog: is every owner's archive for a month complete?")
    watch.add_argument("--expect", metavar="MONTH", help="check MONTH (YYYY-MM, or "
                       f"'{EXPECT_PREVIOUS}': the month before this one, UTC) for every owner: "
                       "one line per owner, exit 10 when one is missing or incomplete")
    watch.add_argument("--owners", default=os.environ.get("GHVAULT_OWNERS"),
                       help="comma-separated owners to expect (default GHVAULT_OWNERS, else "
                            "every owner with an archive under LOCATION)")
    watch.add_argument("--notify-topic", default=os.environ.get("GHVAULT_NOTIFY_TOPIC"),
                       metavar="SNS_TOPIC_ARN", help="publish one message there when a month "
                       "is missing or incomplete (default GHVAULT_NOTIFY_TOPIC)")
    listing.add_argument("-v", "--verbose", action="store_true")


def open_ready(args: argparse.Namespace, argv: list[str]) -> Any:
    """The archive, once it can be read (Glacier: restored, or a restore started)."""
    from .source import open_source

    if not 1 <= args.days <= 365:
        raise ConfigError("--days must be between 1 and 365")
    if args.poll <= 0:
        raise ConfigError("--poll must be a positive number of seconds")
    source = open_source(args.archive)
    again = [a for a in argv if a != "--wait"]
    source.ensure_readable(tier=args.tier, days=args.days, wait=args.wait, poll=args.poll,
                           command="ghvault " + " ".join(shlex.quote(a) for a in again))
    return source


def verify_command(args: argparse.Namespace, argv: list[str]) -> int:
    from .errors import ArchiveInvalid
    from .verify import verify

    report = verify(open_ready(args, argv))
    for line in report.problems:
        print(line)
    print(report.summary())
    print(summary_line(report.as_dict()), flush=True)
    if not report.ok:
        raise ArchiveInvalid(f"{args.archive} failed verification with "
                             f"{len(report.problems)} problem(s), listed above: back the "
                             "month up again (or restore what is intact)")
    return 0


def restore_command(args: argparse.Namespace, argv: list[str]) -> int:
    from pathlib import Path

    from .errors import ArchiveInvalid, DestinationError
    from .restore import Restore, RestoreOptions, check_template

    try:
        re.compile(args.repos or "")
    except re.error as e:
        raise ConfigError(f"--repos is not a valid regex ({e})") from None
    if args.push_to:
        check_template(args.push_to)
    opts = RestoreOptions(to=Path(args.to), repos=args.repos, push_to=args.push_to)
    summary = Restore(open_ready(args, argv), opts).run()
    for line in summary["problems"] + summary["push_failures"]:
        print(line)
    print(summary_line(summary | {"problems": len(summary["problems"]),
                                  "push_failures": len(summary["push_failures"])}), flush=True)
    if summary["problems"]:
        raise ArchiveInvalid(f"{len(summary['problems'])} damaged or missing entries of "
                             f"{args.archive} were left out of {args.to} (listed above): "
                             "restore them from another month")
    if summary["push_failures"]:
        raise DestinationError(f"{len(summary['push_failures'])} repositories could not be "
                               "pushed to --push-to (listed above): check the remote and "
                               "the token, then run the restore again into a new --to")
    return 0


def list_command(args: argparse.Namespace, argv: list[str]) -> int:
    from .catalog import catalog, render

    if args.expect is not None:
        from .watchdog import expect_command

        return expect_command(args)
    result = catalog(args.location, args.owner)
    print(json.dumps(result, indent=1) if args.json else render(result), flush=True)
    return 0


def s3_failures_named(command: Any) -> Any:
    """S3 failures in the middle of a read (after the first HEAD succeeded) as one
    sentence and exit code 9, not an internal error."""
    def wrapped(args: argparse.Namespace, argv: list[str]) -> int:
        try:
            return command(args, argv)
        except Exception as e:
            if not type(e).__module__.startswith(("botocore", "boto3", "urllib3")):
                raise
            from .storage.failures import s3_error

            raise s3_error(e, getattr(args, "archive", None) or args.location) from None
    return wrapped


ARCHIVE_COMMANDS = {name: s3_failures_named(command) for name, command in (
    ("verify", verify_command), ("restore", restore_command), ("list", list_command))}


# Kinds that come only with another (LFS objects with the git mirror, assets with their
# releases, reviews with the pull requests): without that one they are left out.
KIND_NEEDS = {"lfs": "git", "assets": "releases", "reviews": "pulls"}


def kinds_from(args: argparse.Namespace) -> frozenset[str]:
    def parse(flag: str, text: str | None) -> set[str]:
        items = {k.strip() for k in (text or "").split(",") if k.strip()}
        bad = items - set(KINDS)
        if bad:
            raise ConfigError(f"{flag} names unknown kind(s) {', '.join(sorted(bad))}: choose "
                              f"from {', '.join(KINDS)}")
        return items

    excluded = parse("--exclude", args.exclude)
    chosen = (parse("--include", args.include) or set(KINDS)) - excluded
    for kind, needs in KIND_NEEDS.items():
        if kind in chosen and needs not in chosen:
            chosen.discard(kind)
            if args.include and kind in args.include.split(","):
                log.warning("--include names %s without %s, which %s comes with: %s is left "
                            "out", kind, needs, kind, kind)
    if not chosen:
        raise ConfigError("--include and --exclude leave no kind to back up (lfs needs git, "
                          "assets need releases, reviews need pulls): include more kinds or "
                          f"exclude fewer (choose from {', '.join(KINDS)})")
    return frozenset(chosen)


def check_workdir(workdir: str | None) -> str:
    """The scratch directory (--workdir, else the system's), once a directory can be made
    in it; ConfigError naming it otherwise."""
    where = workdir or tempfile.gettempdir()
    if not os.path.isdir(where):
        raise ConfigError(f"--workdir {where!r} is not an existing directory: create it or "
                          "choose another")
    try:
        tempfile.TemporaryDirectory(prefix="ghvault-check-", dir=where).cleanup()
    except OSError as e:
        raise ConfigError(f"--workdir {where!r} is not writable ({e.strerror or e}): fix its "
                          "permissions or choose another") from None
    return where


def check_state(state: str | None) -> None:
    """ConfigError now, before any GitHub or S3 work, when --state cannot be the state's
    place: not a location, or a local path that is not (and cannot become) a writable
    directory. (An S3 prefix is read before any GitHub request.)"""
    if state is None:
        return
    from .storage import parse_location

    where = parse_location(state, "--state", kind="prefix")
    if where.is_s3:
        return
    path = Path(where.root)
    existing = next(p for p in (path, *path.parents) if os.path.lexists(p))
    if existing != path and not existing.is_dir():
        raise ConfigError(f"--state {state!r} lies under {str(existing)!r}, which is not a "
                          "directory: name a directory or an s3:// prefix")
    if existing == path and not path.is_dir():
        raise ConfigError(f"--state {state!r} is not a directory: name a directory (it is "
                          "created when missing) or an s3:// prefix")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"--state {state!r} cannot be written ({str(existing)!r} is not "
                          "writable): fix its permissions or choose another")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    bound_malloc()  # before any thread: the heap stays flat over a long run (memory.py)
    SCRUBBER.add(os.environ.get("GITHUB_TOKEN", ""))
    if os.environ.get("GITHUB_APP_PRIVATE_KEY", "").lstrip().startswith("-----BEGIN"):
        SCRUBBER.add(os.environ["GITHUB_APP_PRIVATE_KEY"])  # a path: its text once read
    scrubber = SCRUBBER  # the credentials add the JWTs and tokens they make
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s",
                                           "%Y-%m-%dT%H:%M:%SZ"))
    handler.addFilter(scrubber)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    for noisy in ("urllib3", "botocore", "boto3", "s3transfer", "github"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    try:
        if args.command == "run":
            return run(args)
        return ARCHIVE_COMMANDS[args.command](args, sys.argv[1:] if argv is None else argv)
    except GhvaultError as e:
        print(f"ghvault: error: {scrubber.scrub(str(e))}", file=sys.stderr, flush=True)
        leave_promptly(int(e.exit_code))
        return int(e.exit_code)
    except KeyboardInterrupt as e:  # SIGINT; SIGTERM or SIGINT during a run (Interrupted)
        for sig in (signal.SIGTERM, signal.SIGINT):  # the stop is done: on the way out
            signal.signal(sig, signal.SIG_IGN)
        code = int(getattr(e, "exit_code", 128 + signal.SIGINT))
        text = str(e) or "interrupted; nothing was published"
        print(f"ghvault: error: {scrubber.scrub(text)}", file=sys.stderr, flush=True)
        leave_promptly(code)
        return code
    except Exception as e:  # noqa: BLE001 - the last resort: a bug
        # The traceback once, through the scrubbing handler; then the one-line verdict.
        log.error("internal error (a bug), traceback follows", exc_info=True)
        print(f"ghvault: internal error: {scrubber.scrub(f'{type(e).__name__}: {e}')}",
              file=sys.stderr)
        return int(Exit.INTERNAL)
    return 2


# Threads a run starts (its job pools, the S3 part uploader): see leave_promptly.
RUN_THREADS = ("api_", "git_", "s3-part_")


def leave_promptly(code: int, grace: float = 2.0) -> None:
    """After a stop or a failure, end the process with `code` now if jobs of the run are
    still busy after `grace` seconds (a request waiting out a rate limit, say): the
    interpreter would otherwise wait for them at exit. Their work was abandoned and
    cleaned up; only the run's own threads count."""
    deadline = time.monotonic() + grace

    def busy() -> list[threading.Thread]:
        return [t for t in threading.enumerate()
                if t.name.startswith(RUN_THREADS) and not t.daemon and t.is_alive()]

    for thread in busy():
        thread.join(max(0.0, deadline - time.monotonic()))
    if busy():
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def run(args: argparse.Namespace) -> int:
    from .engine import Backup, Options

    # Importing PyGithub sets its logger to INFO with a handler of its own, which would
    # print every retried 403 twice and around the scrubber: ours only, at our level.
    pygithub = logging.getLogger("github")
    pygithub.handlers.clear()
    pygithub.setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    # Its requester logs every answer's body at DEBUG, an installation token's among them
    # (before we can register it with the scrubber): never below INFO, -v or not.
    logging.getLogger("github.Requester").setLevel(
        logging.INFO if args.verbose else logging.WARNING)

    if not 1 <= args.concurrency <= 20:
        raise ConfigError("--concurrency must be between 1 and 20 (GitHub advises modest "
                          "concurrency)")
    if not 1 <= args.git_concurrency <= 8:
        raise ConfigError("--git-concurrency must be between 1 and 8")
    if not 0 <= args.retries <= 20:
        raise ConfigError("--retries must be between 0 and 20")
    for flag in ("repos", "exclude_repos"):
        try:
            re.compile(getattr(args, flag) or "")
        except re.error as e:
            raise ConfigError(f"--{flag.replace('_', '-')} is not a valid regex ({e})") from None
    kinds = kinds_from(args)
    from .shards import check_dest

    check_dest(args.dest, args.shard)
    check_workdir(args.workdir)
    check_state(args.state)
    if args.git_state and not args.state:
        raise ConfigError("--git-state keeps bundles in the state: give --state too")
    opts = Options(owner=args.owner, dest=args.dest, month=args.month,
                   api_url=args.api_url, kinds=kinds, repos=args.repos,
                   exclude_repos=args.exclude_repos, forks=not args.no_forks,
                   archived=not args.no_archived, concurrency=args.concurrency,
                   git_concurrency=args.git_concurrency, state=args.state,
                   workdir=args.workdir, retries=args.retries, git_url=args.git_url,
                   shard=args.shard, git_state=args.git_state)
    summary = Backup(opts).run()
    print(summary_line(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
