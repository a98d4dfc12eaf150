"""The index transport against the recorded fixtures (tests/fakeindex.py)."""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec.structs
import pytest
import requests
import responses
from distlib.locators import DEFAULT_INDEX
from fakeindex import FILES_URL, FIXTURES, INDEX_URL, SIMPLE_URL, FakeIndex, serve
from packaging.version import Version

from layerbuilder import index as index_module
from layerbuilder.errors import (
    IndexUnavailable,
    IntegrityError,
    InvalidRequirement,
    ProjectNotFound,
    exit_code_for,
)
from layerbuilder.httpcache import DiskCache
from layerbuilder.index import (
    SIMPLE_ACCEPT,
    USER_AGENT,
    IndexClient,
    default_cache_dir,
    default_index_url,
)
from layerbuilder.models import FileList, ProjectPage, parse_json_api, parse_simple_json
from layerbuilder.remotezip import find_metadata_member
from layerbuilder.simple_html import parse_simple_html

REQUESTS_WHEEL = "requests-2.34.2-py3-none-any.whl"
SIX_WHEEL = "six-1.17.0-py2.py3-none-any.whl"
CHARSET_WHEEL = (
    "charset_normalizer-3.5.3-cp312-cp312-"
    "manylinux1_x86_64.manylinux_2_28_x86_64.manylinux_2_5_x86_64.whl"
)


