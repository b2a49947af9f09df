"""Incremental git between months (`--git-state`): the last bundle of every repository,
wiki and gist, and its ref tips, kept beside the HTTP cache in the state.

Layout under `{state}/{owner}/`: `git-state.json.gz` (the index: per unit, e.g.
`repo-<id>`, `wiki-<id>`, `gist-<id>`, its refs, HEAD, bundle key, size and SHA-256) and
`git/<unit>.<a|b>.bundle`. A month asks `git ls-remote` first (one request per unit) and
then, per unit:

- same refs and HEAD as the index: the kept bundle is copied into the archive, checked on
  the way (its SHA-256 against the index's, its header's refs, its pack's trailer);
- changed: the kept bundle is cloned, `git fetch --prune` brings only what changed, the
  mirror's refs must equal ls-remote's, then it is bundled anew (into the archive and the
  other slot of the state);
- no usable state (missing, damaged, mismatched): a full clone, as without --git-state.

Every archive keeps a full bundle per unit: restoring never needs the state. The index is
written only after the archive is published (engine.py), and a run writes new bundles only
into the slot the index does not name, so a failed month leaves the previous state whole.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .bundles import BundleParser, stream_bundle
from .git import Git, GitAuthError, GitError, GitUnavailable, Mirror, RepoNotFound, _cause

log = logging.getLogger("ghvault.gitstate")
INDEX_NAME = "git-state{part}.json.gz"  # part: contract.part_suffix of the run's shard
FORMAT = 1
CHUNK = 1 << 20


@dataclass
class Remote:
    refs: dict[str, str]  # every advertised ref but HEAD -> its object
    head: str | None  # the ref HEAD points at, when the server says


@dataclass
class Outcome:
    """What became of one unit: `mirror` is on disk when LFS objects were asked for (or
    the unit was fetched), None when its bundle was copied from the state."""

    mirror: Mirror | None
    empty: bool = False
    how: str = "cloned"  # "copied", "fetched" or "cloned"


def ls_remote(git: Git, url: str) -> Remote | None:
    """The remote's refs and HEAD (`git ls-remote --symref`); None when it does not exist
    (a wiki never written, say), RepoNotFound's rules otherwise as for a clone."""
    url = git._check_remote(url)
    result = git._retrying(["ls-remote", "--symref", "--", url], url, "git ls-remote")
    if result.code:
        git._raise(result, url, "git ls-remote")
    refs: dict[str, str] = {}
    head = None
    for line in result.stdout.decode("utf-8", "replace").splitlines():
        left, _, ref = line.partition("\t")
        if left.startswith("ref: ") and ref == "HEAD":
            head = left[5:]
        elif ref and ref != "HEAD" and not ref.endswith("^{}"):
            refs[ref] = left
    return Remote(refs, head)


