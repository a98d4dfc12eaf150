"""A JSON API document read in pieces, each version when asked (layerbuilder.jsonpieces)."""

from __future__ import annotations

import gc
import json
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest
import responses
from fakeindex import FIXTURES, INDEX_URL
from packaging.tags import Tag
from packaging.version import Version

from layerbuilder.errors import IndexUnavailable
from layerbuilder.index import IndexClient
from layerbuilder.jsonpieces import lazy_json_api_pieces
from layerbuilder.models import parse_json_api, tag_filter
from layerbuilder.targets import get_target

BASE = f"{INDEX_URL}/numpy/json"
NUMPY = (FIXTURES / "index" / "numpy.json").read_bytes()
TAGS: frozenset[Tag] = frozenset(get_target("python3.12", "x86_64").tags)
KEEP = tag_filter(TAGS)


def _pieces(data: bytes, size: int) -> Iterator[bytes]:
    return (data[i : i + size] for i in range(0, len(data), size))


def _same_error(exc: Exception) -> Exception:
    return exc


def _read_whole(data: bytes, size: int, keep: Any = KEEP) -> Any:
    """The page of *data* read in pieces of *size*, every version then read (errors
    in a file entry raise as they are); None when it is not in the shape read."""
    page = lazy_json_api_pieces(
        _pieces(data, size), BASE, keep, lambda at, n: data[at : at + n], lambda: None, _same_error
    )
    if page is not None:
        tuple(page.files)
    return page


def _same(data: bytes, size: int, keep: Any = KEEP) -> None:
    whole = parse_json_api(data, BASE, keep)
    page = _read_whole(data, size, keep)
    assert page is not None
    assert (page.name, page.versions, page.complete) == (whole.name, whole.versions, False)
    assert tuple(page.files) == tuple(whole.files)


def test_the_filter_decides_what_is_kept() -> None:
    page = _read_whole(NUMPY, 65536)
    assert page is not None and len(page.files) >= 5
    assert all("cp312" in f.filename and "x86_64" in f.filename for f in page.files)
    assert page.versions == ("2.0.2", "2.2.6", "2.3.1", "2.4.0", "2.4.6", "2.5.0rc1", "2.5.5")
    none = _read_whole(NUMPY, 65536, lambda name: False)
    assert none is not None and none.versions == page.versions and len(none.files) == 0


def _doc(releases: dict[str, list[dict[str, Any]]], **dump: Any) -> bytes:
    doc = {"info": {"name": "demo"}, "last_serial": 1, "releases": releases, "urls": []}
    return json.dumps(doc, **dump).encode()


def _file(version: str, **extra: Any) -> dict[str, Any]:
    name = f"demo-{version}-cp312-cp312-manylinux_2_17_x86_64.whl"
    return {
        "filename": name,
        "url": f"https://files.test/{name}",
        "digests": {"sha256": "ab" * 32},
        "size": 10,
        "packagetype": "bdist_wheel",
        **extra,
    }


def test_list_ends_inside_strings_and_nested_lists_are_not_taken_for_a_release_end() -> None:
    tricky = {
        "1.0": [_file("1.0", yanked=True, yanked_reason='broken ], "2.0": [ and ]} too')],
        "2.0": [_file("2.0", extra=[1, [2]], more={"k": [3]})],
        "3.0": [],
        "4.0": [_file("4.0", yanked_reason="]")],
    }
    for dump in ({}, {"indent": 2}, {"separators": (",", ":")}):
        data = _doc(tricky, **dump)
        for size in (len(data), 5, 1):
            page = _read_whole(data, size)
            assert page is not None
            assert page.versions == ("1.0", "2.0", "3.0", "4.0")
            assert [f.filename for f in page.files] == [
                _file(v)["filename"] for v in ("1.0", "2.0", "4.0")
            ]
            assert page.files[0].yanked_reason == 'broken ], "2.0": [ and ]} too'
            _same(data, size)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b'{"releases": {"1.0": []}, "info": {"name": "demo"}}', "releases before info"),
        (_doc({}), "no releases: a version's own document"),
        (json.dumps({"info": {"name": "demo"}, "urls": []}).encode(), "no releases key"),
        (_doc({"1.0": [_file("1.0")]})[:-40], "the body ends inside the releases"),
        (b'{"info": {"nam', "the body ends in the head"),
        (b'{"info": [1, 2, "releases": {"1.0": []}}', "a head that does not parse"),
        (b"", "no body"),
        (
            b'{"info": {"name": "demo"}, "releases": {"1.0": [], "2.0": [], "1.0": []}}',
            "a version twice (decoded whole, the last one wins)",
        ),
    ],
)
def test_documents_of_another_shape_are_left_to_the_whole_parse(data: bytes, why: str) -> None:
    assert _read_whole(data, 16) is None, why