@pytest.fixture
def fake() -> Iterator[tuple[responses.RequestsMock, FakeIndex]]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps, serve(rsps)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the back-off instead of sleeping."""
    slept: list[float] = []
    monkeypatch.setattr(index_module.time, "sleep", slept.append)
    return slept


def _member(path: Path, suffix: str) -> bytes:
    with zipfile.ZipFile(path) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(suffix)]
        return archive.read(name)


def _stored(fake: FakeIndex, filename: str) -> Path:
    path = fake.file_path(fake.dist_file(filename).url)
    assert path.is_file(), path
    return path


# -- index URL and headers ---------------------------------------------------------------


def test_default_index_url_is_distlibs_without_trailing_slash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("LAYERBUILDER_INDEX_URL", raising=False)
    assert default_index_url() == DEFAULT_INDEX.rstrip("/")
    assert IndexClient().index_url == DEFAULT_INDEX.rstrip("/")


def test_env_var_then_argument_override_the_index_url(
    monkeypatch: pytest.MonkeyPatch, fake_index: responses.RequestsMock
) -> None:
    monkeypatch.setenv("LAYERBUILDER_INDEX_URL", "https://index.test/pypi//")
    assert default_index_url() == INDEX_URL
    client = IndexClient()
    assert client.index_url == INDEX_URL
    assert client.get_project("six").name == "six"
    assert fake_index.calls[0].request.url == f"{INDEX_URL}/six/json"

    other = IndexClient("https://mirror.test/pypi/")
    assert other.index_url == "https://mirror.test/pypi"
    assert other.project_url("Six") == "https://mirror.test/pypi/six/json"


def test_user_agent_and_timeout_are_sent(fake_index: responses.RequestsMock) -> None:
    client = IndexClient(INDEX_URL, timeout=12.5)
    client.get_project("six")
    request = fake_index.calls[0].request
    assert request.headers["User-Agent"] == USER_AGENT
    assert re.fullmatch(
        r"layerbuilder/\d+\.\d+\.\d+\S* \(\+requests/[\d.]+; python/\d+\.\d+\.\d+\S*\)",
        USER_AGENT,
    )
    assert request.req_kwargs["timeout"] == 12.5


def test_session_pool_holds_the_workers_and_a_builds_downloads() -> None:
    client = IndexClient(INDEX_URL, max_workers=32)
    adapter = client.session.get_adapter("https://index.test/")
    assert adapter._pool_maxsize >= 32 + 8  # type: ignore[attr-defined]
    client.close()
    client = IndexClient(INDEX_URL)
    adapter = client.session.get_adapter("https://index.test/")
    assert adapter._pool_maxsize >= 8 + 8  # type: ignore[attr-defined]
    assert client.session.headers["User-Agent"] == USER_AGENT
    client.close()


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LAYERBUILDER_CACHE_DIR", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("LAYERBUILDER_CACHE_DIR")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / ".cache" / "layerbuilder"


# -- names -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("Charset_Normalizer", "charset-normalizer"),
        ("MarkupSafe", "markupsafe"),
        ("typing.extensions", "typing-extensions"),
    ],
)
def test_names_are_normalised(
    fake_index: responses.RequestsMock, spelling: str, canonical: str
) -> None:
    page = IndexClient(INDEX_URL).get_project(spelling)
    assert page.name == canonical
    assert fake_index.calls[0].request.url == f"{INDEX_URL}/{canonical}/json"


def test_foo_bar_is_asked_for_as_foo_bar(fake_index: responses.RequestsMock) -> None:
    with pytest.raises(ProjectNotFound):
        IndexClient(INDEX_URL).get_project("Foo_Bar")
    assert fake_index.calls[0].request.url == f"{INDEX_URL}/foo-bar/json"


@pytest.mark.parametrize("bad", ["../etc", "six/json", "", "-six", "six extra"])
def test_invalid_names_never_reach_the_network(
    fake_index: responses.RequestsMock, bad: str
) -> None:
    with pytest.raises(InvalidRequirement, match=re.escape(repr(bad))):
        IndexClient(INDEX_URL).get_project(bad)
    assert len(fake_index.calls) == 0


# -- failures ----------------------------------------------------------------------------


def test_404_is_project_not_found_with_advice(fake_index: responses.RequestsMock) -> None:
    with pytest.raises(ProjectNotFound) as caught:
        IndexClient(INDEX_URL, retries=3).get_project("no-such-project")
    message = str(caught.value)
    assert "'no-such-project'" in message
    assert "spelling" in message
    assert "--index-url" in message
    assert INDEX_URL in message
    assert exit_code_for(caught.value) == 3
    assert len(fake_index.calls) == 1  # a 404 is an answer, not retried


def test_retry_on_503_then_success(sleeps: list[float]) -> None:
    doc = json.loads((FIXTURES / "index" / "six.json").read_text())
    with responses.RequestsMock() as rsps:
        url = f"{INDEX_URL}/six/json"
        rsps.add(responses.GET, url, status=503)
        rsps.add(responses.GET, url, status=502)
        rsps.add(responses.GET, url, json=doc)
        page = IndexClient(INDEX_URL, retries=3, backoff=0.25).get_project("six")
        assert len(rsps.calls) == 3
    assert {f.filename for f in page.files} >= {SIX_WHEEL, "six-1.17.0.tar.gz"}
    assert sleeps == [0.25, 0.5]  # exponential


def test_retry_after_is_honoured(sleeps: list[float]) -> None:
    doc = json.loads((FIXTURES / "index" / "six.json").read_text())
    with responses.RequestsMock() as rsps:
        url = f"{INDEX_URL}/six/json"
        rsps.add(responses.GET, url, status=429, headers={"Retry-After": "7"})
        rsps.add(responses.GET, url, json=doc)
        IndexClient(INDEX_URL, backoff=0.1).get_project("six")
    assert sleeps == [7.0]


def test_500s_exhausted_is_index_unavailable(sleeps: list[float]) -> None:
    with responses.RequestsMock() as rsps:
        url = f"{INDEX_URL}/six/json"
        rsps.add(responses.GET, url, status=500)
        with pytest.raises(IndexUnavailable) as caught:
            IndexClient(INDEX_URL, retries=2, backoff=1.0).get_project("six")
        assert len(rsps.calls) == 3
    error = caught.value
    assert not isinstance(error, ProjectNotFound)
    message = str(error)
    assert url in message
    assert "HTTP 500" in message
    assert "3 attempts" in message
    assert "--index-url" in message and "LAYERBUILDER_INDEX_URL" in message
    assert sleeps == [1.0, 2.0]
    assert exit_code_for(error) == 9


@pytest.mark.parametrize(
    "exc", [requests.ConnectionError("connection refused"), requests.ReadTimeout("read timed out")]
)
def test_connection_errors_are_index_unavailable(sleeps: list[float], exc: Exception) -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{INDEX_URL}/six/json", body=exc)
        with pytest.raises(IndexUnavailable) as caught:
            IndexClient(INDEX_URL, retries=1).get_project("six")
        assert len(rsps.calls) == 2
    message = str(caught.value)
    assert type(exc).__name__ in message and str(exc) in message
    assert "network" in message
    assert len(sleeps) == 1


@pytest.mark.parametrize("status", [401, 403, 410])
def test_other_4xx_is_index_unavailable_and_not_retried(sleeps: list[float], status: int) -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{INDEX_URL}/six/json", status=status)
        with pytest.raises(IndexUnavailable, match=f"HTTP {status}"):
            IndexClient(INDEX_URL).get_project("six")
        assert len(rsps.calls) == 1
    assert sleeps == []


def test_a_body_that_is_not_json_is_index_unavailable() -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{INDEX_URL}/six/json", body="<html>captive portal</html>")
        with pytest.raises(IndexUnavailable, match="does not parse"):
            IndexClient(INDEX_URL).get_project("six")


def test_a_document_of_the_wrong_shape_names_the_field() -> None:
    doc = json.loads((FIXTURES / "index" / "six.json").read_text())
    doc["info"]["name"] = 6
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{INDEX_URL}/six/json", json=doc)
        with pytest.raises(IndexUnavailable) as caught:
            IndexClient(INDEX_URL).get_project("six")
    message = str(caught.value)
    assert f"GET {INDEX_URL}/six/json answered with a document that does not parse" in message
    assert "Expected `str`, got `int` - at `$.info.name`" in message
    assert "is 'https://index.test/pypi' really a package index?" in message


def test_file_entries_of_odd_types_are_read_leniently() -> None:
    """Indexes differ in the optional fields: a size that is not a number, a
    ``core-metadata`` that is a bare ``true``, a string ``yanked``, unknown keys."""
    doc = {
        "info": {"name": "Six", "summary": "ignored", "extra": [1, {"a": None}]},
        "releases": {
            "1.0": [
                {
                    "filename": "six-1.0-py2.py3-none-any.whl",
                    "url": "https://files.test/six-1.0-py2.py3-none-any.whl",
                    "digests": {"sha256": "ab" * 32, "md5": "00"},
                    "size": "12",
                    "requires_python": None,
                    "yanked": "broken",
                    "core-metadata": True,
                    "upload_time_iso_8601": "2020-01-02T03:04:05.123456Z",
                    "new_field_from_the_future": {"x": 1},
                }
            ]
        },
    }
    from_bytes = parse_json_api(json.dumps(doc).encode())
    assert from_bytes == parse_json_api(doc)
    (f,) = from_bytes.files
    assert from_bytes.name == "six"
    assert (f.filename, f.sha256, f.size, f.requires_python) == (
        "six-1.0-py2.py3-none-any.whl",
        "ab" * 32,
        None,
        None,
    )
    assert (f.yanked, f.yanked_reason, f.has_metadata, f.metadata_sha256) == (
        True,
        "broken",
        True,
        None,
    )
    assert f.upload_time is not None
    assert f.upload_time.isoformat() == "2020-01-02T03:04:05.123456+00:00"


def test_simple_json_hashes_and_pep700_fields() -> None:
    doc = {
        "meta": {"api-version": "1.1"},
        "name": "six",
        "versions": ["1.0"],
        "files": [
            {
                "filename": "six-1.0-py2.py3-none-any.whl",
                "url": "../../packages/six-1.0-py2.py3-none-any.whl",
                "hashes": {"sha256": "cd" * 32},
                "requires-python": ">=3.8",
                "core-metadata": {"sha256": "ef" * 32},
                "upload-time": "2021-05-06T07:08:09Z",
                "size": 345,
                "yanked": False,
            }
        ],
    }
    page = parse_simple_json(json.dumps(doc).encode(), "https://index.test/simple/six/")
    assert page == parse_simple_json(doc, "https://index.test/simple/six/")
    (f,) = page.files
    assert f.url == "https://index.test/packages/six-1.0-py2.py3-none-any.whl"
    assert (f.sha256, f.size, f.requires_python, f.metadata_sha256) == (
        "cd" * 32,
        345,
        ">=3.8",
        "ef" * 32,
    )
    assert f.upload_time is not None and f.upload_time.year == 2021
    assert page.versions == ("1.0",)


# -- pages -------------------------------------------------------------------------------


def test_json_api_page_is_the_recorded_one(fake_index: responses.RequestsMock) -> None:
    page = IndexClient(INDEX_URL).get_project("requests")
    yanked = {f.filename: f.yanked_reason for f in page.files if f.yanked}
    assert yanked["requests-2.32.0-py3-none-any.whl"] == (
        "Yanked due to conflicts with CVE-2024-35195 mitigation"
    )
    wheel = next(f for f in page.files if f.filename == REQUESTS_WHEEL)
    assert wheel.url.startswith(f"{FILES_URL}/packages/")
    assert (
        wheel.sha256
        == hashlib.sha256(
            (FIXTURES / "files" / wheel.url.split("/", 3)[3]).read_bytes()
        ).hexdigest()
    )
    assert set(page.versions) == {"2.32.0", "2.32.1", "2.32.5", "2.34.2"}


def test_relative_file_urls_are_resolved_against_the_page() -> None:
    doc = json.loads((FIXTURES / "index" / "six.json").read_text())
    for entries in doc["releases"].values():
        for entry in entries:
            entry["url"] = "../../packages" + entry["url"].split("/packages", 1)[1]
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{INDEX_URL}/six/json", json=doc)
        page = IndexClient(INDEX_URL).get_project("six")
    wheel = next(f for f in page.files if f.filename == SIX_WHEEL)
    assert wheel.url.startswith("https://index.test/packages/b7/ce/")
    assert wheel.url.endswith("/" + SIX_WHEEL)


def test_pages_are_fetched_once_per_client(fake_index: responses.RequestsMock) -> None:
    client = IndexClient(INDEX_URL)
    first = client.get_project("MarkupSafe")
    assert client.get_project("markupsafe") is first
    assert len(fake_index.calls) == 1


def test_forgotten_pages_are_fetched_again(fake_index: responses.RequestsMock) -> None:
    client = IndexClient(INDEX_URL)
    first = client.get_project("MarkupSafe")
    client.forget_pages()
    again = client.get_project("markupsafe")
    assert again is not first and again == first
    assert [c.request.url for c in fake_index.calls] == [client.project_url("markupsafe")] * 2


def _key(page: Any) -> set[tuple[Any, ...]]:
    return {
        (
            f.filename,
            f.url,
            f.sha256,
            f.requires_python,
            f.yanked,
            f.yanked_reason,
            f.has_metadata,
            f.metadata_sha256,
        )
        for f in page.files
    }


def test_simple_api_json_matches_the_json_api(fake_index: responses.RequestsMock) -> None:
    simple = IndexClient(SIMPLE_URL)
    assert simple.project_url("Charset_Normalizer") == f"{SIMPLE_URL}/charset-normalizer/"
    page = simple.get_project("requests")
    request = fake_index.calls[0].request
    assert request.url == f"{SIMPLE_URL}/requests/"
    assert request.headers["Accept"] == SIMPLE_ACCEPT
    assert fake_index.calls[0].response.headers["Content-Type"] == (
        "application/vnd.pypi.simple.v1+json"
    )
    assert _key(page) == _key(IndexClient(INDEX_URL).get_project("requests"))
    assert set(page.versions) == {"2.32.0", "2.32.1", "2.32.5", "2.34.2"}


def test_simple_api_html_matches_the_json_api() -> None:
    state = FakeIndex()
    html_only = state.simple_html("numpy")
    assert html_only is not None
    with responses.RequestsMock() as rsps:
        rsps.add(
            responses.GET,
            "https://index.test/simple/numpy/",
            body=html_only,
            content_type="text/html",
        )
        page = IndexClient(SIMPLE_URL + "/").get_project("NumPy")
        assert rsps.calls[0].request.headers["Accept"] == SIMPLE_ACCEPT
    expected = state.page("numpy")
    assert len(page.files) == len(expected.files) == 405
    assert _key(page) == _key(expected)
    yanked = [f for f in page.files if f.yanked]
    assert {str(f.version) for f in yanked if f.version} == {"2.4.0"}


def test_simple_html_parser_reads_every_attribute() -> None:
    text = """<!DOCTYPE html><html><head><base href="https://mirror.test/files/"></head>
    <body>
    <a href="../pkgs/demo-1.0-py3-none-any.whl#sha256=ABCDEF"
       data-requires-python="&gt;=3.9" data-dist-info-metadata="true">demo-1.0-py3-none-any.whl</a>
    <a href="demo-0.9.tar.gz#md5=123" data-yanked="">demo-0.9.tar.gz</a>
    <a href="https://other.test/demo-0.8-py3-none-any.whl" data-yanked="broken &amp; bad"
       data-core-metadata="sha256=0123ab">demo-0.8-py3-none-any.whl</a>
    <a>no href</a>
    </body></html>"""
    page = parse_simple_html(text, "https://mirror.test/simple/demo/", "Demo")
    assert page.name == "demo"
    new, sdist, old = page.files
    assert new.url == "https://mirror.test/pkgs/demo-1.0-py3-none-any.whl"
    assert (new.sha256, new.requires_python) == ("abcdef", ">=3.9")
    assert (new.has_metadata, new.metadata_sha256, new.yanked) == (True, None, False)
    assert str(new.version) == "1.0"
    assert sdist.url == "https://mirror.test/files/demo-0.9.tar.gz"
    assert (sdist.sha256, sdist.yanked, sdist.yanked_reason) == (None, True, None)
    assert sdist.has_metadata is False
    assert (old.yanked, old.yanked_reason) == (True, "broken & bad")
    assert (old.has_metadata, old.metadata_sha256) == (True, "0123ab")


# -- cache -------------------------------------------------------------------------------


def _cached_get(cache: Path, name: str) -> ProjectPage:
    """One client's fetch of *name*, closed so that its cache writes are done."""
    with IndexClient(INDEX_URL, cache_dir=cache) as client:
        return client.get_project(name)


