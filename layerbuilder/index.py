"""The package-index transport: one pooled HTTP session, retries, an optional
on-disk cache, and the two ways of asking an index about a project.

* The JSON API: ``{index_url}/{name}/json``, parsed by
  :func:`layerbuilder.models.parse_json_api`.
* The simple API, when *index_url*'s path ends in ``/simple``: PEP 691 JSON
  (:func:`layerbuilder.models.parse_simple_json`) with PEP 503 HTML as the
  fallback (:func:`layerbuilder.simple_html.parse_simple_html`).

All parsing is pure and lives elsewhere; this module only moves bytes.  A 404
for a project is :class:`ProjectNotFound`; every other failure (no network,
timeouts, 5xx after retries, 403, a body that does not parse) is
:class:`IndexUnavailable` and never passes for a missing package.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from email.utils import parsedate_to_datetime
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlsplit

import requests
import urllib3
from packaging.tags import Tag
from packaging.utils import canonicalize_name
from requests.adapters import HTTPAdapter

from . import __version__
from .errors import IndexUnavailable, IntegrityError, InvalidRequirement, ProjectNotFound
from .httpcache import DiskCache, EntryFile
from .jsonpieces import lazy_json_api_pieces
from .models import (
    DistFile,
    Keep,
    ProjectPage,
    parse_json_api,
    parse_simple_json,
    platform_filter,
    tag_filter,
)
from .spool import SPOOL_AT, Spooled, SpoolFile, read_spooled

__all__ = [
    "SIMPLE_ACCEPT",
    "USER_AGENT",
    "IndexClient",
    "default_cache_dir",
    "default_index_url",
]

log = logging.getLogger(__name__)

USER_AGENT = (
    f"layerbuilder/{__version__} "
    f"(+requests/{requests.__version__}; python/{platform.python_version()})"
)
SIMPLE_ACCEPT = "application/vnd.pypi.simple.v1+json, text/html;q=0.1"
_SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
_MAX_SLEEP = 30.0
_VALID_NAME = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)
_HINT = "Check the network connection and the index URL (--index-url or LAYERBUILDER_INDEX_URL)."


def _read_body(
    response: requests.Response, spool_at: int, open_file: Callable[[], SpoolFile] | None = None
) -> bytes | Spooled:
    """The whole body of a streamed *response*: in memory, or past *spool_at*
    bytes spooled to the file *open_file()* makes (an unnamed temporary file by
    default; see :mod:`layerbuilder.spool`).

    A body whose length is known and small is read in one call: ``Response.content``
    reads 10 KB at a time, and after each socket read the thread must take the GIL
    back: while other threads were parsing documents, an 11 MB document cost some
    1,100 waits of up to the 5 ms switch interval (cProfile: 1.5 s of ``recv_into``
    across the resolver's threads).  Larger ones go in reads of
    :data:`~layerbuilder.spool.CHUNK` bytes, each a block glibc maps and unmaps, so
    that a few bodies arriving at once leave no heap behind.  Errors become
    ``requests.ConnectionError``, as ``content`` would raise them.
    """
    raw = response.raw
    # without a Content-Encoding the bytes on the wire are the body: read them as
    # they come (urllib3 then makes no second copy in its buffer of decoded bytes)
    decode = "Content-Encoding" in response.headers
    try:
        length = response.headers.get("Content-Length", "")
        if length.isdigit() and int(length) <= spool_at and not decode:
            data = raw.read(decode_content=True)
            return data if isinstance(data, bytes) else b""

        def read(n: int) -> bytes:
            return raw.read(n, decode_content=decode) or b""

        return read_spooled(read, spool_at=spool_at, open_file=open_file)
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise requests.ConnectionError(f"{type(exc).__name__}: {exc}") from exc


def _close(cached: tuple[dict[str, Any], bytes | Spooled] | None) -> None:
    """Let go of a cache entry's body that is not used."""
    if cached is not None and isinstance(cached[1], Spooled):
        cached[1].close()


class _Session(requests.Session):
    """A :class:`requests.Session` that reads the environment's proxy and CA
    settings once per scheme and host rather than on every request: requests
    scans every environment variable for proxies each time (a few milliseconds
    of CPU per request, under the GIL that the other fetches need).  The
    settings are the same; the environment is taken to stay put while a client
    lives."""

    def __init__(self) -> None:
        super().__init__()
        self._settings: dict[tuple[Any, ...], Any] = {}

    def merge_environment_settings(
        self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> Any:
        if proxies or not isinstance(url, str):  # per-request proxies: nothing to share
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc, stream, verify, cert)
        try:
            settings = self._settings.get(key)
        except TypeError:  # an unhashable verify or cert
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        if settings is None:
            settings = super().merge_environment_settings(url, {}, stream, verify, cert)
            self._settings[key] = settings
        return {**settings, "proxies": dict(settings["proxies"])}


def _both(first: Keep, second: Keep) -> Keep:
    return lambda filename: first(filename) and second(filename)


def _unreadable(url: str, exc: OSError) -> IndexUnavailable:
    return IndexUnavailable(
        f"reading the answer to GET {url} back from a temporary file failed "
        f"({exc}); check the space in the temporary directory."
    )


def default_index_url() -> str:
    """``$LAYERBUILDER_INDEX_URL`` if set, else distlib's default index, without
    trailing slashes."""
    configured = os.environ.get("LAYERBUILDER_INDEX_URL")
    if configured:
        return configured.rstrip("/")
    # imported here: distlib.locators is slow to import and only this constant is used
    from distlib.locators import DEFAULT_INDEX  # type: ignore[import-untyped]

    return str(DEFAULT_INDEX).rstrip("/")


def default_cache_dir() -> Path:
    """``$LAYERBUILDER_CACHE_DIR`` if set, else ``~/.cache/layerbuilder``."""
    configured = os.environ.get("LAYERBUILDER_CACHE_DIR")
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "layerbuilder"


def _is_simple(index_url: str) -> bool:
    return urlsplit(index_url).path.rstrip("/").endswith("/simple")


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class IndexClient:
    """Talks to one package index over one pooled :class:`requests.Session`.

    Pages are fetched and parsed at most once per client.  Safe to share
    between threads.
    """

    def __init__(
        self,
        index_url: str | None = None,
        *,
        cache_dir: Path | None = None,
        timeout: float = 30.0,
        retries: int = 3,
        session: requests.Session | None = None,
        max_workers: int = 8,
        backoff: float = 0.5,
        spool_at: int = SPOOL_AT,
    ) -> None:
        self.index_url = (index_url or default_index_url()).rstrip("/")
        self.timeout = timeout
        self.retries = max(0, retries)
        self.backoff = backoff
        self.max_workers = max(1, max_workers)
        self.simple = _is_simple(self.index_url)
        self._owns_session = session is None
        if session is None:
            session = _Session()
            # connections kept per host: the resolver's workers, plus a build's
            # downloads (8, running during the resolution) and a margin; a pool too
            # small makes urllib3 warn "Connection pool is full" and reconnect
            keep = self.max_workers + 16
            adapter = HTTPAdapter(pool_connections=4, pool_maxsize=keep)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            session.headers["User-Agent"] = USER_AGENT
        self.session = session
        self._cache = DiskCache(Path(cache_dir)) if cache_dir is not None else None
        self._pages: dict[str, ProjectPage] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._filters: dict[tuple[Any, Any], tuple[str, Keep | None]] = {}
        self._lock = threading.Lock()
        # documents over spool_at bytes wait on disk and are parsed one at a time
        self.spool_at = spool_at
        self._parse_lock = threading.Lock()

    # -- lifecycle ------------------------------------------------------------------
    def close(self) -> None:
        """Close the session (if this client made it) and finish cache writes."""
        if self._cache is not None:
            self._cache.close()
        if self._owns_session:
            self.session.close()

    def forget_pages(self) -> None:
        """Let go of the parsed pages this client keeps, so that asking again fetches
        (through the disk cache) and parses again.  A build calls this once its
        resolution is done: in a 250 MB layer's build the pages (1.1 MB) and the
        files parsed from them (1.7 MB, traced) were held through the download, the
        zip and verify."""
        with self._lock:
            self._pages.clear()
            self._locks.clear()

    def __enter__(self) -> IndexClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"IndexClient({self.index_url!r})"

    # -- transport ------------------------------------------------------------------
    def _get(
        self, url: str, headers: Mapping[str, str] | None = None, *, stream: bool = False
    ) -> requests.Response:
        """GET with retries on connection errors, timeouts, 429 and 5xx.

        Returns the response for any other status (the caller decides what a
        404 means); raises :class:`IndexUnavailable` once the retries are spent.
        """
        merged = {"User-Agent": USER_AGENT, **(headers or {})}
        attempts = self.retries + 1
        for attempt in range(1, attempts + 1):
            delay = self.backoff * (2 ** (attempt - 1))
            try:
                response = self.session.get(
                    url, headers=merged, timeout=self.timeout, stream=stream
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                problem = f"{type(exc).__name__}: {exc}"
            except requests.RequestException as exc:
                raise IndexUnavailable(f"GET {url} failed ({exc}). {_HINT}") from exc
            else:
                if response.status_code not in _RETRY_STATUS:
                    return response
                problem = f"HTTP {response.status_code} {response.reason or ''}".rstrip()
                delay = max(delay, _retry_after(response) or 0.0)
                response.close()
            if attempt < attempts:
                log.info("GET %s: %s; retry %d/%d", url, problem, attempt, self.retries)
                time.sleep(min(delay, _MAX_SLEEP))
        raise IndexUnavailable(
            f"the package index did not answer: GET {url} -> {problem} "
            f"(after {attempts} attempt{'s' if attempts != 1 else ''}). {_HINT}"
        )

    def _fetch_page(self, url: str, accept: str | None) -> tuple[bytes | Spooled, str, str, int]:
        """(body, final url, content type, status) for a page, through the disk cache.

        A body over :attr:`spool_at` bytes comes as a :class:`Spooled` that the
        caller reads with :meth:`_held` (which closes it)."""
        key = f"{accept or ''} {url}"
        cache = self._cache
        cached = cache.load(key, self.spool_at) if cache is not None else None
        headers: dict[str, str] = {}
        if accept:
            headers["Accept"] = accept
        if cached is not None:
            meta = cached[0]
            if meta.get("etag"):
                headers["If-None-Match"] = str(meta["etag"])
            if meta.get("last_modified"):
                headers["If-Modified-Since"] = str(meta["last_modified"])
        try:
            response = self._get(url, headers, stream=True)
        except BaseException:
            _close(cached)
            raise
        try:
            if response.status_code == 304 and cached is not None:
                meta, kept = cached
                return kept, str(meta.get("url") or url), str(meta.get("content_type", "")), 200
            _close(cached)
            if response.status_code == 304:  # never asked for; ask plainly
                response.close()
                headers.pop("If-None-Match", None)
                headers.pop("If-Modified-Since", None)
                response = self._get(url, headers, stream=True)
            if (
                cache is None
                or response.status_code != 200
                or not (response.headers.get("ETag") or response.headers.get("Last-Modified"))
            ):
                body = _read_body(response, self.spool_at)
            else:
                meta = {
                    "url": response.url,
                    "etag": response.headers.get("ETag"),
                    "last_modified": response.headers.get("Last-Modified"),
                    "content_type": response.headers.get("Content-Type", ""),
                }
                # a large body is spooled straight into its cache entry
                entries: list[EntryFile] = []

                def open_entry() -> SpoolFile:
                    assert cache is not None
                    entries.append(cache.open_entry(key, meta))
                    return entries[-1]

                body = _read_body(response, self.spool_at, open_entry)
                if isinstance(body, Spooled):
                    entries[0].commit()
                elif not entries:  # (an entry the disk refused is not tried again)
                    cache.store(key, meta, body)
            return (
                body,
                response.url or url,
                response.headers.get("Content-Type", ""),
                (response.status_code),
            )
        except requests.RequestException as exc:
            raise IndexUnavailable(
                f"reading the answer to GET {url} failed ({exc}). {_HINT}"
            ) from exc
        finally:
            response.close()

    # -- projects -------------------------------------------------------------------
    def project_url(self, name: str) -> str:
        """Where this client asks about project *name*."""
        canonical = canonicalize_name(name)
        if self.simple:
            return f"{self.index_url}/{canonical}/"
        return f"{self.index_url}/{canonical}/json"

    def get_project(
        self,
        name: str,
        *,
        platforms: frozenset[str] | None = None,
        tags: frozenset[Tag] | None = None,
    ) -> ProjectPage:
        """Every file the index lists for *name* (any spelling of it).

        With *platforms*, only the wheels whose platform tag is one of them (add
        ``"any"`` for pure wheels); with *tags* (a target's supported tags), only
        the wheels with one of those tags.  The rest are never parsed, so a page's
        cost in time and memory follows what the target can use, not the project's
        history.  Such a page says ``complete=False``; the document is fetched once
        either way.
        """
        if not _VALID_NAME.match(name):
            raise InvalidRequirement(
                f"{name!r} is not a valid project name: names are letters, digits, "
                "'.', '-' and '_', starting and ending with a letter or digit."
            )
        canonical = canonicalize_name(name)
        suffix, keep = self._filter(platforms, tags)
        key = canonical + suffix
        with self._lock:
            page = self._pages.get(key) or self._pages.get(canonical)
            if page is not None:
                return page
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            page = self._pages.get(key)
            if page is None:
                page = self._load(name, canonical, keep)
                with self._lock:
                    self._pages[key] = page
        return page

    def _filter(
        self, platforms: frozenset[str] | None, tags: frozenset[Tag] | None
    ) -> tuple[str, Keep | None]:
        """The page-key suffix and the file filter for *platforms* and *tags*, made
        once per pair: a filter remembers the tag strings it has seen, and those
        repeat from project to project."""
        if platforms is None and tags is None:
            return "", None
        with self._lock:
            found = self._filters.get((platforms, tags))
            if found is None:
                keeps = [platform_filter(platforms)] if platforms is not None else []
                keeps += [tag_filter(tags)] if tags is not None else []
                keep = keeps[0] if len(keeps) == 1 else _both(keeps[0], keeps[1])
                found = self._filters[platforms, tags] = (f" #{len(self._filters)}", keep)
            return found

    def _load(self, name: str, canonical: str, keep: Keep | None = None) -> ProjectPage:
        url = self.project_url(canonical)
        fetched, final_url, content_type, status = self._fetch_page(
            url, SIMPLE_ACCEPT if self.simple else "application/json"
        )
        if status == 200 and not self.simple and keep is not None and isinstance(fetched, Spooled):
            page = self._parse_pieces(fetched, url, final_url, keep)
            if page is not None:
                return page
        with self._held(fetched, url) as body:
            if status == 404:
                raise ProjectNotFound(
                    f"project {name!r} was not found on the index {self.index_url} "
                    f"(GET {url} answered 404). Check the spelling of the name, or point "
                    "--index-url (LAYERBUILDER_INDEX_URL) at the index that has it."
                )
            if status != 200:
                raise IndexUnavailable(
                    f"the package index refused the request: GET {url} -> HTTP {status}. {_HINT}"
                )
            try:
                if not self.simple:
                    return parse_json_api(body, final_url, keep)
                mime = content_type.split(";", 1)[0].strip().lower()
                if mime == _SIMPLE_JSON or mime.endswith("+json") or mime == "application/json":
                    return parse_simple_json(body, final_url, keep)
                from .simple_html import parse_simple_html  # html.parser: only for such indexes

                return parse_simple_html(body.decode("utf-8", "replace"), final_url, canonical)
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise self._unparsable(url, exc) from exc

    def _unparsable(self, url: str, exc: Exception) -> IndexUnavailable:
        return IndexUnavailable(
            f"GET {url} answered with a document that does not parse "
            f"({type(exc).__name__}: {exc}); is {self.index_url!r} really a package "
            f"index? {_HINT}"
        )

    def _parse_pieces(
        self, body: Spooled, url: str, final_url: str, keep: Keep
    ) -> ProjectPage | None:
        """A large JSON API document read from its file a release at a time
        (:mod:`layerbuilder.jsonpieces`), each version's files left there until
        the page is asked for them; None when it is not in the shape that allows
        it, and then it is parsed whole.  The page owns the body from then on:
        it is closed once every version is read, or with the page."""

        def fail(exc: Exception) -> Exception:
            return _unreadable(url, exc) if isinstance(exc, OSError) else self._unparsable(url, exc)

        with self._parse_lock:
            try:
                return lazy_json_api_pieces(
                    body.pieces(), final_url, keep, body.pread, body.close, fail
                )
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
                body.close()
                raise fail(exc) from exc

    @contextmanager
    def _held(self, body: bytes | Spooled, url: str) -> Iterator[bytes]:
        """*body* in memory for the with-block that parses it.  A spooled body is
        read back under the client's parse lock, so that one large document at a
        time is in memory however many have arrived; it is closed either way."""
        if not isinstance(body, Spooled):
            yield body
            return
        with self._parse_lock:
            try:
                data = body.read()
            except OSError as exc:
                raise _unreadable(url, exc) from exc
            finally:
                body.close()
            yield data

    def get_release(self, name: str, version: str) -> ProjectPage | None:
        """The files of one release of *name*, from the JSON API's per-release
        document (``{index}/{name}/{version}/json``): a small fraction of the whole
        project's document for projects with long histories (pydantic-core's is
        13 MB).  The whole page instead when this client already has it.

        ``None`` where the index has no such document (simple indexes, a 404, a
        body that does not parse): ask :meth:`get_project` then.
        """
        canonical = canonicalize_name(name)
        key = f"{canonical}=={version}"
        with self._lock:
            page = self._pages.get(canonical) or self._pages.get(key)
        if page is not None or self.simple or not _VALID_NAME.match(name):
            return page
        url = f"{self.index_url}/{canonical}/{quote(version)}/json"
        fetched, final_url, _type, status = self._fetch_page(url, "application/json")
        with self._held(fetched, url) as body:
            if status != 200:
                return None
            try:
                page = parse_json_api(body, final_url)
            except (ValueError, KeyError, TypeError, AttributeError):
                return None
        with self._lock:
            self._pages[key] = page
        return page

    def get_projects(self, names: Iterable[str]) -> dict[str, ProjectPage]:
        """Several projects at once, fetched concurrently; keyed by normalised name.

        The first failure (in the order given) is raised once all have finished.
        """
        unique = list(dict.fromkeys(names))
        if not unique:
            return {}
        with ThreadPoolExecutor(max_workers=min(self.max_workers, len(unique))) as pool:
            futures = [pool.submit(self.get_project, name) for name in unique]
        pages = [future.result() for future in futures]
        return {page.name: page for page in pages}

    # -- metadata -------------------------------------------------------------------
    def get_metadata(self, file: DistFile) -> bytes:
        """The core metadata (``METADATA`` bytes) of wheel *file*.

        PEP 658 ``<url>.metadata`` when the index offers it, checked against its
        sha256; otherwise (or when that file is missing) read from the wheel
        with range requests, or a full download as the last resort.
        """
        if not file.is_wheel:
            raise ValueError(f"{file.filename!r} is not a wheel; only wheels carry METADATA")
        if file.has_metadata:
            response = self._get(file.metadata_url)
            try:
                if response.status_code == 200:
                    body = response.content
                    if file.metadata_sha256 is not None:
                        got = hashlib.sha256(body).hexdigest()
                        if got != file.metadata_sha256.lower():
                            raise IntegrityError(
                                f"the metadata of {file.filename!r} ({file.metadata_url}) "
                                f"has sha256 {got}, but the index says "
                                f"{file.metadata_sha256.lower()}. Retry; if it persists "
                                "the index or a proxy is serving a bad file."
                            )
                    return body
                if response.status_code not in (403, 404, 410):
                    raise IndexUnavailable(
                        f"GET {file.metadata_url} answered HTTP {response.status_code}. {_HINT}"
                    )
                log.info(
                    "%s: no .metadata (HTTP %s); reading the wheel",
                    file.filename,
                    response.status_code,
                )
            finally:
                response.close()

        def fetch(headers: Mapping[str, str]) -> requests.Response:
            return self._get(file.url, headers, stream=True)

        from .remotezip import read_wheel_metadata  # only for indexes without PEP 658

        return read_wheel_metadata(
            fetch, file.url, file.filename, size=file.size, sha256=file.sha256
        )