class GitState:
    """The git part of one owner's state; thread-safe. `load()` once, `backup()` per unit
    from the git pool, `save()` once the archive is published."""

    def __init__(self, store: Any, owner: str, part: str = ""):
        self.store = store
        self.owner = owner
        # One index per part of a sharded owner (parts save theirs at once); the bundles
        # are shared, keyed by unit, and a unit is in one part only.
        self.index_key = f"{owner}/{INDEX_NAME.format(part=part)}"
        self.old: dict[str, dict[str, Any]] = {}
        self.new: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()
        self.counts = {"copied": 0, "fetched": 0, "cloned": 0, "empty": 0}

    def load(self) -> None:
        try:
            data = self.store.get(self.index_key)
            if data is None:
                log.info("no git state at %s yet: every repository is cloned",
                         self.store.where(self.index_key))
                return
            doc = json.loads(gzip.decompress(data))
            if doc.get("format") != FORMAT or not isinstance(doc.get("units"), dict):
                raise ValueError(f"format {doc.get('format')!r} where {FORMAT} was expected")
            self.old = {k: v for k, v in doc["units"].items() if _sound_record(v)}
            log.info("git state: %d repositories, wikis and gists kept", len(self.old))
        except Exception as e:  # noqa: BLE001 - no usable index: full clones, never wrong
            log.warning("git state at %s is unreadable (%s): every repository is cloned",
                        self.store.where(self.index_key), e)
            self.old = {}

    def save(self) -> None:
        """The index of this run's units (units of deleted repositories age out)."""
        with self.lock:
            doc = {"format": FORMAT, "units": dict(sorted(self.new.items()))}
        self.store.put(self.index_key, gzip.compress(json.dumps(doc).encode(), mtime=0),
                       content_type="application/gzip")
        log.info("git state saved: %s", ", ".join(f"{n} {k}" for k, n in self.counts.items()))

    def set_lfs(self, unit: str, has_lfs: bool) -> None:
        with self.lock:
            if unit in self.new:
                self.new[unit]["lfs"] = has_lfs

    # one unit ------------------------------------------------------------------------------

    def backup(self, git: Git, unit: str, url: str, scratch: Path, add: Callable[[IO[bytes]],
               object], *, remote: Remote | None = None, want_mirror: bool = False) -> Outcome:
        """The unit's bundle, handed to `add` (the archive's entry writer) as a stream."""
        remote = remote if remote is not None else ls_remote(git, url)
        old = self.old.get(unit)
        how = "cloned"
        if not remote.refs:  # an empty repository: nothing to clone or keep
            with self.lock:
                self.counts["empty"] += 1
            return Outcome(None, empty=True, how="empty")
        outcome = None
        if remote.refs and old is not None and old["refs"] == remote.refs:
            if not (want_mirror and old.get("lfs")) and old.get("head") == remote.head:
                if self._copy(unit, old, add):
                    self._record(unit, dict(old), "copied")
                    log.info("%s copied", unit)
                    return Outcome(None, how="copied")
        if remote.refs and old is not None:
            outcome = self._fetch(git, unit, old, url, remote, scratch, add)
            how = "fetched"
        if outcome is None:
            how = "cloned"
            mirror = git.mirror(url, scratch / "clone.git")
            outcome = Outcome(mirror, empty=mirror.empty)
            if not mirror.empty:
                self._bundle(git, unit, mirror, old, add, remote.head)
        if outcome.mirror is not None and not want_mirror:
            shutil.rmtree(outcome.mirror.path, ignore_errors=True)
            outcome.mirror = None
        with self.lock:
            self.counts[how] += 1
        log.info("%s %s", unit, how)
        outcome.how = how
        return outcome

    def _copy(self, unit: str, old: dict[str, Any], add: Callable) -> bool:
        """The kept bundle into the archive, checked as it streams; False (the entry
        dropped by the archive) when it is missing or not the bundle the index names."""
        try:
            reader = self.store.open_read(old["bundle"], old["size"])
        except Exception as e:  # noqa: BLE001 - missing or unreadable: fetch it instead
            log.warning("kept bundle of %s unreadable (%s): fetching it", unit, e)
            return False
        source = _Checked(reader, old)
        try:
            add(source)
            return True
        except GitError as e:
            log.warning("kept bundle of %s not used (%s): fetching it", unit, e)
            return False
        finally:
            source.close()

    def _fetch(self, git: Git, unit: str, old: dict[str, Any], url: str, remote: Remote,
               scratch: Path, add: Callable) -> Outcome | None:
        """Seed a mirror from the kept bundle and fetch what changed; None (a full clone
        follows) when the kept bundle or the fetch cannot be trusted."""
        bundle = scratch / "kept.bundle"
        dest = (scratch / "seeded.git").absolute()
        try:
            self._download(old, bundle)
            # A bundle is a local file: allowed for this one command (protocol.allow=never).
            seeded = git.run(["-c", "protocol.file.allow=always", "clone", "--mirror", "--",
                              str(bundle), str(dest)])
            if seeded.code:
                raise GitError(f"cloning the kept bundle failed: {_cause(seeded.stderr)}")
            bundle.unlink()
            if git.refs(dest) != old["refs"]:
                raise GitError("the kept bundle's refs differ from the index's")
            git.run(["remote", "set-url", "origin", url], dest)
            result = git._retrying(["fetch", "--prune", "--quiet", "origin"], url,
                                   "git fetch", cwd=dest)
            if result.code:
                git._raise(result, url, "git fetch")
            refs = git.refs(dest)
            if refs != remote.refs:
                raise GitError(f"after the fetch the mirror has {len(refs)} refs that differ "
                               f"from the {len(remote.refs)} ls-remote listed")
            if remote.head and remote.head in refs:
                git.run(["symbolic-ref", "HEAD", remote.head], dest)
        except (RepoNotFound, GitAuthError, GitUnavailable):
            raise  # GitHub's answer: a clone would get the same
        except Exception as e:  # noqa: BLE001 - the kept bundle or the fetch: clone instead
            if self.stopping(git):
                raise
            log.warning("incremental fetch of %s not used (%s): cloning it", unit, e)
            shutil.rmtree(dest, ignore_errors=True)
            bundle.unlink(missing_ok=True)
            return None
        mirror = Mirror(dest, refs, empty=not refs, url=url)
        self._bundle(git, unit, mirror, old, add, remote.head)
        return Outcome(mirror)

    @staticmethod
    def stopping(git: Git) -> bool:
        return git.stop is not None and git.stop.is_set()

    def _download(self, old: dict[str, Any], path: Path) -> None:
        h = hashlib.sha256()
        with self.store.open_read(old["bundle"], old["size"]) as src, open(path, "wb") as out:
            while data := src.read(CHUNK):
                h.update(data)
                out.write(data)
        if h.hexdigest() != old["sha256"]:
            raise ValueError("the kept bundle's SHA-256 differs from the index's (damaged)")

    def _bundle(self, git: Git, unit: str, mirror: Mirror, old: dict[str, Any] | None,
                add: Callable, head: str | None) -> None:
        """Stream the mirror's bundle into the archive and, on the way, into the slot of
        the state the index does not name (so the kept one stays whole until saved)."""
        slot = "b" if old is not None and old["bundle"].endswith(".a.bundle") else "a"
        key = f"{self.owner}/git/{unit}.{slot}.bundle"
        tee = _Tee(self.store, key)
        try:
            stream_bundle(git, mirror, lambda source: add(tee.wrap(source)))
            kept = tee.complete()
        finally:
            tee.abort()
        if kept is not None:
            self._record(unit, {"refs": dict(mirror.refs),
                                "head": head, "bundle": key, **kept, "lfs": False}, None)

    def _record(self, unit: str, record: dict[str, Any], how: str | None) -> None:
        with self.lock:
            self.new[unit] = record
            if how:
                self.counts[how] += 1


