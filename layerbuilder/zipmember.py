"""Read a zip member's bytes straight from the file, for the ELF reader.

:func:`open_member` (or :func:`open_at`, given the file's descriptor) reads a
stored or deflated member from its local header on: stored bytes with
``os.pread`` (so seeking costs nothing), deflated ones through a raw
``decompressobj`` fed large chunks, with forward seeks discarding output in
large steps (:meth:`RawMember.skip`).  It checks no CRC-32 (a wheel's sha256 is
checked on download and a layer is written from those bytes), only that the
stream neither inflates past the member's size nor runs out of compressed bytes
before it ends.  ``pread`` leaves the file position alone, so threads read
members of one file at once.  Anything else (no ``pread``, a zip not open on a
file, encryption, another method) is left to ``ZipFile.open``.

Inflating is done by ISA-L (``isal.isal_zlib``) when it is installed, about
twice as fast as zlib; else by ``zlib`` (:func:`_inflater`).  A broken local
header, data cut short or a corrupt stream raise :class:`zipfile.BadZipFile`
naming the member.
"""

from __future__ import annotations

import os
import struct
import zipfile
import zlib
from types import ModuleType
from typing import IO, Any, Protocol

try:
    from isal import isal_zlib

    _ISAL: ModuleType | None = isal_zlib
except ImportError:  # not installed where it has no wheel: zlib inflates
    _ISAL = None

__all__ = ["LocalInfo", "MemberInfo", "RawMember", "open_at", "open_member", "raw_readable"]

_LOCAL = struct.Struct("<4s22xHH")  # signature ... name and extra lengths: 30 bytes
_CHUNK = 128 * 1024  # compressed bytes read and fed to the inflater at once
_OUT = 128 * 1024  # the most one inflate step gives (and a skip discards at once)
_UNSUPPORTED = 0x1 | 0x20 | 0x40  # flags: encrypted, compressed patched data, strong encryption


def _inflater() -> ModuleType:
    """The zlib-like module that inflates."""
    return _ISAL if _ISAL is not None else zlib


class MemberInfo(Protocol):
    """What :class:`RawMember` reads of a member's entry: a ``ZipInfo`` has it."""

    @property
    def filename(self) -> str: ...
    @property
    def compress_size(self) -> int: ...
    @property
    def file_size(self) -> int: ...
    @property
    def compress_type(self) -> int: ...


class LocalInfo(MemberInfo, Protocol):
    """What :func:`open_at` reads of a member's entry to find its local header."""

    @property
    def orig_filename(self) -> str: ...
    @property
    def flag_bits(self) -> int: ...
    @property
    def header_offset(self) -> int: ...


