"""A fake package index over the recorded fixtures, for ``responses``.

    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        fake = serve(rsps)
        client = IndexClient(INDEX_URL)

Serves, from ``fixtures/`` (see ``fixtures/README.md``):

* ``https://index.test/pypi/<name>/json``: the recorded JSON API document
  (404 for a project not recorded);
* ``https://index.test/simple/<name>/``: the same files as a PEP 691 JSON page
  when the ``Accept`` header asks for it, else as a PEP 503 HTML page;
* ``https://files.test/<path>``: stored files, honouring ``Range: bytes=``
  with 206 (404 for a file not stored);
* ``https://files.test/<path>.metadata``: PEP 658 metadata of the files whose
  entry has ``core-metadata``.

Pages carry an ``ETag`` and answer 304 to a matching ``If-None-Match``.  The
knobs on :class:`FakeIndex` (``ranges``, ``metadata``, ``etag``) are read at
request time, so a test can flip them between requests.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import responses
from packaging.utils import canonicalize_name
from requests import PreparedRequest

from layerbuilder.models import DistFile, ProjectPage, parse_json_api

__all__ = [
    "FILES_URL",
    "FIXTURES",
    "INDEX_URL",
    "SIMPLE_URL",
    "FakeIndex",
    "serve",
]

INDEX_URL = "https://index.test/pypi"
SIMPLE_URL = "https://index.test/simple"
FILES_URL = "https://files.test"
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"

Reply = tuple[int, dict[str, str], bytes]
_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$")


def _etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


@dataclass
class FakeIndex:
    """The state behind the callbacks; flip the knobs to change behaviour."""

    fixtures_dir: Path = FIXTURES
    ranges: bool = True  # False: answer 200 with the whole file to a Range request
    metadata: bool = True  # False: every .metadata is 404
    etag: bool = True  # False: no ETag, no 304
    _docs: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)

    # -- the recorded data -----------------------------------------------------------
    def project_json(self, name: str) -> dict[str, Any] | None:
        """The recorded JSON API document of *name* (any spelling), or None."""
        canonical = canonicalize_name(name)
        if canonical not in self._docs:
            path = self.fixtures_dir / "index" / f"{canonical}.json"
            if not path.is_file():
                return None
            self._docs[canonical] = json.loads(path.read_text(encoding="utf-8"))
        return self._docs[canonical]

    def page(self, name: str) -> ProjectPage:
        """The recorded project parsed as the client would (for expected values)."""
        doc = self.project_json(name)
        if doc is None:
            raise KeyError(name)
        return parse_json_api(doc)

    def dist_file(self, filename: str) -> DistFile:
        """The :class:`DistFile` of a recorded file, looked up by filename."""
        name = filename.split("-", 1)[0]
        for file in self.page(name).files:
            if file.filename == filename:
                return file
        raise KeyError(filename)

    def entries(self, name: str) -> list[dict[str, Any]]:
        doc = self.project_json(name) or {}
        return [e for entries in (doc.get("releases") or {}).values() for e in entries]

    def file_path(self, url: str) -> Path:
        """Where the stored file for *url* lives (it may not exist)."""
        path = url.split("://", 1)[-1].split("/", 1)[-1].split("?", 1)[0].split("#", 1)[0]
        return self.fixtures_dir / "files" / path

    def metadata_for(self, url: str) -> bytes | None:
        """The PEP 658 metadata for the file at *url*, if recorded."""
        host_path = url.split("://", 1)[-1]
        for file_name in self._docs_for_path(host_path):
            for entry in self.entries(file_name):
                if entry["url"].split("://", 1)[-1] != host_path:
                    continue
                offered = entry.get("core-metadata")
                if isinstance(offered, dict) and offered.get("sha256"):
                    path = self.fixtures_dir / "metadata" / f"{offered['sha256']}.metadata"
                    if path.is_file():
                        return path.read_bytes()
                return None
        return None

    def _docs_for_path(self, host_path: str) -> list[str]:
        filename = host_path.rsplit("/", 1)[-1]
        guess = canonicalize_name(filename.split("-", 1)[0])
        others = sorted(p.stem for p in (self.fixtures_dir / "index").glob("*.json"))
        return [guess, *(o for o in others if o != guess)]

    # -- pages -----------------------------------------------------------------------
    def simple_json(self, name: str) -> dict[str, Any] | None:
        doc = self.project_json(name)
        if doc is None:
            return None
        files = []
        for entry in sorted(self.entries(name), key=lambda e: e["filename"]):
            yanked = entry.get("yanked", False)
            if yanked and entry.get("yanked_reason"):
                yanked = entry["yanked_reason"]
            files.append(
                {
                    "filename": entry["filename"],
                    "url": entry["url"],
                    "hashes": {"sha256": entry["digests"]["sha256"]},
                    "requires-python": entry.get("requires_python"),
                    "size": entry.get("size"),
                    "upload-time": entry.get("upload_time_iso_8601"),
                    "yanked": yanked,
                    "core-metadata": entry.get("core-metadata") or False,
                    "dist-info-metadata": entry.get("core-metadata") or False,
                }
            )
        return {
            "meta": {"api-version": "1.1"},
            "name": canonicalize_name(doc["info"]["name"]),
            "files": files,
            "versions": list(doc.get("releases") or {}),
        }

    def simple_html(self, name: str) -> str | None:
        data = self.simple_json(name)
        if data is None:
            return None
        lines = [
            "<!DOCTYPE html>",
            "<html>",
            f"<head><title>Links for {html.escape(data['name'])}</title></head>",
            "<body>",
            f"<h1>Links for {html.escape(data['name'])}</h1>",
        ]
        for file in data["files"]:
            attrs = [f'href="{html.escape(file["url"])}#sha256={file["hashes"]["sha256"]}"']
            if file["requires-python"]:
                attrs.append(f'data-requires-python="{html.escape(file["requires-python"])}"')
            if file["yanked"]:
                reason = file["yanked"] if isinstance(file["yanked"], str) else ""
                attrs.append(f'data-yanked="{html.escape(reason)}"')
            if file["core-metadata"]:
                value = f"sha256={file['core-metadata']['sha256']}"
                attrs.append(f'data-dist-info-metadata="{value}"')
                attrs.append(f'data-core-metadata="{value}"')
            lines.append(f"<a {' '.join(attrs)}>{html.escape(file['filename'])}</a><br/>")
        lines += ["</body>", "</html>", ""]
        return "\n".join(lines)

    # -- callbacks -------------------------------------------------------------------
    def _page(self, request: PreparedRequest, body: bytes, content_type: str) -> Reply:
        headers = {"Content-Type": content_type}
        if self.etag:
            tag = _etag(body)
            headers["ETag"] = tag
            if request.headers.get("If-None-Match") == tag:
                return 304, headers, b""
        return 200, headers, body

    def json_api(self, request: PreparedRequest) -> Reply:
        parts = str(request.url).split("/pypi/", 1)[1].split("/")
        doc = self.project_json(parts[0])
        if doc is not None and len(parts) == 3:  # /pypi/<name>/<version>/json
            files = (doc.get("releases") or {}).get(parts[1])
            if files is None:
                doc = None
            else:  # what the index answers for one release: its files as "urls"
                doc = {"info": dict(doc["info"], version=parts[1]), "urls": files}
        if doc is None:
            return 404, {"Content-Type": "application/json"}, b'{"message": "Not Found"}'
        return self._page(request, json.dumps(doc).encode(), "application/json")

    def simple(self, request: PreparedRequest) -> Reply:
        name = str(request.url).split("/simple/", 1)[1].split("/", 1)[0]
        accept = request.headers.get("Accept", "")
        if SIMPLE_JSON in accept:
            data = self.simple_json(name)
            if data is None:
                return 404, {"Content-Type": SIMPLE_JSON}, b'{"message": "Not Found"}'
            return self._page(request, json.dumps(data).encode(), SIMPLE_JSON)
        text = self.simple_html(name)
        if text is None:
            return 404, {"Content-Type": "text/html"}, b"<h1>Not Found</h1>"
        return self._page(request, text.encode(), "text/html; charset=utf-8")

    def files(self, request: PreparedRequest) -> Reply:
        url = str(request.url)
        if url.endswith(".metadata"):
            body = self.metadata_for(url[: -len(".metadata")]) if self.metadata else None
            if body is None:
                return 404, {"Content-Type": "text/plain"}, b"Not Found"
            return 200, {"Content-Type": "application/octet-stream"}, body
        path = self.file_path(url)
        if not path.is_file():
            return 404, {"Content-Type": "text/plain"}, b"Not Found"
        data = path.read_bytes()
        headers = {"Content-Type": "application/octet-stream", "Accept-Ranges": "bytes"}
        wanted = request.headers.get("Range")
        if not wanted or not self.ranges:
            return 200, headers, data
        match = _RANGE.match(wanted)
        if match is None:
            return 200, headers, data  # multi-range and oddities: ignore, as servers may
        first, last = match.groups()
        size = len(data)
        if first == "":  # suffix: the last N bytes
            start, stop = max(0, size - int(last or 0)), size - 1
        else:
            start, stop = int(first), min(int(last), size - 1) if last else size - 1
        if start >= size or stop < start:
            headers["Content-Range"] = f"bytes */{size}"
            return 416, headers, b""
        headers["Content-Range"] = f"bytes {start}-{stop}/{size}"
        return 206, headers, data[start : stop + 1]


def serve(
    rsps: responses.RequestsMock,
    fixtures_dir: Path = FIXTURES,
    *,
    ranges: bool = True,
    metadata: bool = True,
    etag: bool = True,
) -> FakeIndex:
    """Register the fake index's callbacks on *rsps*; returns its state."""
    fake = FakeIndex(fixtures_dir=fixtures_dir, ranges=ranges, metadata=metadata, etag=etag)
    for method in ("GET", "HEAD"):
        rsps.add_callback(
            method,
            re.compile(r"https://index\.test/pypi/[^/]+/([^/]+/)?json/?$"),
            fake.json_api,
            content_type=None,
        )
        rsps.add_callback(
            method,
            re.compile(r"https://index\.test/simple/[^/]+/?$"),
            fake.simple,
            content_type=None,
        )
        rsps.add_callback(
            method, re.compile(r"https://files\.test/.+"), fake.files, content_type=None
        )
    return fake