def test_etag_revalidation_uses_the_cached_body(
    fake: tuple[responses.RequestsMock, FakeIndex], tmp_path: Path
) -> None:
    rsps, _state = fake
    first = _cached_get(tmp_path, "urllib3")
    etag = rsps.calls[0].response.headers["ETag"]
    assert "If-None-Match" not in rsps.calls[0].request.headers

    second = _cached_get(tmp_path, "urllib3")
    assert rsps.calls[1].request.headers["If-None-Match"] == etag
    assert rsps.calls[1].response.status_code == 304
    assert rsps.calls[1].response.content == b""
    assert second == first
    assert {f.filename for f in second.files} >= {"urllib3-2.8.0-py3-none-any.whl"}


def test_a_changed_page_replaces_the_cache_entry(
    fake: tuple[responses.RequestsMock, FakeIndex], tmp_path: Path
) -> None:
    rsps, state = fake
    before = _cached_get(tmp_path, "idna")
    doc = state.project_json("idna")
    assert doc is not None
    assert len(doc["releases"]["3.20"]) == 2
    doc["releases"]["3.20"] = doc["releases"]["3.20"][:1]  # the index changed
    page = _cached_get(tmp_path, "idna")
    assert rsps.calls[1].response.status_code == 200
    assert len(page.files) == len(before.files) - 1
    _cached_get(tmp_path, "idna")
    assert rsps.calls[2].response.status_code == 304