def _sound_record(v: Any) -> bool:
    return isinstance(v, dict) and isinstance(v.get("refs"), dict) and \
        isinstance(v.get("bundle"), str) and isinstance(v.get("size"), int) and \
        isinstance(v.get("sha256"), str)


class _Checked:
    """A kept bundle read from the state, checked at its end: the SHA-256 the index
    recorded, the header's refs against the index's, the pack's own trailer. A failed check
    raises GitError from the final read, so the archive drops the entry."""

    def __init__(self, reader: Any, old: dict[str, Any]):
        self.reader, self.old = reader, old
        self.sha = hashlib.sha256()
        self.parser = BundleParser()

    def read(self, size: int = -1) -> bytes:
        try:
            data = self.reader.read(size)
        except Exception as e:  # noqa: BLE001 - short or unreadable: not the kept bundle
            raise GitError(f"kept bundle {self.old['bundle']} cannot be read ({e})") from None
        if data:
            self.sha.update(data)
            self.parser.feed(data)
            return data
        problem = None
        if self.sha.hexdigest() != self.old["sha256"]:
            problem = "its SHA-256 differs from the index's"
        elif not self.parser.has_header() or not self.parser.pack_ok():
            problem = "not a sound bundle"
        elif _header_refs(self.parser) != self.old["refs"]:
            problem = "its refs differ from the index's"
        if problem:
            raise GitError(f"kept bundle {self.old['bundle']}: {problem}")
        return b""

    def close(self) -> None:
        self.reader.close()


def _header_refs(parser: BundleParser) -> dict[str, str]:
    heads = {}
    for line in bytes(parser.header).decode("utf-8", "replace").splitlines()[1:]:
        if line and line[0] not in "-@":
            sha, _, ref = line.partition(" ")
            heads[ref] = sha
    heads.pop("HEAD", None)
    return heads


class _Tee:
    """Copies what the archive reads of a bundle into a state object. A failed state write
    is logged and only costs next month a clone: the archive does not depend on it."""

    def __init__(self, store: Any, key: str):
        self.store, self.key = store, key
        self.sink: Any = None
        self.sha = hashlib.sha256()
        self.size = 0
        try:
            self.sink = store.open_write(key)
        except Exception as e:  # noqa: BLE001
            self._lost(e)

    def _lost(self, e: BaseException) -> None:
        log.warning("could not keep the bundle in the git state at %s (%s): next month "
                    "clones it again", self.store.where(self.key), e)
        if self.sink is not None:
            try:
                self.sink.abort()
            except Exception:  # noqa: BLE001
                pass
        self.sink = None

    def wrap(self, source: Any) -> Any:
        tee = self

        class Reader:
            def read(self, size: int = -1) -> bytes:
                data = source.read(size)
                if data and tee.sink is not None:
                    try:
                        tee.sink.write(data)
                        tee.sha.update(data)
                        tee.size += len(data)
                    except Exception as e:  # noqa: BLE001
                        tee._lost(e)
                return data
        return Reader()

    def complete(self) -> dict[str, Any] | None:
        if self.sink is None:
            return None
        try:
            self.sink.complete()
        except Exception as e:  # noqa: BLE001
            self._lost(e)
            return None
        return {"size": self.size, "sha256": self.sha.hexdigest()}

    def abort(self) -> None:
        if self.sink is not None:
            try:
                self.sink.abort()  # a no-op once completed
            except Exception:  # noqa: BLE001
                pass
