"""The disk cache's entries: the body first, then one line of JSON (layerbuilder.httpcache)."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pytest
import requests
import responses
from fakeindex import FIXTURES, INDEX_URL

from layerbuilder.httpcache import DiskCache, EntryFile
from layerbuilder.index import IndexClient
from layerbuilder.models import parse_json_api
from layerbuilder.spool import Spooled, SpoolFile, read_spooled

DOC = (FIXTURES / "index" / "charset-normalizer.json").read_bytes()
META = {"url": "https://index.test/x", "etag": '"1"', "last_modified": None, "content_type": ""}


def _files(cache: DiskCache) -> list[Path]:
    return sorted(p for p in cache.root.rglob("*") if p.is_file())


def test_an_entry_written_whole_loads_as_bytes_or_spooled(tmp_path: Path) -> None:
    cache = DiskCache(tmp_path)
    cache.store("k", META, DOC)
    cache.close()
    (entry,) = _files(cache)
    assert entry.read_bytes().startswith(DOC + b"\n")
    small = cache.load("k", spool_at=len(DOC))
    assert small is not None and small[1] == DOC
    assert small[0]["sha256"] == hashlib.sha256(DOC).hexdigest()
    large = cache.load("k", spool_at=1000)
    assert large is not None and isinstance(large[1], Spooled)
    assert large[1].read() == DOC
    large[1].close()
    assert cache.load("other key", spool_at=1000) is None


def test_an_entry_spooled_as_it_arrives_is_in_place_only_once_committed(
    tmp_path: Path,
) -> None:
    cache = DiskCache(tmp_path)
    made: list[EntryFile] = []

    def open_entry() -> SpoolFile:
        entry = cache.open_entry("k", META)
        assert entry is not None
        made.append(entry)
        return entry

    pieces = iter([DOC[:300_000], DOC[300_000:], b""])
    body = read_spooled(lambda n: next(pieces), spool_at=1000, open_file=open_entry)
    assert isinstance(body, Spooled)
    assert cache.load("k", spool_at=1000) is None  # not committed yet
    assert [p.name[:5] for p in cache.root.rglob("*") if p.is_file()] == [".tmp-"]
    made[0].commit()
    assert body.read() == DOC  # still readable through the entry's own file
    body.close()
    (entry,) = _files(cache)
    meta = json.loads(entry.read_bytes().rsplit(b"\n", 1)[1])
    assert (meta["key"], meta["size"]) == ("k", len(DOC))


def test_an_entry_cut_off_by_a_failed_read_leaves_nothing(tmp_path: Path) -> None:
    cache = DiskCache(tmp_path)

    def read(n: int, given: list[int] = [0]) -> bytes:  # noqa: B006
        given[0] += 1
        if given[0] > 2:
            raise requests.ConnectionError("connection reset by peer")
        return DOC[:200_000]

    def open_entry() -> SpoolFile:
        entry = cache.open_entry("k", META)
        assert entry is not None
        return entry

    with pytest.raises(requests.ConnectionError, match="reset by peer"):
        read_spooled(read, spool_at=1000, open_file=open_entry)
    assert _files(cache) == []


@responses.activate
def test_a_large_document_of_known_length_is_spooled_as_it_arrives(tmp_path: Path) -> None:
    url = f"{INDEX_URL}/charset-normalizer/json"
    responses.get(
        url,
        body=DOC,
        headers={"ETag": '"v1"', "Content-Length": str(len(DOC))},
        content_type="application/json",
    )
    with IndexClient(INDEX_URL, cache_dir=tmp_path, spool_at=1000) as client:
        page = client.get_project("charset-normalizer")
    with IndexClient(INDEX_URL) as client:
        assert page == client.get_project("charset-normalizer")
    (entry,) = sorted(p for p in (tmp_path / "http-v2").rglob("*") if p.is_file())
    assert entry.read_bytes().startswith(DOC + b"\n")


@responses.activate
def test_a_large_compressed_document_is_spooled_decoded(tmp_path: Path) -> None:
    url = f"{INDEX_URL}/charset-normalizer/json"
    squeezed = gzip.compress(DOC)
    responses.get(
        url,
        body=squeezed,
        headers={"ETag": '"v1"', "Content-Encoding": "gzip", "Content-Length": str(len(squeezed))},
        content_type="application/json",
    )
    with IndexClient(INDEX_URL, cache_dir=tmp_path, spool_at=1000) as client:
        page = client.get_project("charset-normalizer")
    assert len(squeezed) < len(DOC) // 4
    assert page == parse_json_api(DOC, url) and len(page.files) > 100
    (entry,) = sorted(p for p in (tmp_path / "http-v2").rglob("*") if p.is_file())
    assert entry.read_bytes().startswith(DOC + b"\n")  # the cache holds the body decoded