@pytest.mark.parametrize("garbage", [b"", b"not json\n{}", b'{"key": "x"}\nbody'])
def test_a_corrupt_cache_entry_is_ignored(
    fake: tuple[responses.RequestsMock, FakeIndex], tmp_path: Path, garbage: bytes
) -> None:
    rsps, _state = fake
    expected = _cached_get(tmp_path, "six")
    (entry,) = [p for p in (tmp_path / "http-v2").rglob("*") if p.is_file()]
    entry.write_bytes(garbage)
    page = _cached_get(tmp_path, "six")
    assert "If-None-Match" not in rsps.calls[1].request.headers
    assert page == expected
    assert entry.read_bytes() != garbage  # rewritten
    assert not [p for p in entry.parent.iterdir() if p.name.startswith(".tmp")]


def test_truncated_cached_body_is_ignored(
    fake: tuple[responses.RequestsMock, FakeIndex], tmp_path: Path
) -> None:
    rsps, _state = fake
    _cached_get(tmp_path, "six")
    (entry,) = [p for p in (tmp_path / "http-v2").rglob("*") if p.is_file()]
    entry.write_bytes(entry.read_bytes()[:-10])
    _cached_get(tmp_path, "six")
    assert "If-None-Match" not in rsps.calls[1].request.headers