def test_a_bad_file_entry_raises_as_the_whole_parse_does() -> None:
    data = _doc({"1.0": [{**_file("1.0"), "url": 5}]})
    with pytest.raises(ValueError, match=r"Expected `str`, got `int` - at `\$.url`") as whole:
        parse_json_api(data, BASE, KEEP)
    with pytest.raises(ValueError) as pieces:
        _read_whole(data, 64)
    assert str(pieces.value) == str(whole.value)


def _large() -> bytes:
    """numpy's recorded document with its releases repeated, to 6.8 MB."""
    doc = json.loads(NUMPY)
    releases = {}
    for n in range(20):
        for version, files in doc["releases"].items():
            releases[f"{version}.post{n}"] = files
    doc["releases"] = releases
    return json.dumps(doc).encode()


def test_a_large_document_is_never_held_whole() -> None:
    data = _large()
    assert len(data) > 6_000_000
    whole = parse_json_api(data, BASE, KEEP)
    tracemalloc.start()
    try:
        page = _read_whole(data, 512 * 1024)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert page is not None and tuple(page.files) == tuple(whole.files)
    assert len(page.versions) == len(whole.versions) == 140
    # a piece, what is left of the one before, the two joined: about 3 x 512 KiB
    assert peak < 2_000_000, peak


def test_the_client_parses_a_spooled_document_in_pieces(tmp_path: Any) -> None:
    data = _large()
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, BASE, body=data, content_type="application/json")
        with IndexClient(INDEX_URL, cache_dir=tmp_path) as client:
            tracemalloc.start()
            try:
                page = client.get_project("numpy", tags=TAGS)
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
    assert page.complete is False
    assert tuple(page.files) == tuple(parse_json_api(data, BASE, KEEP).files)
    # read back whole, the body alone would be all of it; this is mostly the spooling
    assert peak < len(data) // 2, peak


# -- versions read when asked (lazy_json_api_pieces) ---------------------------------


