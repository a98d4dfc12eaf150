"""A package index on loopback, served offline from a cache filled once from the live index.

Layout of the cache (``benchmarks/.cache/index/`` by default)::

    docs/json/<name>.json     the project's JSON API document, as fetched, file URLs absolute
    docs/simple/<name>.json   the project's PEP 691 JSON simple page, as fetched
    docs/missing/<name>       the live index answered 404 for this project
    files/<sha256[:2]>/<sha256>/<filename>            a file, checked against its sha256
    files/<sha256[:2]>/<sha256>/<filename>.metadata   its PEP 658 core metadata

What the server speaks (only on 127.0.0.1):

* ``/pypi/<name>/json`` and ``/pypi/<name>/<version>/json`` — the JSON API, file URLs
  rewritten to this server;
* ``/simple/<name>/`` — PEP 691 JSON or PEP 503 HTML by the ``Accept`` header (or
  ``?format=``), with ``data-core-metadata``, ``data-requires-python``, ``data-yanked``
  and ``#sha256=`` fragments;
* ``/files/<sha256>/<filename>`` and ``…/<filename>.metadata`` — with ETags
  (``If-None-Match`` gives 304), ``Accept-Ranges`` and single-range ``Range`` requests;
* ``/_stats`` — request counters and the misses (``?reset=1`` clears them).

Core metadata is offered for every wheel whose ``.metadata`` is in the cache, as the
live index does for every wheel it hosts: when the live index has no ``.metadata`` for a
wheel, the fill takes the ``METADATA`` member out of the wheel itself, which is what a
PEP 658 file is.

In *record* mode (``--record``, used by ``python -m benchmarks fill``) a project or file
missing from the cache is fetched from the live index (base URL from
``distlib.locators.DEFAULT_INDEX``), stored, then served; run every tool once through a
recording server and the cache holds everything those tools ask for.  Without
``--record`` the server never leaves loopback: a miss is a 404 and is counted in
``/_stats`` so a benchmark run can refuse figures that touched one.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urljoin, urlsplit

from . import CACHE

__all__ = ["HOST", "IndexServer", "Store", "normalize", "running_index", "upstream_urls"]

HOST = "127.0.0.1"
INDEX_CACHE = CACHE / "index"

SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
SIMPLE_HTML = "application/vnd.pypi.simple.v1+html"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20


def normalize(name: str) -> str:
    """PEP 503 name normalisation."""
    return re.sub(r"[-_.]+", "-", name).lower()


def upstream_urls() -> tuple[str, str]:
    """(JSON API base, simple API base) of the live index, from distlib's constant."""
    from distlib.locators import DEFAULT_INDEX

    json_base = DEFAULT_INDEX.rstrip("/")
    root = json_base[: -len("/pypi")] if json_base.endswith("/pypi") else json_base
    return json_base, root + "/simple"


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


class Miss(Exception):
    """Something asked for is not in the cache (and the server does not record)."""


class NotOnIndex(Miss):
    """The live index itself has no such project (recorded as such): a plain 404."""