# -- concurrency -------------------------------------------------------------------------


def test_get_projects_fetches_concurrently_and_returns_all() -> None:
    state = FakeIndex()
    barrier = threading.Barrier(3, timeout=30)
    threads: set[int] = set()
    calls: list[str] = []
    lock = threading.Lock()

    def slow(request: Any) -> Any:
        with lock:
            threads.add(threading.get_ident())
            calls.append(str(request.url))
            first_three = len(calls) <= 3
        if first_three:
            barrier.wait()  # only passes if three requests are in flight together
        return state.json_api(request)

    names = ["six", "requests", "urllib3", "idna", "certifi", "charset_normalizer", "Six"]
    with responses.RequestsMock() as rsps:
        rsps.add_callback(
            responses.GET,
            re.compile(r"https://index\.test/pypi/[^/]+/json$"),
            slow,
            content_type=None,
        )
        pages = IndexClient(INDEX_URL, max_workers=4).get_projects(names)
        urls = sorted(call.request.url for call in rsps.calls)
    assert set(pages) == {"six", "requests", "urllib3", "idna", "certifi", "charset-normalizer"}
    assert all(page.name == name for name, page in pages.items())
    assert len(urls) == len(set(urls)) == 6
    assert len(threads) >= 3


def test_get_projects_raises_the_first_failure(fake_index: responses.RequestsMock) -> None:
    with pytest.raises(ProjectNotFound, match="'not-recorded'"):
        IndexClient(INDEX_URL).get_projects(["six", "not-recorded", "idna"])


# -- metadata ----------------------------------------------------------------------------


def test_pep658_metadata_is_fetched_and_checked(fake: tuple[Any, FakeIndex]) -> None:
    rsps, state = fake
    wheel = state.dist_file(REQUESTS_WHEEL)
    assert wheel.has_metadata and wheel.metadata_sha256
    body = IndexClient(INDEX_URL).get_metadata(wheel)
    assert hashlib.sha256(body).hexdigest() == wheel.metadata_sha256
    assert b"\nName: requests\nVersion: 2.34.2\n" in body
    assert b"Requires-Dist: charset_normalizer<4,>=2" in body
    assert [c.request.url for c in rsps.calls] == [wheel.url + ".metadata"]
    # PEP 658 promises the wheel's own METADATA; the recorder only rewrote host names
    inside = _member(_stored(state, REQUESTS_WHEEL), ".dist-info/METADATA").splitlines()
    served = body.splitlines()
    assert len(served) == len(inside)
    changed = [s for s, w in zip(served, inside) if s != w]
    assert all(b"index.test" in line for line in changed)


def test_pep658_metadata_with_the_wrong_hash_is_refused(fake: tuple[Any, FakeIndex]) -> None:
    _rsps, state = fake
    wheel = msgspec.structs.replace(state.dist_file(REQUESTS_WHEEL), metadata_sha256="0" * 64)
    with pytest.raises(IntegrityError) as caught:
        IndexClient(INDEX_URL).get_metadata(wheel)
    assert "0" * 64 in str(caught.value)
    assert REQUESTS_WHEEL in str(caught.value)


def test_metadata_from_ranges_when_no_pep658(fake: tuple[Any, FakeIndex]) -> None:
    rsps, state = fake
    state.metadata = False  # every .metadata is 404: read the wheel
    wheel = state.dist_file(CHARSET_WHEEL)
    path = _stored(state, CHARSET_WHEEL)
    body = IndexClient(INDEX_URL).get_metadata(wheel)
    assert body == _member(path, ".dist-info/METADATA")
    assert b"\nName: charset-normalizer\nVersion: 3.5.3\n" in body
    calls = rsps.calls
    assert calls[0].request.url == wheel.url + ".metadata"
    assert calls[0].response.status_code == 404
    ranged = calls[1:]
    assert ranged and all(c.request.headers["Range"].startswith("bytes=") for c in ranged)
    assert all(c.response.status_code == 206 for c in ranged)
    fetched = sum(len(c.response.content) for c in ranged)
    assert fetched < path.stat().st_size / 2  # a 263 kB wheel, read in part


def test_metadata_of_a_wheel_without_pep658(fake: tuple[Any, FakeIndex]) -> None:
    rsps, state = fake
    wheel = state.dist_file(SIX_WHEEL)
    assert not wheel.has_metadata  # recorded with pep658=drop
    body = IndexClient(INDEX_URL).get_metadata(wheel)
    assert body == _member(_stored(state, SIX_WHEEL), ".dist-info/METADATA")
    assert b"Name: six\nVersion: 1.17.0\n" in body
    assert not any(c.request.url.endswith(".metadata") for c in rsps.calls)


def test_metadata_when_the_server_ignores_ranges(fake: tuple[Any, FakeIndex]) -> None:
    rsps, state = fake
    state.metadata = False
    state.ranges = False
    wheel = state.dist_file(CHARSET_WHEEL)
    body = IndexClient(INDEX_URL).get_metadata(wheel)
    assert body == _member(_stored(state, CHARSET_WHEEL), ".dist-info/METADATA")
    assert rsps.calls[-1].response.status_code == 200

    tampered = msgspec.structs.replace(wheel, sha256="f" * 64)
    with pytest.raises(IntegrityError, match="f" * 64):
        IndexClient(INDEX_URL).get_metadata(tampered)


