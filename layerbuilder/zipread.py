"""Read a zip's central directory with ``struct``, as ``zipfile`` (and so pip) reads it.

:func:`read_central_directory` finds the end of central directory record (after
an archive comment, if any), follows a zip64 end locator and record, and parses
every central directory record, taking sizes and offsets that overflowed from
its zip64 extra field; a member's name is decoded as UTF-8 when flagged, else
as cp437.  Local header offsets are shifted by whatever precedes the zip proper.
It reads no ``ZipInfo`` per member and no local header.

It refuses, as :class:`UnsafeWheel`: a file it cannot read, one with no end
record within the largest comment's reach, a split zip, a zip64 locator with
no room for a zip64 end record before it, a central directory larger than
what precedes it or cut short, a record with a wrong signature or that
overruns the directory, a corrupt extra field or a zip64 one missing a field
it should hold, and a name flagged UTF-8 that is not UTF-8.

The record layouts that :mod:`layerbuilder.layerzip` also writes are defined
here, and so is :func:`unsafe_member`, the error for any member refused (by
this module or by layerzip).
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar, overload

from .errors import UnsafeWheel

__all__ = [
    "CENTRAL",
    "CENTRAL_SIG",
    "DRIVE",
    "END",
    "END64",
    "END64_LOCATOR",
    "EXTRA_HEADER",
    "UTF8_FLAG",
    "ZIP64_LIMIT",
    "CentralRecord",
    "read_central_directory",
    "unsafe_member",
]

# record layouts and values the layer writer uses too

CENTRAL = struct.Struct("<4s4B4HL2L5H2L")  # 46 bytes
END = struct.Struct("<4s4H2LH")  # 22 bytes
END64 = struct.Struct("<4sQ2H2L4Q")  # 56 bytes
END64_LOCATOR = struct.Struct("<4sLQL")  # 20 bytes
EXTRA_HEADER = struct.Struct("<HH")
CENTRAL_SIG = b"PK\x01\x02"
UTF8_FLAG = 0x800
DRIVE = re.compile(r"^[A-Za-z]:")  # a member name that starts with a drive: absolute
ZIP64_LIMIT = 0xFFFFFFFF

# what only reading needs

# CENTRAL, skipping what is not read: made-by's version, time, date, disk, internal
# attributes
_CENTRAL_READ = struct.Struct("<4sxBBxHH4x3L3H4x2L")
_U64 = struct.Struct("<Q")
_END_SIG = b"PK\x05\x06"
_END64_SIG = b"PK\x06\x06"
_LOCATOR_SIG = b"PK\x06\x07"
_MAX_COMMENT = 0xFFFF
# the file's last bytes read to find the end record: it, the largest comment (which
# zipfile searches as 64 KiB + 1), and the zip64 end record and locator before it
_TAIL = END.size + _MAX_COMMENT + 1 + END64.size + END64_LOCATOR.size
_ZIP64_EXTRA = 0x0001

# One central directory record, as much of it as is used: the name (decoded as
# zipfile, and so pip, decodes it), its bytes, flags, version needed to extract,
# method, CRC, compressed size, size, external attributes, local header offset, and
# the system that made it (made-by's high byte: 3 is Unix, whose external attributes
# hold a file mode).  A plain tuple: a named one costs more to make than the rest of
# the parsing.
CentralRecord = tuple[str, bytes, int, int, int, int, int, int, int, int, int]


_T = TypeVar("_T")


class _BadZip(Exception):
    """Broken zip structure; :func:`read_central_directory` says so as :class:`UnsafeWheel`."""


@overload
def read_central_directory(wheel: Path) -> list[CentralRecord]: ...


@overload
def read_central_directory(wheel: Path, make: Callable[[CentralRecord], _T]) -> list[_T]: ...


def read_central_directory(
    wheel: Path, make: Callable[[CentralRecord], Any] | None = None
) -> list[Any]:
    """*wheel*'s central directory; :class:`UnsafeWheel` if it is not a readable zip.

    With *make*, the list holds ``make(record)`` for each record instead, and no
    record outlives its call: for a 250 MB layer's 6,170 members, verify's members
    made from the whole list of records had the two at once (3.7 MB)."""
    try:
        with wheel.open("rb") as f:
            tail_start = max(f.seek(0, os.SEEK_END) - _TAIL, 0)
            f.seek(tail_start)
            tail = f.read()
            start, size, concat = _locate_central(tail, tail_start)
            if start >= tail_start:  # a small wheel: already read
                central = tail[start - tail_start : start - tail_start + size]
            else:
                f.seek(start)
                central = f.read(size)
        if len(central) != size:  # the file shrank under us
            raise _BadZip(f"its central directory is cut short at {len(central)} bytes")
        return _parse_central(central, start, concat, wheel.name, make)
    except (_BadZip, OSError) as exc:
        raise UnsafeWheel(
            f"{wheel.name} is not a readable zip ({exc}); delete it and download it again"
        ) from exc


def unsafe_member(wheel: str, name: str | bytes, problem: str) -> UnsafeWheel:
    """The error refusing *wheel* because its member *name* *problem* ("is encrypted")."""
    return UnsafeWheel(
        f"{wheel}: member {name!r} {problem}; refusing to put this wheel in a "
        "layer. Exclude the project (--exclude) or pin another version, and report "
        "it to the project."
    )


def _locate_central(tail: bytes, tail_start: int) -> tuple[int, int, int]:
    """Where the central directory starts and its size, found as zipfile finds it,
    and what to add to its local header offsets (for bytes before the zip proper).

    *tail* is the file's last :data:`_TAIL` bytes, from *tail_start*, or all of it.
    """
    end = len(tail) - END.size
    if end >= 0 and tail.startswith(_END_SIG, end) and tail.endswith(b"\0\0"):
        at = end  # the end record with no archive comment, the common case
    else:  # the last signature within the largest comment's reach, as zipfile looks
        at = tail.rfind(_END_SIG, max(len(tail) - END.size - _MAX_COMMENT - 1, 0))
        if at < 0 or at > end:
            raise _BadZip(
                f"no end of central directory record ({_END_SIG!r}) in its last "
                f"{END.size + _MAX_COMMENT + 1} bytes"
            )
    size: int
    offset: int
    size, offset = END.unpack_from(tail, at)[5:7]
    before = tail_start + at  # the central directory ends where the end records start
    locator = at - END64_LOCATOR.size
    if locator >= 0 and tail.startswith(_LOCATOR_SIG, locator):
        _, disk, _, disks = END64_LOCATOR.unpack_from(tail, locator)
        if disk != 0 or disks > 1:
            raise _BadZip(f"it is one of {disks} disks of a split zip (disk {disk})")
        record = locator - END64.size
        if record < 0:
            raise _BadZip("it has a zip64 end locator but no zip64 end record before it")
        if tail.startswith(_END64_SIG, record):  # else, as zipfile, the plain record
            size, offset = END64.unpack_from(tail, record)[8:]
            before = tail_start + record
    if size > before:
        raise _BadZip(
            f"its end record claims a {size}-byte central directory, but only {before} "
            "bytes precede it"
        )
    return before - size, size, before - size - offset


def _parse_central(
    central: bytes,
    start: int,
    concat: int,
    wheel: str,
    make: Callable[[CentralRecord], Any] | None = None,
) -> list[Any]:
    """The records in *central*, a central directory read from offset *start*, each
    passed through *make* if given; *concat* is added to their local header offsets."""
    records: list[Any] = []
    attrs: dict[int, int] = {}  # each external attribute once: a layer holds two or three
    unpack = _CENTRAL_READ.unpack_from
    pos = 0
    end = len(central)
    while pos < end:
        if end - pos < CENTRAL.size:
            raise _BadZip(f"{_nth(records, start + pos)} is cut short at {end - pos} bytes")
        # n, x, c: the lengths of the name, the extra field and the comment
        sig, system, version, flags, method, crc, csize, size, n, x, c, attr, offset = unpack(
            central, pos
        )
        if sig != CENTRAL_SIG:
            raise _BadZip(f"{_nth(records, start + pos)} starts with {sig!r}, not {CENTRAL_SIG!r}")
        name_end = pos + CENTRAL.size + n
        if name_end + x + c > end:
            raise _BadZip(
                f"{_nth(records, start + pos)} is cut short: its name, extra field and comment "
                f"take {n + x + c} bytes, {end - pos - CENTRAL.size} are left"
            )
        raw = central[pos + CENTRAL.size : name_end]
        if x:
            try:
                size, csize, offset = _zip64_extra(
                    central[name_end : name_end + x], size, csize, offset
                )
            except _BadZip as exc:
                raise _BadZip(f"{_nth(records, start + pos)} ({raw!r}) {exc}") from None
        name = raw.decode("ascii") if raw.isascii() else _decode_name(raw, flags, wheel)
        record = (
            name,
            raw,
            flags,
            version,
            method,
            crc,
            csize,
            size,
            attrs.setdefault(attr, attr),
            offset + concat,
            system,
        )
        records.append(record if make is None else make(record))
        pos = name_end + x + c
    return records


def _nth(records: Sequence[object], offset: int) -> str:
    """The central directory record after *records*, at *offset*, for messages."""
    return f"central directory record {len(records) + 1} (at offset {offset})"


def _zip64_extra(extra: bytes, size: int, csize: int, offset: int) -> tuple[int, int, int]:
    """*size*, *csize* and *offset*, those that overflowed (0xFFFFFFFF) read from the
    zip64 field of *extra*, whose every field is checked as zipfile checks them."""
    pos = 0
    while len(extra) - pos >= 4:
        kind, length = EXTRA_HEADER.unpack_from(extra, pos)
        at, pos = pos + 4, pos + 4 + length
        if pos > len(extra):
            raise _BadZip(
                f"has a corrupt extra field {kind:#06x}: it claims {length} bytes, "
                f"{len(extra) - at} are left"
            )
        if kind == _ZIP64_EXTRA:
            if size in (ZIP64_LIMIT, 0xFFFFFFFFFFFFFFFF):
                size, at = _u64(extra, at, pos, "size")
            if csize == ZIP64_LIMIT:
                csize, at = _u64(extra, at, pos, "compressed size")
            if offset == ZIP64_LIMIT:
                offset, at = _u64(extra, at, pos, "local header offset")
    return size, csize, offset


def _u64(extra: bytes, at: int, end: int, field: str) -> tuple[int, int]:
    """The 8-byte value at *at* in a zip64 extra field ending at *end*, and what follows."""
    if at + 8 > end:
        raise _BadZip(f"has a zip64 extra field without the {field} it should hold")
    value: int = _U64.unpack_from(extra, at)[0]
    return value, at + 8


def _decode_name(raw: bytes, flags: int, wheel: str) -> str:
    """*raw* decoded as zipfile (and so pip) decodes it: UTF-8 when flagged, else cp437."""
    try:
        return raw.decode("utf-8" if flags & UTF8_FLAG else "cp437")
    except UnicodeDecodeError:
        raise unsafe_member(wheel, raw, "has the UTF-8 flag but its name is not UTF-8") from None
