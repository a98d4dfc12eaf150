"""The index client's disk cache: response bodies with their validators.

One file per URL: the body, a newline, then one line of JSON (the key, the URL,
the ETag and Last-Modified, the content type, and the body's size and sha256).
The body comes first so that a large one can be written as it arrives
(:meth:`DiskCache.open_entry`): the entry is then the file the body was spooled
to, and the parse reads it back from there.  Writes are atomic (a temporary file
renamed into place); an entry that is unreadable or does not match its sha256
counts as absent.  The cache is an optimisation, never a failure: errors writing
it are logged and skipped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .spool import CHUNK, Spooled, write_all

__all__ = ["DiskCache", "EntryFile"]

log = logging.getLogger(__name__)

_TAIL = 8192  # bytes read from an entry's end to find its JSON line (more if needed)


class EntryFile:
    """A cache entry being written as its body arrives (a spool file for
    :func:`~layerbuilder.spool.read_spooled`): the body is hashed as it is
    written, :meth:`commit` adds the JSON line and renames the file into place,
    and :meth:`close` before that removes it."""

    def __init__(self, path: Path, meta: dict[str, Any]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        self._file = os.fdopen(fd, "r+b", buffering=0)
        self._tmp = Path(tmp)
        self._path = path
        self._meta = meta
        self._hash = hashlib.sha256()
        self._size = 0
        self._done = False

    def write(self, data: bytes | memoryview) -> int:
        n = self._file.write(data) or 0
        self._hash.update(data[:n])
        self._size += n
        return n

    def fileno(self) -> int:
        return self._file.fileno()

    def commit(self) -> None:
        """Finish the entry; the body stays readable through this file."""
        meta = dict(self._meta, size=self._size, sha256=self._hash.hexdigest())
        line = b"\n" + json.dumps(meta, sort_keys=True).encode()
        try:
            self._file.seek(self._size)
            write_all(self._file, line)
            os.replace(self._tmp, self._path)
            self._done = True
        except OSError as exc:
            log.debug("could not write cache entry %s: %s", self._path, exc)

    def close(self) -> None:
        self._file.close()
        if not self._done:
            self._tmp.unlink(missing_ok=True)


class DiskCache:
    """Response bodies with their validators under *root*, one file per key."""

    #: bytes of bodies that may wait for the writer thread
    PENDING = 4 * 1024 * 1024

    def __init__(self, root: Path) -> None:
        self.root = root / "http-v2"
        self._lock = threading.Lock()
        self._writer: ThreadPoolExecutor | None = None
        self._pending = 0

    def _path(self, key: str) -> Path:
        digest = hashlib.sha256(key.encode()).hexdigest()
        return self.root / digest[:2] / digest

    def load(self, key: str, spool_at: int) -> tuple[dict[str, Any], bytes | Spooled] | None:
        """The entry for *key*: its JSON and its body, as bytes or (past *spool_at*
        bytes) as a :class:`Spooled` read from the entry when it is parsed."""
        try:
            file = self._path(key).open("rb", buffering=0)
        except OSError:
            return None
        keep = False
        try:
            found = _read_entry(file, key, spool_at)
            if found is None:
                return None
            meta, body = found
            keep = isinstance(body, Spooled)
            return meta, body
        except (OSError, ValueError):
            return None
        finally:
            if not keep:
                file.close()

    def open_entry(self, key: str, meta: dict[str, Any]) -> EntryFile:
        """A file to write *key*'s body to as it arrives (``OSError`` if the cache
        cannot take one now)."""
        return EntryFile(self._path(key), dict(meta, key=key))

    def store(self, key: str, meta: dict[str, Any], body: bytes) -> None:
        """Write an entry on the cache's own thread, off the caller's path: a
        resolver thread that waited on half a dozen file-system calls (each giving up
        the GIL and waiting to get it back) delayed the page it was fetching.
        :meth:`close` waits for the writes.

        Bodies waiting to be written are held in memory, so at most
        :attr:`PENDING` bytes wait; past that the caller writes its own entry.
        """
        meta = dict(meta, key=key)
        with self._lock:
            inline = self._pending + len(body) > self.PENDING
            if not inline:
                self._pending += len(body)
                if self._writer is None:
                    self._writer = ThreadPoolExecutor(1, thread_name_prefix="layerbuilder-cache")
                self._writer.submit(self._write_queued, key, meta, body)
        if inline:
            self._write(key, meta, body)

    def _write_queued(self, key: str, meta: dict[str, Any], body: bytes) -> None:
        try:
            self._write(key, meta, body)
        finally:
            with self._lock:
                self._pending -= len(body)

    def close(self) -> None:
        """Wait for pending writes."""
        with self._lock:
            writer, self._writer = self._writer, None
        if writer is not None:
            writer.shutdown(wait=True)

    def _write(self, key: str, meta: dict[str, Any], body: bytes) -> None:
        try:
            entry = EntryFile(self._path(key), meta)
        except OSError as exc:
            log.debug("could not write cache entry for %s: %s", key, exc)
            return
        try:
            write_all(entry, body)  # not concatenated with the JSON line: no second copy
            entry.commit()
        except OSError as exc:
            log.debug("could not write cache entry for %s: %s", key, exc)
        finally:
            entry.close()


def _read_entry(
    file: Any, key: str, spool_at: int
) -> tuple[dict[str, Any], bytes | Spooled] | None:
    """The JSON and body of the entry open as *file*, checked against its size
    and sha256 and against *key*; None when they do not match."""
    total = os.fstat(file.fileno()).st_size
    want = _TAIL
    while True:
        start = max(0, total - want)
        tail = _read_at(file, start, total - start)
        cut = tail.rfind(b"\n")
        if cut >= 0 or start == 0:
            break
        want *= 8
    if cut < 0:
        return None
    meta = json.loads(tail[cut + 1 :])
    size = start + cut
    if not isinstance(meta, dict) or meta.get("key") != key or meta.get("size") != size:
        return None
    if size > spool_at and hasattr(os, "pread"):  # checked in pieces, read when parsed
        digest = hashlib.sha256()
        for offset in range(0, size, CHUNK):
            digest.update(_read_at(file, offset, min(CHUNK, size - offset)))
        body: bytes | Spooled = Spooled(file, size)
    else:
        body = _read_at(file, 0, size)
        digest = hashlib.sha256(body)
    if meta.get("sha256") != digest.hexdigest():
        return None
    return meta, body


def _read_at(file: Any, offset: int, size: int) -> bytes:
    file.seek(offset)
    data: bytes = file.read(size)
    if len(data) != size:
        raise OSError(f"the cache entry gave {len(data)} of {size} bytes at {offset}")
    return data