class Store:
    """The cache on disk, and (in record mode) the filling of it from the live index."""

    def __init__(self, root: Path = INDEX_CACHE, *, record: bool = False) -> None:
        self.root = root
        self.record = record
        self._lock = threading.Lock()
        self._key_locks: dict[str, threading.Lock] = {}
        self._docs: dict[str, tuple[dict[str, Any], dict[str, Any]] | None] = {}
        # sha256 -> (filename, upstream url) of every file of every loaded document
        self._upstream: dict[str, tuple[str, str]] = {}
        # sha256 of a file -> sha256 of its cached .metadata
        self._metadata_sha: dict[str, str] = {}
        self._session: Any = None
        for sub in ("docs/json", "docs/simple", "docs/missing", "files"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        for meta in (root / "files").glob("*/*/*.metadata"):
            self._metadata_sha[meta.parent.name] = _sha256_file(meta)

    # -- paths ---------------------------------------------------------------------------

    def file_path(self, sha256: str, filename: str) -> Path:
        if not _SHA256.match(sha256) or "/" in filename or filename.startswith("."):
            raise Miss(f"bad file key {sha256}/{filename}")
        return self.root / "files" / sha256[:2] / sha256 / filename

    def metadata_sha256(self, sha256: str) -> str | None:
        return self._metadata_sha.get(sha256)

    def projects(self) -> list[str]:
        return sorted(p.stem for p in (self.root / "docs/json").glob("*.json"))

    def _key_lock(self, key: str) -> threading.Lock:
        with self._lock:
            return self._key_locks.setdefault(key, threading.Lock())

    # -- documents -----------------------------------------------------------------------

    def documents(self, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """(JSON API document, PEP 691 document) of project *name* (normalised)."""
        with self._lock:
            if name in self._docs:
                found = self._docs[name]
                if found is None:
                    raise NotOnIndex(f"project {name!r} is not on the index")
                return found
        with self._key_lock("doc:" + name):
            docs = self._load_documents(name)
            with self._lock:
                self._docs[name] = docs
                if docs is not None:
                    for entry in _json_api_entries(docs[0]):
                        sha = (entry.get("digests") or {}).get("sha256")
                        if isinstance(sha, str):
                            self._upstream[sha] = (entry["filename"], entry["url"])
            if docs is None:
                raise NotOnIndex(f"project {name!r} is not on the index")
            return docs

    def _load_documents(self, name: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        jpath = self.root / "docs/json" / f"{name}.json"
        spath = self.root / "docs/simple" / f"{name}.json"
        if jpath.exists() and spath.exists():
            return json.loads(jpath.read_bytes()), json.loads(spath.read_bytes())
        if (self.root / "docs/missing" / name).exists():
            return None
        if not self.record:
            raise Miss(f"project {name!r} is not in the cache")
        json_base, simple_base = upstream_urls()
        jurl = f"{json_base}/{name}/json"
        resp = self._get(jurl)
        if resp.status_code == 404:
            (self.root / "docs/missing" / name).touch()
            return None
        resp.raise_for_status()
        jdoc = resp.json()
        for entry in _json_api_entries(jdoc):
            entry["url"] = urljoin(jurl, entry["url"])
        surl = f"{simple_base}/{name}/"
        resp = self._get(surl, headers={"Accept": SIMPLE_JSON})
        resp.raise_for_status()
        sdoc = resp.json()
        for entry in sdoc.get("files") or ():
            entry["url"] = urljoin(resp.url, entry["url"])
        _atomic_write(jpath, json.dumps(jdoc).encode())
        _atomic_write(spath, json.dumps(sdoc).encode())
        _log(f"recorded project {name}")
        return jdoc, sdoc

    # -- files ---------------------------------------------------------------------------

    def file(self, sha256: str, filename: str) -> Path:
        """The cached file, fetched first in record mode."""
        path = self.file_path(sha256, filename)
        if path.exists():
            return path
        if not self.record:
            raise Miss(f"file {filename} is not in the cache")
        with self._key_lock("file:" + sha256):
            if not path.exists():
                self._download(self._upstream_url(sha256, filename), path, sha256)
                _log(f"recorded {filename}")
        return path

    def metadata(self, sha256: str, filename: str) -> Path:
        """The cached ``.metadata`` of a wheel, fetched or extracted first in record mode."""
        path = self.file_path(sha256, filename)
        meta = path.with_name(filename + ".metadata")
        if meta.exists():
            return meta
        if not self.record or not filename.endswith(".whl"):
            raise Miss(f"metadata of {filename} is not in the cache")
        with self._key_lock("meta:" + sha256):
            if not meta.exists():
                url = self._upstream_url(sha256, filename) + ".metadata"
                resp = self._get(url)
                if resp.status_code == 200:
                    body = resp.content
                    how = "fetched"
                else:
                    body = _wheel_metadata(self.file(sha256, filename))
                    how = "extracted from the wheel"
                _atomic_write(meta, body)
                with self._lock:
                    self._metadata_sha[sha256] = hashlib.sha256(body).hexdigest()
                _log(f"recorded {filename}.metadata ({how})")
        return meta

    def _upstream_url(self, sha256: str, filename: str) -> str:
        with self._lock:
            found = self._upstream.get(sha256)
        if found is None or found[0] != filename:
            raise Miss(f"{filename} ({sha256}) is in no loaded project document")
        return found[1]

    def _download(self, url: str, path: Path, sha256: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as out, self._get(url, stream=True) as resp:
                resp.raise_for_status()
                for block in resp.iter_content(_CHUNK):
                    digest.update(block)
                    out.write(block)
            if digest.hexdigest() != sha256:
                raise OSError(f"sha256 mismatch for {url}: got {digest.hexdigest()}")
            os.replace(tmp, path)
        except BaseException:
            with suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def _get(self, url: str, **kwargs: Any) -> Any:
        import requests

        with self._lock:
            if self._session is None:
                self._session = requests.Session()
                adapter = requests.adapters.HTTPAdapter(pool_maxsize=32, max_retries=3)
                self._session.mount("https://", adapter)
                self._session.mount("http://", adapter)
            session = self._session
        return session.get(url, timeout=120, **kwargs)


def _json_api_entries(doc: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    for entries in (doc.get("releases") or {}).values():
        yield from entries
    yield from doc.get("urls") or ()


def _wheel_metadata(wheel: Path) -> bytes:
    stem = wheel.name[: -len(".whl")].split("-")
    prefix = f"{stem[0]}-{stem[1]}.dist-info/".lower()
    with zipfile.ZipFile(wheel) as zf:
        names = [n for n in zf.namelist() if re.match(r"^[^/]+\.dist-info/METADATA$", n)]
        names.sort(key=lambda n: not n.lower().startswith(prefix))
        if not names:
            raise OSError(f"{wheel.name} has no .dist-info/METADATA")
        return zf.read(names[0])


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".part-")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _log(message: str) -> None:
    print(f"localindex: {message}", file=sys.stderr, flush=True)


# -- rendering ---------------------------------------------------------------------------


class Renderer:
    """Turns cached documents into what the server sends (memoised per project)."""

    def __init__(self, store: Store, base_url: str) -> None:
        self.store = store
        self.base = base_url
        self._memo: dict[tuple[str, str], tuple[bytes, str]] = {}
        self._lock = threading.Lock()

    def file_url(self, sha256: str, filename: str) -> str:
        return f"{self.base}/files/{sha256}/{quote(filename)}"

    def _core_metadata(self, sha256: str | None, filename: str) -> Any:
        if not filename.endswith(".whl") or sha256 is None:
            return None
        msha = self.store.metadata_sha256(sha256)
        if msha is not None:
            return {"sha256": msha}
        if self.store.record:
            return True
        return None

    def _memoised(self, key: tuple[str, str], render: Callable[[], bytes]) -> tuple[bytes, str]:
        """(body, etag) that *render* makes, rendered once per *key* (every time in
        record mode, where the documents may still change)."""
        if not self.store.record:
            with self._lock:
                if key in self._memo:
                    return self._memo[key]
        body = render()
        out = body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        if not self.store.record:
            with self._lock:
                self._memo[key] = out
        return out

    def get(self, kind: str, name: str) -> tuple[bytes, str]:
        """(body, etag) of ``json``, ``simple-json`` or ``simple-html`` for *name*."""

        def render() -> bytes:
            jdoc, sdoc = self.store.documents(name)
            if kind == "json":
                return json.dumps(self._json_api(jdoc)).encode()
            if kind == "simple-json":
                return json.dumps(self._simple(sdoc)).encode()
            return self._html(self._simple(sdoc)).encode()

        return self._memoised((kind, name), render)

    def _json_api(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(doc)

        def entry(e: Mapping[str, Any]) -> dict[str, Any]:
            sha = (e.get("digests") or {}).get("sha256")
            new = dict(e)
            new["url"] = self.file_url(sha, e["filename"]) if sha else e["url"]
            meta = self._core_metadata(sha, e["filename"])
            new["core-metadata"] = meta if meta is not None else False
            new["data-dist-info-metadata"] = new["core-metadata"]
            return new

        out["releases"] = {
            v: [entry(e) for e in es] for v, es in (doc.get("releases") or {}).items()
        }
        out["urls"] = [entry(e) for e in doc.get("urls") or ()]
        return out

    def json_api_version(self, name: str, version: str) -> bytes:
        """The per-release JSON API document, rendered once like the others:
        rendering walks the whole project (80 ms for pydantic-core), which a real
        index serves from its cache."""

        def render() -> bytes:
            jdoc, _ = self.store.documents(name)
            doc = self._json_api(jdoc)
            if version not in doc["releases"]:
                raise NotOnIndex(f"{name} {version} is not on the index")
            doc["urls"] = doc["releases"][version]
            doc["info"] = dict(doc["info"], version=version)
            del doc["releases"]
            return json.dumps(doc).encode()

        return self._memoised(("json-version", f"{name}=={version}"), render)[0]

    def _simple(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        files = []
        for e in doc.get("files") or ():
            sha = (e.get("hashes") or {}).get("sha256")
            new = {k: v for k, v in e.items() if k not in ("core-metadata", "dist-info-metadata")}
            new["url"] = self.file_url(sha, e["filename"]) if sha else e["url"]
            meta = self._core_metadata(sha, e["filename"])
            if meta is not None:
                new["core-metadata"] = meta
                new["dist-info-metadata"] = meta
            files.append(new)
        meta_block = dict(doc.get("meta") or {}, **{"api-version": "1.1"})
        return {
            "meta": meta_block,
            "name": doc["name"],
            "versions": list(doc.get("versions") or ()),
            "files": files,
        }

    @staticmethod
    def _html(page: Mapping[str, Any]) -> str:
        lines = [
            "<!DOCTYPE html>",
            "<html>",
            "  <head>",
            '    <meta name="pypi:repository-version" content="1.1">',
            f"    <title>Links for {html.escape(page['name'])}</title>",
            "  </head>",
            "  <body>",
            f"    <h1>Links for {html.escape(page['name'])}</h1>",
        ]
        for f in page["files"]:
            href = f["url"]
            sha = (f.get("hashes") or {}).get("sha256")
            if sha:
                href += "#sha256=" + sha
            attrs = [f'href="{html.escape(href)}"']
            if f.get("requires-python"):
                attrs.append(f'data-requires-python="{html.escape(f["requires-python"])}"')
            meta = f.get("core-metadata")
            if meta:
                value = f"sha256={meta['sha256']}" if isinstance(meta, dict) else "true"
                attrs.append(f'data-core-metadata="{value}"')
                attrs.append(f'data-dist-info-metadata="{value}"')
            yanked = f.get("yanked")
            if yanked:
                reason = yanked if isinstance(yanked, str) else ""
                attrs.append(f'data-yanked="{html.escape(reason)}"')
            lines.append(f"    <a {' '.join(attrs)}>{html.escape(f['filename'])}</a><br/>")
        lines += ["  </body>", "</html>", ""]
        return "\n".join(lines)

    def simple_index(self) -> bytes:
        names = self.store.projects()
        links = "\n".join(f'    <a href="/simple/{n}/">{n}</a>' for n in names)
        return (
            "<!DOCTYPE html>\n<html>\n  <head>\n"
            '    <meta name="pypi:repository-version" content="1.1">\n'
            "    <title>Simple index</title>\n  </head>\n  <body>\n"
            f"{links}\n  </body>\n</html>\n"
        ).encode()


def _wants_json(accept: str) -> bool:
    """PEP 691 content negotiation, reduced to: is the JSON form acceptable and preferred?"""
    best_json = best_html = -1.0
    for part in accept.split(","):
        fields = [f.strip() for f in part.split(";")]
        mime, q = fields[0].lower(), 1.0
        for f in fields[1:]:
            if f.startswith("q="):
                with suppress(ValueError):
                    q = float(f[2:])
        if mime == SIMPLE_JSON:
            best_json = max(best_json, q)
        elif mime in (SIMPLE_HTML, "text/html", "*/*", "application/*", "text/*"):
            best_html = max(best_html, q)
    return best_json > 0 and best_json >= best_html


# -- the server --------------------------------------------------------------------------


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.requests = 0
        self.bytes_sent = 0
        self.by_kind: dict[str, int] = {}
        self.misses: list[str] = []

    def add(self, kind: str, sent: int) -> None:
        with self.lock:
            self.requests += 1
            self.bytes_sent += sent
            self.by_kind[kind] = self.by_kind.get(kind, 0) + 1

    def miss(self, path: str) -> None:
        with self.lock:
            self.misses.append(path)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "requests": self.requests,
                "bytes_sent": self.bytes_sent,
                "by_kind": dict(self.by_kind),
                "misses": list(self.misses),
            }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "localindex/1"
    server: IndexServer

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            sys.stderr.write("localindex: " + (format % args) + "\n")

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        try:
            self._route()
        except Miss as exc:
            if not isinstance(exc, NotOnIndex):
                self.server.stats.miss(self.path)
            self._error(HTTPStatus.NOT_FOUND, str(exc))
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:
            _log(f"error serving {self.path}: {exc!r}")
            with suppress(OSError):
                self._error(HTTPStatus.BAD_GATEWAY, repr(exc))

    def _route(self) -> None:
        url = urlsplit(self.path)
        path = unquote(url.path)
        query = parse_qs(url.query)
        parts = [p for p in path.split("/") if p]
        renderer = self.server.renderer
        if path == "/_stats":
            stats = self.server.stats.snapshot()
            if query.get("reset"):
                with self.server.stats.lock:
                    self.server.stats.reset()
            self._send(json.dumps(stats).encode(), "application/json", kind="stats")
        elif len(parts) == 3 and parts[0] == "pypi" and parts[2] == "json":
            body, etag = renderer.get("json", normalize(parts[1]))
            self._send(body, "application/json", etag=etag, kind="json", max_age=600)
        elif len(parts) == 4 and parts[0] == "pypi" and parts[3] == "json":
            body = renderer.json_api_version(normalize(parts[1]), parts[2])
            self._send(body, "application/json", kind="json", max_age=600)
        elif parts == ["simple"]:
            self._send(renderer.simple_index(), "text/html; charset=utf-8", kind="simple")
        elif len(parts) == 2 and parts[0] == "simple":
            name = normalize(parts[1])
            if not path.endswith("/") or name != parts[1]:
                self._redirect(f"/simple/{name}/" + (f"?{url.query}" if url.query else ""))
                return
            fmt = (query.get("format") or [""])[0]
            as_json = _wants_json(fmt or self.headers.get("Accept", ""))
            body, etag = renderer.get("simple-json" if as_json else "simple-html", name)
            ctype = SIMPLE_JSON if as_json else SIMPLE_HTML
            self._send(body, ctype, etag=etag, kind="simple", max_age=600, vary=True)
        elif len(parts) == 3 and parts[0] == "files":
            sha, filename = parts[1], parts[2]
            if filename.endswith(".metadata"):
                meta = self.server.store.metadata(sha, filename[: -len(".metadata")])
                msha = self.server.store.metadata_sha256(sha) or _sha256_file(meta)
                self._send_file(meta, "application/octet-stream", f'"{msha}"', "metadata")
            else:
                found = self.server.store.file(sha, filename)
                ctype = "application/octet-stream"
                self._send_file(found, ctype, f'"{sha}"', "file")
        else:
            raise Miss(f"no such page: {path}")

    # -- responses -----------------------------------------------------------------------

    def _error(self, status: HTTPStatus, message: str) -> None:
        body = (message + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.server.stats.add("error", len(body))

    def _redirect(self, location: str) -> None:
        self.send_response(HTTPStatus.MOVED_PERMANENTLY)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()
        self.server.stats.add("redirect", 0)

    def _not_modified(self, etag: str | None) -> bool:
        if etag is None:
            return False
        wanted = self.headers.get("If-None-Match")
        if wanted is None:
            return False
        tags = {t.strip().removeprefix("W/") for t in wanted.split(",")}
        if etag not in tags and "*" not in tags:
            return False
        self.send_response(HTTPStatus.NOT_MODIFIED)
        self.send_header("ETag", etag)
        self.send_header("Content-Length", "0")
        self.end_headers()
        self.server.stats.add("not-modified", 0)
        return True

    def _range(self, size: int) -> tuple[int, int] | bool | None:
        """(start, end inclusive) of a satisfiable single range; None for the whole body;
        False for an unsatisfiable range."""
        header = self.headers.get("Range")
        if not header or not header.startswith("bytes=") or "," in header:
            return None
        first, _, last = header[len("bytes=") :].strip().partition("-")
        try:
            if first == "":
                count = int(last)
                if count <= 0:
                    return False
                return max(0, size - count), size - 1
            start = int(first)
            end = int(last) if last else size - 1
        except ValueError:
            return None
        if start >= size or end < start:
            return False
        return start, min(end, size - 1)

    def _head_common(self, ctype: str, etag: str | None, max_age: int | None, vary: bool) -> None:
        self.send_header("Content-Type", ctype)
        self.send_header("Accept-Ranges", "bytes")
        if etag is not None:
            self.send_header("ETag", etag)
        if max_age is not None:
            self.send_header("Cache-Control", f"max-age={max_age}, public")
        if vary:
            self.send_header("Vary", "Accept")

    def _send(
        self,
        body: bytes,
        ctype: str,
        *,
        etag: str | None = None,
        kind: str,
        max_age: int | None = None,
        vary: bool = False,
    ) -> None:
        if self._not_modified(etag):
            return
        span = self._range(len(body))
        if span is False:
            self._unsatisfiable(len(body))
            return
        status = HTTPStatus.OK
        if isinstance(span, tuple):
            status = HTTPStatus.PARTIAL_CONTENT
            body_out = body[span[0] : span[1] + 1]
        else:
            body_out = body
        self.send_response(status)
        self._head_common(ctype, etag, max_age, vary)
        if isinstance(span, tuple):
            self.send_header("Content-Range", f"bytes {span[0]}-{span[1]}/{len(body)}")
        self.send_header("Content-Length", str(len(body_out)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body_out)
        self.server.stats.add(kind, len(body_out))

    def _unsatisfiable(self, size: int) -> None:
        self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
        self.send_header("Content-Range", f"bytes */{size}")
        self.send_header("Content-Length", "0")
        self.end_headers()
        self.server.stats.add("error", 0)

    def _send_file(self, path: Path, ctype: str, etag: str, kind: str) -> None:
        if self._not_modified(etag):
            return
        with path.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            span = self._range(size)
            if span is False:
                self._unsatisfiable(size)
                return
            if isinstance(span, tuple):
                offset, count = span[0], span[1] - span[0] + 1
                self.send_response(HTTPStatus.PARTIAL_CONTENT)
                self._head_common(ctype, etag, 365 * 86400, False)
                self.send_header("Content-Range", f"bytes {span[0]}-{span[1]}/{size}")
            else:
                offset, count = 0, size
                self.send_response(HTTPStatus.OK)
                self._head_common(ctype, etag, 365 * 86400, False)
            self.send_header("Content-Length", str(count))
            self.end_headers()
            if self.command != "HEAD" and count:
                self.wfile.flush()
                self.connection.sendfile(f, offset, count)
        self.server.stats.add(kind, count if self.command != "HEAD" else 0)


class IndexServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, store: Store, port: int = 0, *, verbose: bool = False) -> None:
        super().__init__((HOST, port), Handler)
        self.store = store
        self.verbose = verbose
        self.stats = Stats()
        self.renderer = Renderer(store, self.url)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server_address[1]}"


@contextmanager
def running_index(
    *, record: bool = False, cache: Path = INDEX_CACHE, python: str | None = None
) -> Iterator[str]:
    """Start the index in its own process (so that serving never competes with the
    measuring process for the GIL); yield its base URL; stop it."""
    cmd = [python or sys.executable, "-m", "benchmarks.localindex", "--cache", str(cache)]
    if record:
        cmd.append("--record")
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, text=True, cwd=str(CACHE.parent.parent), bufsize=1
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line.startswith("http://"):
            raise RuntimeError(f"the local index did not start (said {line!r})")
        yield line
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def stats(base_url: str, *, reset: bool = False) -> dict[str, Any]:
    """The server's counters (``reset`` clears them after reading)."""
    import urllib.request

    with urllib.request.urlopen(base_url + "/_stats" + ("?reset=1" if reset else "")) as r:
        result: dict[str, Any] = json.loads(r.read())
        return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.localindex",
        description="Serve the benchmark cache as a package index on 127.0.0.1.",
    )
    parser.add_argument("--port", type=int, default=0, help="port (default: any free one)")
    parser.add_argument("--cache", type=Path, default=INDEX_CACHE, help="cache directory")
    parser.add_argument(
        "--record", action="store_true", help="fetch what is missing from the live index"
    )
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    server = IndexServer(Store(args.cache, record=args.record), args.port, verbose=args.verbose)

    def stop(signum: int, frame: Any) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    if not args.record:
        # Render every page now, so that no measured request pays for it.
        for name in server.store.projects():
            with suppress(Miss):
                for kind in ("json", "simple-json", "simple-html"):
                    server.renderer.get(kind, name)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(server.url, flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