def test_unsatisfiable_range_falls_back_to_a_checked_download(
    fake: tuple[Any, FakeIndex],
) -> None:
    rsps, state = fake
    state.metadata = False
    wheel = state.dist_file(CHARSET_WHEEL)
    wrong = msgspec.structs.replace(wheel, size=(wheel.size or 0) * 4)
    with pytest.raises(IntegrityError, match=f"index says {wrong.size}"):
        IndexClient(INDEX_URL).get_metadata(wrong)
    statuses = [c.response.status_code for c in rsps.calls]
    assert statuses == [404, 416, 200]


def test_metadata_of_a_file_not_on_the_server(fake: tuple[Any, FakeIndex]) -> None:
    _rsps, state = fake
    state.metadata = False
    wheel = next(
        f for f in state.page("lxml").files if f.filename.startswith("lxml-6.1.3-cp312-cp312-man")
    )
    with pytest.raises(IndexUnavailable, match="HTTP 404"):
        IndexClient(INDEX_URL).get_metadata(wheel)


def test_lxml_metadata_served_for_every_linux_wheel(fake: tuple[Any, FakeIndex]) -> None:
    client = IndexClient(INDEX_URL)
    page = client.get_project("lxml")
    linux = [f for f in page.wheels if "manylinux" in f.filename and "x86_64" in f.filename]
    assert linux and all(f.has_metadata for f in linux)
    body = client.get_metadata(linux[0])
    assert b"\nName: lxml\nVersion: 6.1.3\n" in body


def test_find_metadata_member() -> None:
    names = ["demo/__init__.py", "demo-1.0.dist-info/METADATA", "demo-1.0.dist-info/RECORD"]
    assert find_metadata_member(names, "demo-1.0-py3-none-any.whl") == names[1]
    two = [*names, "vendored-2.0.dist-info/METADATA"]
    assert find_metadata_member(two, "demo-1.0-py3-none-any.whl") == names[1]
    with pytest.raises(IntegrityError, match=re.escape("no '*.dist-info/METADATA'")):
        find_metadata_member(["demo/__init__.py"], "demo-1.0-py3-none-any.whl")


def test_a_file_that_is_not_a_zip_is_an_integrity_error() -> None:
    from layerbuilder.models import DistFile

    body = b"this is not a zip file" * 100
    wheel = DistFile(
        project="demo",  # type: ignore[arg-type]
        filename="demo-1.0-py3-none-any.whl",
        url=f"{FILES_URL}/demo-1.0-py3-none-any.whl",
        size=len(body),
        sha256=hashlib.sha256(body).hexdigest(),
    )
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, wheel.url, body=body)  # ignores Range
        with pytest.raises(IntegrityError, match="not a readable zip"):
            IndexClient(INDEX_URL).get_metadata(wheel)


@pytest.mark.live
def test_live_index_pages_and_metadata() -> None:
    """Against the real default index (run with -m live)."""
    with IndexClient() as client:
        page = client.get_project("Six")
        wheel = next(f for f in page.wheels if str(f.version) == "1.17.0")
        assert wheel.url.startswith("https://")
        body = client.get_metadata(wheel)
        assert b"\nName: six\nVersion: 1.17.0\n" in body
        with pytest.raises(ProjectNotFound):
            client.get_project("this-project-does-not-exist-" + "x" * 20)


def test_get_release_reads_the_per_release_document(fake_index: Any) -> None:
    client = IndexClient(INDEX_URL)
    page = client.get_release("NumPy", "2.0.2")
    assert page is not None
    assert {f.version for f in page.wheels} == {Version("2.0.2")}
    assert "numpy-2.0.2-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl" in {
        f.filename for f in page.files
    }
    assert [c.request.url for c in fake_index.calls] == [f"{INDEX_URL}/numpy/2.0.2/json"]
    assert client.get_release("numpy", "2.0.2") is page  # asked once per client
    assert client.get_release("numpy", "9.9.9") is None  # 404: the caller asks for the page
    full = client.get_project("numpy")
    assert client.get_release("numpy", "2.3.1") is full  # the page it has is enough


def test_get_release_is_none_on_a_simple_index(fake_index: Any) -> None:
    assert IndexClient(SIMPLE_URL).get_release("numpy", "2.0.2") is None
    assert len(fake_index.calls) == 0


def test_parsed_pages_make_files_on_first_use() -> None:
    body = (FIXTURES / "index" / "markupsafe.json").read_bytes()
    page = parse_json_api(body, "https://index.test/pypi/markupsafe/json")
    assert isinstance(page.files, FileList)
    eager = tuple(page.files)  # every file, as a tuple equals it
    assert page.files == eager and page == msgspec.structs.replace(page, files=eager)
    assert page.files[0] is eager[0] and page.files[-1] is eager[-1]
    assert page.files[1:3] == eager[1:3]
    fresh = parse_json_api(body, "https://index.test/pypi/markupsafe/json")
    wanted = frozenset({"manylinux_2_17_aarch64", "any"})
    picked = fresh.for_platforms(wanted)
    expected = tuple(f for f in eager if not f.platforms.isdisjoint(wanted))
    assert picked == expected and picked
    assert {f.filename for f in picked} == {
        f.filename for f in eager if "manylinux_2_17_aarch64" in f.filename
    }
    # only the picked files were made
    made = [f for f in fresh.files._made if f is not None]  # type: ignore[attr-defined]
    assert [f.filename for f in made] == [f.filename for f in picked]


