"""Read a wheel's ``*.dist-info/METADATA`` without downloading the whole wheel.

Used when the index does not offer PEP 658 ``.metadata`` files.  The wheel is
opened by :mod:`zipfile` through a file object that fetches only the byte
ranges zipfile asks for (the end-of-central-directory record, the central
directory, then the one member), kept in a sparse temporary file.  A server
that ignores ``Range`` and answers 200 gets the whole body streamed to a
temporary file, checked against the index's sha256 and size; a server that
refuses ranges outright (416 or another 4xx) gets a plain full download.

The caller supplies *fetch*: ``fetch(headers) -> requests.Response``, a
streaming GET of the wheel's URL with the given extra headers (the index
client's retries and timeouts live there).
"""

from __future__ import annotations

import hashlib
import io
import re
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, cast

import requests
from packaging.utils import (
    InvalidWheelFilename,
    canonicalize_name,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from .errors import IndexUnavailable, IntegrityError

__all__ = ["Fetch", "find_metadata_member", "read_wheel_metadata"]

Fetch = Callable[[Mapping[str, str]], requests.Response]

TAIL = 64 * 1024 + 22  # zipfile looks this far back for the end-of-central-directory
CHUNK = 64 * 1024  # smallest range fetched after the tail
_STREAM_CHUNK = 256 * 1024
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", re.IGNORECASE)


class _RangeUnsupported(Exception):
    """The server stopped honouring ranges part-way; fall back to a full download."""


def find_metadata_member(names: list[str], filename: str) -> str:
    """The ``<name>-<version>.dist-info/METADATA`` member of wheel *filename*."""
    found = [n for n in names if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
    if len(found) == 1:
        return found[0]
    try:
        project, version, _build, _tags = parse_wheel_filename(filename)
    except (InvalidWheelFilename, InvalidVersion):
        project, version = None, None
    for member in found:
        dist = member.split("/", 1)[0][: -len(".dist-info")]
        dist_name, _, dist_version = dist.rpartition("-")
        try:
            same_version = Version(dist_version) == version
        except InvalidVersion:
            same_version = False
        if canonicalize_name(dist_name) == project and same_version:
            return member
    raise IntegrityError(
        f"{filename!r} is not a valid wheel: it has "
        f"{'no' if not found else 'more than one'} '*.dist-info/METADATA' member "
        f"({', '.join(found) or 'none'}). Report it to the project, or pin another version."
    )


def _parse_content_range(value: str | None) -> tuple[int, int, int | None] | None:
    match = _CONTENT_RANGE.match(value or "")
    if match is None:
        return None
    total = None if match.group(3) == "*" else int(match.group(3))
    return int(match.group(1)), int(match.group(2)), total


class _LazyFile(io.RawIOBase):
    """A read-only, seekable view of a remote file; fetched ranges land in a
    sparse temporary file."""

    def __init__(
        self, fetch: Fetch, url: str, length: int, spool: IO[bytes], chunk: int = CHUNK
    ) -> None:
        super().__init__()
        self._fetch = fetch
        self._url = url
        self._length = length
        self._spool = spool
        self._chunk = chunk
        self._pos = 0
        self._have: list[tuple[int, int]] = []  # merged [start, end) intervals

    # -- io protocol --------------------------------------------------------------
    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._length}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        end = min(self._pos + len(buffer), self._length)
        if end <= self._pos:
            return 0
        self._ensure(self._pos, end)
        self._spool.seek(self._pos)
        data = self._spool.read(end - self._pos)
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)

    # -- ranges -------------------------------------------------------------------
    def store(self, start: int, data: bytes) -> None:
        self._spool.seek(start)
        self._spool.write(data)
        self._add(start, start + len(data))

    def _add(self, start: int, end: int) -> None:
        merged: list[tuple[int, int]] = []
        for a, b in sorted([*self._have, (start, end)]):
            if merged and a <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], b))
            else:
                merged.append((a, b))
        self._have = merged

    def _missing(self, start: int, end: int) -> list[tuple[int, int]]:
        gaps: list[tuple[int, int]] = []
        cursor = start
        for a, b in self._have:
            if b <= cursor:
                continue
            if a >= end:
                break
            if a > cursor:
                gaps.append((cursor, a))
            cursor = max(cursor, b)
        if cursor < end:
            gaps.append((cursor, end))
        return gaps

    def _ensure(self, start: int, end: int) -> None:
        for gap_start, gap_end in self._missing(start, end):
            stop = min(max(gap_end, gap_start + self._chunk), self._length)
            response = self._fetch({"Range": f"bytes={gap_start}-{stop - 1}"})
            try:
                got = _parse_content_range(response.headers.get("Content-Range"))
                if response.status_code != 206 or got is None or got[0] != gap_start:
                    raise _RangeUnsupported
                data = response.content
            finally:
                response.close()
            self.store(gap_start, data)
            if len(data) < gap_end - gap_start:
                raise _RangeUnsupported


