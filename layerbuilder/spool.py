"""Response bodies that wait on disk rather than in memory.

The resolver's threads fetch index documents at the same time and parse them one
after another under the GIL.  A document that has arrived and waits for its turn
is memory the build holds for nothing: in the build of a 250 MB layer 3.9 to 8.3 MB
of documents (numpy's alone is 3.7 MB) waited at once.  :func:`read_spooled` keeps
a body in memory up to a size and writes a larger one to an unnamed temporary file
as it arrives; :meth:`Spooled.read` brings it back when its parse starts, and the
caller parses spooled bodies one at a time.

A body that cannot be spooled (no room for the file) is kept in memory, as if it
were small: spooling saves memory, it is never a reason to fail.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from typing import Protocol

__all__ = ["CHUNK", "SPOOL_AT", "SpoolFile", "Spooled", "read_spooled", "write_all"]

#: bodies larger than this go to disk
SPOOL_AT = 1024 * 1024
#: bytes asked for per read of a body that may be spooled: at glibc's mmap
#: threshold as :mod:`layerbuilder.memory` pins it, so that each read is a block
#: mapped and unmapped (256 KiB reads came from the heap, and the ``requests``
#: build peaked 0.9 MB higher; 1 MiB reads held more at once)
CHUNK = 512 * 1024


class SpoolFile(Protocol):
    """Where a spooled body is written: an unnamed temporary file by default, or
    an entry of the disk cache (:class:`~layerbuilder.httpcache.EntryFile`)."""

    def write(self, data: bytes | memoryview, /) -> int | None: ...
    def fileno(self) -> int: ...
    def close(self) -> None: ...


def _temporary_file() -> SpoolFile:
    return tempfile.TemporaryFile(buffering=0)


class Spooled:
    """A body held in a file (the first *size* bytes of it); :meth:`close` lets
    it go."""

    __slots__ = ("_file", "size")

    def __init__(self, file: SpoolFile, size: int) -> None:
        self._file = file
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __repr__(self) -> str:
        return f"<Spooled {self.size} bytes>"

    def read(self) -> bytes:
        """The whole body, in one allocation."""
        data = os.pread(self._file.fileno(), self.size, 0)
        if len(data) != self.size:  # a regular file gives all of it; say so if not
            raise OSError(f"the spooled body gave {len(data)} of {self.size} bytes")
        return data

    def pread(self, offset: int, size: int) -> bytes:
        """*size* bytes of the body from *offset* (fewer only past its end)."""
        return os.pread(self._file.fileno(), min(size, max(0, self.size - offset)), offset)

    def pieces(self, size: int = CHUNK) -> Iterator[bytes]:
        """The body from the start, *size* bytes at a time."""
        fd = self._file.fileno()
        for offset in range(0, self.size, size):
            want = min(size, self.size - offset)
            data = os.pread(fd, want, offset)
            if len(data) != want:  # a regular file gives all of it; say so if not
                raise OSError(f"the spooled body gave {offset + len(data)} of {self.size} bytes")
            yield data

    def close(self) -> None:
        self._file.close()


def read_spooled(
    read: Callable[[int], bytes],
    *,
    spool_at: int = SPOOL_AT,
    open_file: Callable[[], SpoolFile] | None = None,
) -> bytes | Spooled:
    """Everything ``read(n)`` gives until it gives ``b""``: the bytes themselves up
    to *spool_at* bytes, past that a :class:`Spooled` in the file *open_file()*
    makes (an unnamed temporary file when None), called only then.

    Errors from *read* propagate, and the file is closed.  When the file cannot
    be made or written, the body is kept in memory.
    """
    pieces: list[bytes] = []
    held = 0
    while held <= spool_at or not hasattr(os, "pread"):
        piece = read(CHUNK)
        if not piece:
            return pieces[0] if len(pieces) == 1 else b"".join(pieces)
        pieces.append(piece)
        held += len(piece)
    try:
        file = (open_file or _temporary_file)()
    except OSError:
        return _rest_in_memory(read, pieces)
    try:
        size = 0
        while True:
            for i, piece in enumerate(pieces):
                if not _write_all(file, piece):  # the disk is full: go on in memory
                    kept = [os.pread(file.fileno(), size, 0), *pieces[i:]]
                    file.close()
                    return _rest_in_memory(read, kept)
                size += len(piece)
            piece = read(CHUNK)
            if not piece:
                break
            pieces = [piece]
    except BaseException:
        file.close()
        raise
    return Spooled(file, size)


def write_all(file: SpoolFile, data: bytes) -> None:
    """Write all of *data* to *file*, however many calls that takes."""
    view = memoryview(data)
    while view:
        view = view[file.write(view) or 0 :]


def _write_all(file: SpoolFile, data: bytes) -> bool:
    """:func:`write_all`; False (with none of it counted) if the file refuses."""
    try:
        write_all(file, data)
    except OSError:
        return False
    return True


def _rest_in_memory(read: Callable[[int], bytes], pieces: list[bytes]) -> bytes:
    while True:
        piece = read(CHUNK)
        if not piece:
            return b"".join(pieces)
        pieces.append(piece)
