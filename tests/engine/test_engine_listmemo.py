"""A repository's long lists never sit whole in memory: those kept between months (issue
events, reviews) are chunked in the HTTP cache, no entry (so nothing read or written at
once) holding more than CHUNK items, and a list streamed into the archive leaves counts."""

from __future__ import annotations

import io
import json
import zlib

import pytest
from ghvault.github.cache import HttpCache
from ghvault.github.listmemo import CHUNK, ListMemo

KEY = "/ghvault/newest-first/repos/o/r/issues/events?per_page=100"


def entries(cache: HttpCache) -> dict[str, dict]:
    with cache.lock:
        rows = cache.db.execute("SELECT key, data FROM entries").fetchall()
    return {k: json.loads(zlib.decompress(d)) for k, d in rows}


def write(cache: HttpCache, items, meta=None) -> None:
    with ListMemo(cache, KEY).writer() as w:
        for item in items:
            w.add(item)
        w.commit(meta)


def test_a_long_list_is_kept_in_chunks_and_read_back_in_order(tmp_path):
    cache = HttpCache(tmp_path / "c.sqlite")
    n = CHUNK * 3 + 11
    write(cache, ({"id": i} for i in range(n)), {"pulls_etags": ["a"]})
    stored = entries(cache)
    chunks = [e for k, e in stored.items() if k != KEY]
    assert len(chunks) == 4
    assert max(len(c["items"]) for c in chunks) == CHUNK  # no entry holds the whole list
    memo = ListMemo(cache, KEY)
    assert memo.meta == {"pulls_etags": ["a"]}
    assert [x["id"] for x in memo.items()] == list(range(n))


def test_rewriting_while_reading_keeps_the_old_list_whole_and_drops_it_after(tmp_path):
    cache = HttpCache(tmp_path / "c.sqlite")
    write(cache, range(CHUNK * 2 + 5))
    memo = ListMemo(cache, KEY)
    with memo.writer() as w:
        w.add(-1)  # a new item in front, then last time's, read as the new ones are written
        for item in memo.items():
            w.add(item)
        w.commit()
    assert list(ListMemo(cache, KEY).items()) == [-1, *range(CHUNK * 2 + 5)]
    assert len(entries(cache)) == 1 + 3  # the head and the new chunks: the old ones dropped


def test_a_list_cut_short_keeps_last_months_memo(tmp_path):
    cache = HttpCache(tmp_path / "c.sqlite")
    write(cache, range(CHUNK + 1))
    before = entries(cache)
    memo = ListMemo(cache, KEY)
    with pytest.raises(RuntimeError), memo.writer() as w:
        for item in range(CHUNK * 3):
            w.add(item)
        raise RuntimeError("GitHub went away")
    assert entries(cache) == before
    assert list(ListMemo(cache, KEY).items()) == list(range(CHUNK + 1))


def test_a_memo_with_a_chunk_missing_is_no_memo(tmp_path):
    cache = HttpCache(tmp_path / "c.sqlite")
    write(cache, range(CHUNK * 2))
    chunk = next(k for k in entries(cache) if k != KEY)
    cache.drop([chunk])
    memo = ListMemo(cache, KEY)
    assert memo.head is None and list(memo.items()) == []


def test_a_memo_with_a_damaged_chunk_is_no_memo(tmp_path):
    # Found when the memo is opened, before any item is handed out: a reader that had
    # written last time's first items could not take them back.
    cache = HttpCache(tmp_path / "c.sqlite")
    write(cache, range(CHUNK * 2))
    last = max(k for k in entries(cache) if k != KEY)
    with cache.lock:
        cache.db.execute("UPDATE entries SET data = ? WHERE key = ?",
                         (zlib.compress(b"{not json"), last))
    memo = ListMemo(cache, KEY)
    assert memo.head is None and list(memo.items()) == []


def test_a_memo_written_whole_by_an_earlier_version_is_still_read(tmp_path):
    cache = HttpCache(tmp_path / "c.sqlite")
    cache.put(KEY, {"items": ['{"id":1}', '{"id":2}']})
    memo = ListMemo(cache, KEY)
    assert list(memo.items()) == ['{"id":1}', '{"id":2}']
    write(cache, ['{"id":3}'])
    assert list(ListMemo(cache, KEY).items()) == ['{"id":3}']


def test_only_the_new_chunks_go_into_the_next_state(tmp_path):
    cache = HttpCache(tmp_path / "c.sqlite")
    write(cache, range(CHUNK * 2))
    out = io.BytesIO()
    cache.write_jsonl(out)
    month_two = HttpCache(tmp_path / "two.sqlite")
    out.seek(0)
    month_two.read_jsonl(out)
    memo = ListMemo(month_two, KEY)
    with memo.writer() as w:
        for item in memo.items():
            w.add(item)
        w.commit()
    out = io.BytesIO()
    assert month_two.write_jsonl(out) == 1 + 2


def test_a_streamed_list_leaves_counts_not_a_record_per_item(tmp_path):
    # A repository's comments are tens of thousands of items: what stream_to_jsonl hands
    # back holds counts (and pull request numbers when asked), never one record per item.
    from contextlib import contextmanager
    from types import SimpleNamespace

    from ghvault.collect.repo_meta import stream_to_jsonl

    items = [{"number": n, "id": 10 * n, **({"pull_request": {}} if n % 3 == 0 else {})}
             for n in range(1, 5001)]
    written: list[dict] = []

    @contextmanager
    def jsonl(name):
        yield SimpleNamespace(write=written.append)

    job = SimpleNamespace(client=SimpleNamespace(paginate=lambda *a, **k: iter(items)),
                          archive=SimpleNamespace(jsonl=jsonl))
    got = stream_to_jsonl(job, "r/comments.jsonl", "/repos/o/r/issues/comments", {})
    assert (got.items, got.pulls, got.numbers) == (5000, 1666, [])
    assert written == items
    pulls = stream_to_jsonl(job, "r/pulls.jsonl", "/repos/o/r/pulls", {}, numbers=True)
    assert pulls.numbers == list(range(1, 5001))
    assert all(type(n) is int for n in pulls.numbers)


def test_a_list_abandoned_after_its_cache_closed_ends_quietly(tmp_path):
    # A stopped run closes the cache while a worker's list is still open; the list is
    # closed later (garbage collection): tidying a scratch file that is gone is nothing.
    cache = HttpCache(tmp_path / "c.sqlite")
    write(cache, range(CHUNK + 1))
    memo = ListMemo(cache, KEY)
    writer = memo.writer()
    writer.add(1)
    writer._flush()
    cache.close()
    writer.__exit__(None, None, None)