def test_a_page_for_some_platforms_parses_only_their_wheels(
    fake_index: responses.RequestsMock,
) -> None:
    client = IndexClient(INDEX_URL)
    wanted = frozenset({"manylinux_2_17_aarch64", "manylinux2014_aarch64", "any"})
    some = client.get_project("markupsafe", platforms=wanted)
    whole = client.get_project("MarkupSafe")
    assert (some.complete, whole.complete) == (False, True)
    assert some.files == tuple(f for f in whole.files if not f.platforms.isdisjoint(wanted))
    assert some.files and len(some.files) < len(whole.files)
    assert some.versions == whole.versions
    # each page is parsed once per filter; the document is fetched for each parse
    assert client.get_project("markupsafe", platforms=wanted) is some
    assert client.get_project("markupsafe") is whole
    assert len(fake_index.calls) == 2


def test_parsing_with_a_filter_from_bytes_or_mapping_agrees() -> None:
    body = (FIXTURES / "index" / "markupsafe.json").read_bytes()
    keep = lambda name: name.endswith("-any.whl") or "x86_64" in name  # noqa: E731
    from_bytes = parse_json_api(body, "", keep)
    from_doc = parse_json_api(json.loads(body), "", keep)
    assert from_bytes == from_doc and not from_bytes.complete
    assert [f.filename for f in from_bytes.files] == [
        f.filename for f in parse_json_api(body).files if keep(f.filename)
    ]