class _Body:
    """A document's bytes as the client's spool file gives them, counting reads."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.reads: list[tuple[int, int]] = []
        self.closed = 0

    def read(self, offset: int, size: int) -> bytes:
        self.reads.append((offset, size))
        return self.data[offset : offset + size]

    def close(self) -> None:
        self.closed += 1


class _Unparsable(Exception):
    pass


def _lazy(body: _Body, size: int = 4096, keep: Any = KEEP) -> Any:
    return lazy_json_api_pieces(
        _pieces(body.data, size), BASE, keep, body.read, body.close, _Unparsable
    )


@pytest.mark.parametrize("size", [1 << 20, 4096, 7])
@pytest.mark.parametrize("doc", sorted((FIXTURES / "index").glob("*.json")), ids=lambda p: p.stem)
def test_read_when_asked_every_recorded_document_reads_as_it_parses_whole(
    doc: Any, size: int
) -> None:
    data = doc.read_bytes()
    for keep in (KEEP, lambda name: True):
        whole = parse_json_api(data, BASE, keep)
        body = _Body(data)
        page = _lazy(body, size, keep)
        assert (page.name, page.versions, page.complete) == (whole.name, whole.versions, False)
        assert body.reads == [] and page.files.unread == len(whole.versions)
        assert tuple(page.files) == tuple(whole.files)
        # each version's list read once, then the body let go
        assert len(body.reads) == len(whole.versions) and body.closed == 1
        assert page.files.unread == 0 and tuple(page.files) == tuple(whole.files)
        assert len(body.reads) == len(whole.versions)


def test_newest_first_reads_a_version_when_the_iteration_reaches_it() -> None:
    body = _Body(NUMPY)
    page = _lazy(body)
    assert page.versions == ("2.0.2", "2.2.6", "2.3.1", "2.4.0", "2.4.6", "2.5.0rc1", "2.5.5")
    newest = page.files.newest_first()
    assert body.reads == []
    first = next(newest)
    assert len(body.reads) == 1 and page.files.unread == 6
    # the span read is '"2.5.5": [...]' (after the whitespace before it)
    offset, size = body.reads[0]
    assert NUMPY[offset : offset + size].lstrip().startswith(b'"2.5.5": [')
    assert NUMPY[offset : offset + size].endswith(b"]") and size < len(NUMPY) // 5
    assert first and {f.version for f in first} == {Version("2.5.5")}
    whole = parse_json_api(NUMPY, BASE, KEEP)
    assert first == tuple(f for f in whole.files if f.version == Version("2.5.5"))
    rest = list(newest)
    assert [{str(f.version) for f in files} for files in rest] == [
        {"2.5.0rc1"},
        {"2.4.6"},
        {"2.4.0"},
        {"2.3.1"},
        {"2.2.6"},
        {"2.0.2"},
    ]
    assert len(body.reads) == 7 and body.closed == 0  # read, but not yet made whole
    assert tuple(page.files) == tuple(whole.files)
    assert len(body.reads) == 7 and body.closed == 1  # nothing read twice


def test_versions_that_compare_equal_come_together_and_invalid_ones_read_all() -> None:
    data = _doc({"1.0": [_file("1.0")], "0.9": [_file("0.9")], "1.0.0": [_file("1.0.0")]})
    page = _lazy(_Body(data), 8)
    groups = [[f.filename for f in files] for files in page.files.newest_first()]
    assert groups == [
        [_file("1.0")["filename"], _file("1.0.0")["filename"]],
        [_file("0.9")["filename"]],
    ]
    odd = _lazy(_Body(_doc({"1.0": [_file("1.0")], "latest": [_file("1.0")]})), 8)
    assert odd.files.newest_first() is None  # only the whole list orders such a page
    assert odd.files.unread == 2


def test_a_page_read_whole_has_no_newest_first() -> None:
    page = _lazy(_Body(NUMPY))
    assert len(page.files) > 0
    assert page.files.newest_first() is None


def test_a_bad_file_entry_raises_when_its_version_is_read() -> None:
    data = _doc({"1.0": [{**_file("1.0"), "url": 5}], "2.0": [_file("2.0")]})
    body = _Body(data)
    page = _lazy(body, 64)
    newest = page.files.newest_first()
    assert [f.filename for f in next(newest)] == [_file("2.0")["filename"]]
    with pytest.raises(_Unparsable, match=r"Expected `str`, got `int` - at `\$.url`"):
        next(newest)
    with pytest.raises(_Unparsable, match=r"Expected `str`, got `int` - at `\$.url`"):
        tuple(page.files)
    short = _Body(data)
    page = _lazy(short, 64)
    short.data = short.data[:20]  # the file shrank under the page
    with pytest.raises(_Unparsable, match="the document's file gave 0 of"):
        tuple(page.files)


def test_the_body_is_let_go_with_a_page_never_read() -> None:
    body = _Body(NUMPY)
    page = _lazy(body)
    next(page.files.newest_first())
    assert body.closed == 0
    del page
    gc.collect()
    assert body.closed == 1


def test_the_client_says_which_document_a_version_read_late_came_from(tmp_path: Any) -> None:
    data = _doc({"1.0": [{**_file("1.0"), "url": 5}], "2.0": [_file("2.0")]})
    url = f"{INDEX_URL}/demo/json"
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, url, body=data, content_type="application/json")
        with IndexClient(INDEX_URL, spool_at=100) as client:
            page = client.get_project("demo", tags=TAGS)
    newest = page.files.newest_first()
    assert [f.version for f in next(newest)] == [Version("2.0")]
    with pytest.raises(IndexUnavailable) as caught:
        tuple(page.files)
    assert str(caught.value).startswith(
        f"GET {url} answered with a document that does not parse (ValidationError: "
        "Expected `str`, got `int` - at `$.url`)"
    )