class RawMember:
    """The bytes of one stored or deflated member, from *start* in file *fd*."""

    def __init__(self, fd: int, info: MemberInfo, start: int) -> None:
        self._fd, self._name, self._start = fd, info.filename, start
        self._csize, self.size = info.compress_size, info.file_size
        self._deflated = info.compress_type == zipfile.ZIP_DEFLATED
        if not self._deflated:  # as ZipExtFile: no more than either size says
            self.size = min(self.size, self._csize)
        self._rewind()

    def _rewind(self) -> None:
        self._pos = 0  # bytes of output read or skipped
        self._fed = 0  # compressed bytes read from the file
        self._made = 0  # bytes inflated
        self._tail = b""  # compressed bytes read, not yet inflated
        self._buf, self._used = b"", 0  # inflated bytes, how many of them were taken
        zlib_like = _inflater()
        self._error = zlib_like.error
        self._z = zlib_like.decompressobj(-15) if self._deflated else None

    def _bad(self, why: str) -> zipfile.BadZipFile:
        return zipfile.BadZipFile(f"member {self._name!r}: {why}")

    def _pread(self, n: int, offset: int) -> bytes:
        data = os.pread(self._fd, n, self._start + offset)
        if len(data) < n:
            raise self._bad(f"its data ends {offset + len(data)} bytes in, the file ends there")
        return data

    def _inflate(self) -> bool:
        """Fill the buffer with the next inflated bytes; False where the stream ends."""
        assert self._z is not None
        if not self._tail:
            if self._z.eof:
                return False  # short of the size: ZipExtFile also stops here
            n = min(_CHUNK, self._csize - self._fed)
            if n <= 0:
                raise self._bad(f"its {self._csize} compressed bytes end before its data does")
            self._tail = self._pread(n, self._fed)
            self._fed += n
        try:
            self._buf = self._z.decompress(self._tail, _OUT)
        except self._error as exc:
            raise self._bad(f"corrupt compressed data ({exc})") from exc
        self._tail, self._used = self._z.unconsumed_tail, 0
        self._made += len(self._buf)
        if self._made > self.size:
            raise self._bad(f"inflates to more than its {self.size} bytes")
        return True

    def _take(self, n: int, keep: bool) -> list[bytes]:
        """The next *n* bytes (at most up to the end), as pieces if *keep*."""
        n = max(0, min(n, self.size - self._pos))
        pieces: list[bytes] = []
        if self._z is None:
            if keep:
                pieces.append(self._pread(n, self._pos))
            self._pos += n
            return pieces
        while n > 0:
            if self._used == len(self._buf) and not self._inflate():
                break
            k = min(n, len(self._buf) - self._used)
            if keep:
                pieces.append(self._buf[self._used : self._used + k])
            self._used += k
            self._pos += k
            n -= k
        return pieces

    def read(self, n: int = -1) -> bytes:
        return b"".join(self._take(self.size if n < 0 else n, keep=True))

    def skip(self, n: int) -> int:
        """Move *n* bytes ahead (stopping at the end); how many it moved."""
        before = self._pos
        self._take(n, keep=False)
        return self._pos - before

    def seek(self, offset: int, whence: int = 0) -> int:
        target = offset + (self._pos if whence == 1 else 0)
        if target < self._pos:
            self._rewind()
        self.skip(target - self._pos)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def __enter__(self) -> RawMember:
        return self

    def __exit__(self, *exc: object) -> None:
        self._z = None


def open_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> RawMember | IO[bytes]:
    """*info*'s bytes: a :class:`RawMember` where it can be one, else ``zf.open(info)``."""
    fp: Any = zf.fp
    if not hasattr(os, "pread") or zf.mode != "r" or fp is None or not raw_readable(info):
        return zf.open(info)
    try:
        fd = fp.fileno()
    except (AttributeError, OSError, ValueError):  # e.g. a zip in memory
        return zf.open(info)
    # names are decoded as zipfile decodes them, to compare them as zipfile does
    encoding = getattr(zf, "metadata_encoding", None) or "cp437"  # the attribute: 3.11+
    return open_at(fd, info, encoding)


def raw_readable(info: LocalInfo) -> bool:
    """Whether :func:`open_at` reads *info*: stored or deflated, not encrypted."""
    return info.compress_type in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) and not (
        info.flag_bits & _UNSUPPORTED
    )


def open_at(fd: int, info: LocalInfo, encoding: str = "cp437") -> RawMember:
    """The member *info* of the zip open as *fd*, from its local header on, which must
    name it as its central directory record does (names without the UTF-8 flag are
    decoded as *encoding*).  Needs ``os.pread`` and :func:`raw_readable` members."""
    header = os.pread(fd, _LOCAL.size, info.header_offset)
    if len(header) < _LOCAL.size or header[:4] != b"PK\x03\x04":
        raise zipfile.BadZipFile(
            f"member {info.filename!r} has no valid local header at offset {info.header_offset}"
        )
    name_len, extra_len = _LOCAL.unpack(header)[1:]
    raw_name = os.pread(fd, name_len, info.header_offset + _LOCAL.size)
    name = raw_name.decode("utf-8" if info.flag_bits & 0x800 else encoding, "replace")
    if name != info.orig_filename:
        raise zipfile.BadZipFile(f"member {info.filename!r} is named {name!r} in its local header")
    return RawMember(fd, info, info.header_offset + _LOCAL.size + name_len + extra_len)