def test_cache_writes_wait_in_memory_only_up_to_a_bound(
    fake: tuple[responses.RequestsMock, FakeIndex], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(DiskCache, "PENDING", 0)
    client = IndexClient(INDEX_URL, cache_dir=tmp_path)
    client.get_project("six")
    # written by the fetching thread itself: there before close()
    (entry,) = [p for p in (tmp_path / "http-v2").rglob("*") if p.is_file()]
    body, tail = entry.read_bytes().rsplit(b"\n", 1)
    meta = json.loads(tail)
    assert meta["url"] == f"{INDEX_URL}/six/json"
    assert (meta["size"], meta["sha256"]) == (len(body), hashlib.sha256(body).hexdigest())
    client.close()


def test_the_session_reads_proxies_from_the_environment_once_per_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.test:3128")
    monkeypatch.setenv("NO_PROXY", "mirror.test")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ca.pem")
    plain = requests.Session()
    with IndexClient("https://index.test/pypi") as client:
        session = client.session
        for url in (
            "https://index.test/pypi/a/json",
            "https://mirror.test/x",
            "http://index.test/",
        ):
            want = plain.merge_environment_settings(url, {}, None, None, None)
            got = session.merge_environment_settings(url, {}, None, None, None)
            assert got == want
            got["proxies"]["https"] = "changed"  # a caller's change stays its own
            assert session.merge_environment_settings(url, {}, None, None, None) == want
        assert want["verify"] == "/etc/ca.pem"
        proxies = session.merge_environment_settings("https://index.test/b", {}, None, None, None)
        assert proxies["proxies"]["https"] == "http://proxy.test:3128"
        assert (
            session.merge_environment_settings("https://mirror.test/y", {}, None, None, None)[
                "proxies"
            ]
            == {}
        )
        # per-request proxies are merged afresh, as requests does
        mine = {"https": "http://other.test:1"}
        want = plain.merge_environment_settings(
            "https://index.test/c", dict(mine), None, None, None
        )
        got = session.merge_environment_settings(
            "https://index.test/c", dict(mine), None, None, None
        )
        assert got == want
        assert got["proxies"]["https"] == "http://other.test:1"
    plain.close()


def test_the_platform_filter_reads_each_distinct_platform_tag() -> None:
    keep = index_module.platform_filter(frozenset({"manylinux_2_17_x86_64", "any"}))
    assert keep("a-1-py3-none-any.whl")
    assert keep("b-2-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl")
    assert not keep("b-2-cp312-cp312-musllinux_1_1_x86_64.whl")
    assert not keep("b-2.tar.gz")
    assert not keep("b-2-cp312-cp312-win_amd64.whl")


def test_a_page_for_a_targets_tags_parses_only_the_wheels_it_can_load(
    fake_index: responses.RequestsMock,
) -> None:
    from layerbuilder.targets import get_target

    target = get_target("python3.12", "arm64")
    tags = frozenset(target.tag_priority)
    client = IndexClient(INDEX_URL)
    some = client.get_project("markupsafe", tags=tags)
    whole = client.get_project("MarkupSafe")
    assert not some.complete and some.versions == whole.versions
    assert some.files == tuple(f for f in whole.files if not f.tags.isdisjoint(tags))
    names = [f.filename for f in some.files]
    assert (
        "markupsafe-3.0.4-cp312-cp312-manylinux2014_aarch64.manylinux_2_17_aarch64"
        ".manylinux_2_28_aarch64.whl"
    ) in names
    assert not any("cp311" in n or "x86_64" in n or "musllinux" in n for n in names)
    # one parse per filter; a whole page, once there, serves every filter
    assert client.get_project("markupsafe", tags=tags) is some
    assert client.get_project("markupsafe", tags=tags, platforms=frozenset({"any"})) is whole
    assert len(fake_index.calls) == 2


def test_the_tag_filter_reads_the_last_three_fields() -> None:
    from packaging.tags import Tag

    keep = index_module.tag_filter(frozenset({Tag("cp312", "cp312", "manylinux_2_17_x86_64")}))
    assert keep("a-1-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl")
    assert keep("a-1-7build-cp312-cp312-manylinux_2_17_x86_64.whl")
    assert not keep("a-1-cp311-cp311-manylinux_2_17_x86_64.whl")
    assert not keep("a-1-cp312-abi3-manylinux_2_17_x86_64.whl")
    assert not keep("a-1-cp312-cp312-manylinux_2_17_x86_64.tar.gz")
    assert not keep("cp312-cp312-manylinux_2_17_x86_64.whl")  # too few fields
    assert not keep("a-1--cp312-manylinux_2_17_x86_64.whl")  # an empty tag field


# -- large documents wait on disk --------------------------------------------------------


def _entries(cache: Path) -> list[Path]:
    return sorted(p for p in (cache / "http-v2").rglob("*") if p.is_file())


def test_a_spooled_document_parses_as_one_held_in_memory(
    fake: tuple[responses.RequestsMock, FakeIndex], tmp_path: Path
) -> None:
    with IndexClient(INDEX_URL) as client:
        whole = client.get_project("charset-normalizer")
    with IndexClient(INDEX_URL, spool_at=1000) as client:
        spooled = client.get_project("charset-normalizer")
        # per-release documents go the same way
        release = client.get_release("cffi", "2.0.0")
    assert spooled == whole and len(spooled.files) > 100
    assert release is not None and {f.filename for f in release.files} >= {
        "cffi-2.0.0-cp312-cp312-manylinux2014_x86_64.manylinux_2_17_x86_64.whl"
    }


def test_a_spooled_document_is_its_own_cache_entry_and_comes_back_from_it(
    fake: tuple[responses.RequestsMock, FakeIndex], tmp_path: Path
) -> None:
    rsps, _state = fake
    doc = (FIXTURES / "index" / "charset-normalizer.json").read_bytes()
    with IndexClient(INDEX_URL, cache_dir=tmp_path, spool_at=1000) as client:
        first = client.get_project("charset-normalizer")
    (entry,) = _entries(tmp_path)
    body, tail = entry.read_bytes().rsplit(b"\n", 1)
    meta = json.loads(tail)
    assert meta["url"] == f"{INDEX_URL}/charset-normalizer/json"
    assert meta["size"] == len(body) and meta["sha256"] == hashlib.sha256(body).hexdigest()
    assert json.loads(body) == json.loads(doc)
    assert not [p for p in entry.parent.iterdir() if p.name.startswith(".tmp")]
    # revalidated: 304, and the page parsed again from the entry, read back from disk
    with IndexClient(INDEX_URL, cache_dir=tmp_path, spool_at=1000) as client:
        again = client.get_project("charset-normalizer")
    assert rsps.calls[-1].response.status_code == 304
    assert again == first
    assert _entries(tmp_path) == [entry]


def test_a_spooled_cache_entry_that_changed_on_disk_is_fetched_again(
    fake: tuple[responses.RequestsMock, FakeIndex], tmp_path: Path
) -> None:
    rsps, _state = fake
    with IndexClient(INDEX_URL, cache_dir=tmp_path, spool_at=1000) as client:
        first = client.get_project("charset-normalizer")
    (entry,) = _entries(tmp_path)
    data = bytearray(entry.read_bytes())
    data[100] ^= 0x20  # one flipped bit in the body: its sha256 no longer matches
    entry.write_bytes(bytes(data))
    with IndexClient(INDEX_URL, cache_dir=tmp_path, spool_at=1000) as client:
        again = client.get_project("charset-normalizer")
    assert "If-None-Match" not in rsps.calls[-1].request.headers
    assert rsps.calls[-1].response.status_code == 200
    assert again == first
    assert entry.read_bytes() != bytes(data)  # rewritten


def test_spooled_documents_are_parsed_one_at_a_time(
    fake: tuple[responses.RequestsMock, FakeIndex], monkeypatch: pytest.MonkeyPatch
) -> None:
    held: list[int] = []
    most = [0]
    lock = threading.Lock()
    real = index_module.parse_json_api

    def parse(body: bytes, *args: Any, **kwargs: Any) -> ProjectPage:
        with lock:
            held.append(len(body))
            most[0] = max(most[0], len(held))
        try:
            time.sleep(0.02)  # long enough for the other threads to arrive
            return real(body, *args, **kwargs)
        finally:
            with lock:
                held.remove(len(body))

    monkeypatch.setattr(index_module, "parse_json_api", parse)
    names = ["charset-normalizer", "cffi", "cryptography", "requests"]
    with IndexClient(INDEX_URL, spool_at=1000) as client:
        pages = client.get_projects(names)
    assert sorted(pages) == sorted(names)
    assert most[0] == 1