def _metadata_from_zip(source: IO[bytes], filename: str) -> bytes:
    try:
        with zipfile.ZipFile(source) as archive:
            member = find_metadata_member(archive.namelist(), filename)
            return archive.read(member)
    except (zipfile.BadZipFile, EOFError) as exc:
        raise IntegrityError(
            f"{filename!r} is not a readable zip file ({exc}). Retry later, or pin another version."
        ) from exc


def _stream_to(
    response: requests.Response,
    spool: IO[bytes],
    url: str,
    filename: str,
    size: int | None,
    sha256: str | None,
) -> None:
    digest = hashlib.sha256()
    total = 0
    try:
        for block in response.iter_content(_STREAM_CHUNK):
            spool.write(block)
            digest.update(block)
            total += len(block)
    except requests.RequestException as exc:
        raise IndexUnavailable(
            f"the download of {url} broke off after {total} bytes ({exc}). "
            "Check the network connection and retry."
        ) from exc
    finally:
        response.close()
    if size is not None and total != size:
        raise IntegrityError(
            f"{filename!r} from {url} is {total} bytes, but the index says {size}. "
            "Retry; if it persists the index or a proxy is serving a bad file."
        )
    if sha256 is not None and digest.hexdigest() != sha256.lower():
        raise IntegrityError(
            f"{filename!r} from {url} has sha256 {digest.hexdigest()}, but the index says "
            f"{sha256.lower()}. Retry; if it persists the index or a proxy is serving a "
            "bad file."
        )
    spool.seek(0)


def _unexpected(response: requests.Response, url: str) -> IndexUnavailable:
    response.close()
    return IndexUnavailable(
        f"GET {url} answered HTTP {response.status_code} {response.reason or ''}".rstrip()
        + ". Check the network connection and the index URL "
        "(--index-url or LAYERBUILDER_INDEX_URL)."
    )


def read_wheel_metadata(
    fetch: Fetch,
    url: str,
    filename: str,
    *,
    size: int | None = None,
    sha256: str | None = None,
    spool_dir: Path | None = None,
    tail: int = TAIL,
) -> bytes:
    """The METADATA bytes of the wheel at *url*, read with as few bytes as the
    server allows.  The sha256 and size are checked whenever the whole wheel
    passes through (they cannot be for a ranged read)."""
    if size is not None and size > 0:
        first = f"bytes={max(0, size - tail)}-{size - 1}"
    else:
        first = f"bytes=-{tail}"
    with tempfile.TemporaryFile(dir=spool_dir) as spool:
        response = fetch({"Range": first})
        if response.status_code == 206:
            got = _parse_content_range(response.headers.get("Content-Range"))
            length = got[2] if got is not None and got[2] is not None else size
            if got is not None and length is not None:
                data = response.content
                response.close()
                lazy = _LazyFile(fetch, url, length, spool)
                lazy.store(got[0], data)
                try:
                    return _metadata_from_zip(cast("IO[bytes]", lazy), filename)
                except _RangeUnsupported:
                    spool.seek(0)
                    spool.truncate()
            else:
                response.close()
            response = fetch({})
        elif response.status_code != 200 and 400 <= response.status_code < 500:
            # 416 and friends: this server will not do ranges; ask for everything.
            response.close()
            response = fetch({})
        if response.status_code != 200:
            raise _unexpected(response, url)
        _stream_to(response, spool, url, filename, size, sha256)
        return _metadata_from_zip(spool, filename)
