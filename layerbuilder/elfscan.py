"""Read what ``verify`` needs from the ELF members of a zip, also ahead of time.

:func:`read_member` reads one zip member the way ``verify`` does: the first
four bytes to see whether it is ELF at all, then :func:`~layerbuilder.elf.read_elf`
through :class:`SmallSteps`, so no member is ever held whole in memory.

Inflating those members is most of what ``verify`` costs, and a layer's
members are its wheels' members copied raw (same compressed bytes, CRC and
sizes).  So ``build`` reads each wheel's members as soon as it is downloaded
(:class:`WheelScans`: what :func:`scan_wheel` does, in the background while the
other wheels download and the zip is written), and ``verify`` takes a member's
result from the scans only when its :class:`MemberKey` -- layer path, CRC-32,
compressed and uncompressed size and method -- is that of exactly one scanned
wheel member.  Everything else is read from the zip as usual.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import stat
import threading
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, NamedTuple, Optional, Union

from .elf import ElfError, ElfInfo, VersionNeed, is_elf, read_elf
from .layerzip import PreparedWheel, _data_dirs, _Entry
from .linker import base_image
from .targets import Target
from .zipmember import RawMember, open_member

if TYPE_CHECKING:
    from .verify_source import LayerSource, ZipMember

__all__ = [
    "READERS",
    "MemberKey",
    "Scanned",
    "SmallSteps",
    "WheelScan",
    "WheelScans",
    "glibc_version",
    "may_be_elf",
    "merge_scans",
    "read_member",
    "scan_wheel",
    "symbol_filter",
    "version_tuple",
]

log = logging.getLogger(__name__)

#: ELF members (or wheels) read at once; zlib lets go of the GIL while it inflates.
READERS = min(4, os.cpu_count() or 1)

# Members whose names say they are not ELF files; everything else is sniffed.
NOT_ELF: tuple[str, ...] = (
    ".py",
    ".pyc",
    ".pyi",
    ".pyx",
    ".pxd",
    ".h",
    ".hpp",
    ".c",
    ".cpp",
    ".txt",
    ".md",
)
NOT_ELF += (".rst", ".json", ".toml", ".cfg", ".ini", ".yaml", ".yml", ".html", ".js", ".css")
NOT_ELF += (".csv", ".typed", "/RECORD", "/METADATA", "/WHEEL", "/INSTALLER", ".pem")
VERSION = re.compile(r"^(?P<family>[A-Z]+)_(?P<ver>\d+(?:\.\d+)*)$")

#: What reading one member gave: its ELF facts, why it is a broken ELF file,
#: or None when it is not an ELF file at all.
Scanned = Union[ElfInfo, ElfError, None]

# what makes a member unreadable (reported by verify as a "zip" finding)
_READ_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    OSError,
    EOFError,
    NotImplementedError,
    RuntimeError,
)


class MemberKey(NamedTuple):
    """What identifies a member's bytes: a layer member whose key equals a
    scanned wheel member's was copied raw from it."""

    name: str  # the path in the layer zip
    crc: int
    compress_size: int
    file_size: int
    compress_type: int

    @classmethod
    def of(cls, info: ZipMember) -> MemberKey:
        return cls(info.filename, info.CRC, info.compress_size, info.file_size, info.compress_type)


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))


def glibc_version(name: str) -> tuple[int, ...] | None:
    """``(2, 28)`` for ``GLIBC_2.28``; None for other version names."""
    m = VERSION.match(name)
    return version_tuple(m["ver"]) if m and m["family"] == "GLIBC" else None


def is_symlink(info: ZipMember) -> bool:
    return info.create_system == 3 and stat.S_ISLNK(info.external_attr >> 16)


def may_be_elf(info: ZipMember) -> bool:
    """Whether *info* is worth opening to look for the ELF magic."""
    return not (info.file_size < 4 or info.filename.endswith(NOT_ELF) or is_symlink(info))


def symbol_filter(target: Target) -> Callable[[VersionNeed], bool]:
    """The version needs whose symbol names ``verify`` quotes for *target*: glibc
    versions newer than its glibc, and others above the base image's ceilings."""
    glibc = target.glibc
    ceilings = base_image(target.os_name).ceilings

    def want(need: VersionNeed) -> bool:
        v = glibc_version(need.name)
        if v is not None:
            return v > glibc
        m = VERSION.match(need.name)
        ceiling = ceilings.get(m["family"]) if m else None
        return ceiling is not None and m is not None and version_tuple(m["ver"]) > ceiling

    return want


class SmallSteps:
    """A zip member whose seeks inflate in small steps, keeping its first bytes.

    ``ZipExtFile.seek`` skips ahead by reading up to 16 MiB at a time, and a
    backward seek starts again from the top the same way: reading ELF headers
    scattered through a large shared library would hold tens of MB at once.
    And the ELF reader does seek back: ``PT_DYNAMIC`` sits near the end of a
    library, the strings and symbols it points to near the start.  So the first
    :attr:`HEAD` bytes are kept as they stream past, and reads there are served
    from them instead of inflating the member again from the top.  Past the
    head, a :class:`~layerbuilder.zipmember.RawMember` skips ahead itself.
    """

    _STEP = 64 * 1024
    HEAD = 512 * 1024

    def __init__(self, member: Any, head: bytearray | None = None) -> None:
        self._member = member
        self._pos = 0  # where the next read starts
        self._at = 0  # where the member's stream is
        # where the member's first bytes are kept (a buffer a caller may reuse from one
        # member to the next, so that each member does not grow one of its own)
        self._head = bytearray(self.HEAD) if head is None else head
        self._room = len(self._head)
        self._kept = 0  # how many of them it holds

    def _pull(self, n: int) -> bytes:
        data: bytes = self._member.read(n)
        if self._at == self._kept < self._room:
            take = min(len(data), self._room - self._kept)
            self._head[self._kept : self._kept + take] = data if take == len(data) else data[:take]
            self._kept += take
        self._at += len(data)
        return data

    def read(self, n: int = -1) -> bytes:
        kept = b""
        if self._pos < self._kept:
            end = self._kept if n < 0 else min(self._kept, self._pos + n)
            kept = bytes(self._head[self._pos : end])
            self._pos = end
            if n >= 0:
                n -= len(kept)
                if n == 0:
                    return kept
        if self._at != self._pos:
            if self._pos < self._at:
                self._member.seek(0)
                self._at = 0
            while self._at < self._pos:
                filling = self._at == self._kept < self._room
                if isinstance(self._member, RawMember) and not filling:
                    self._at += self._member.skip(self._pos - self._at)  # in large steps
                    if self._at < self._pos:
                        return kept  # the member ends before
                elif not self._pull(min(self._STEP, self._pos - self._at)):
                    return kept  # the member ends before
        data = self._pull(n)
        self._pos = self._at
        return kept + data

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == 1:
            offset += self._pos
        elif whence != 0:
            raise ValueError("only absolute and relative seeks")
        self._pos = max(0, offset)
        return self._pos

    def tell(self) -> int:
        return self._pos


def read_member(
    zf: zipfile.ZipFile | LayerSource, info: ZipMember, want: Callable[[VersionNeed], bool]
) -> tuple[ElfInfo | None, BaseException | None]:
    """``(facts, None)`` for an ELF member of *zf* (a ``ZipFile`` or a
    :class:`~layerbuilder.verify_source.LayerSource`), ``(None, None)`` for any
    other file, ``(None, error)`` when it cannot be read (an :class:`ElfError` if it
    starts like ELF but is malformed)."""
    if isinstance(zf, zipfile.ZipFile):
        assert isinstance(info, zipfile.ZipInfo)
        return _read(lambda: open_member(zf, info), info.file_size, want, _head(info.file_size))
    source = zf
    return _read(lambda: source.open(info), info.file_size, want, _head(info.file_size))


def _head(size: int) -> bytearray:
    """A buffer for the head of members at most *size* bytes long."""
    return bytearray(min(size, SmallSteps.HEAD))


def _read(
    open_: Callable[[], RawMember | IO[bytes]],
    size: int,
    want: Callable[[VersionNeed], bool],
    head: bytearray,
) -> tuple[ElfInfo | None, BaseException | None]:
    """:func:`read_member` of the member *open_* opens, *size* bytes long, keeping
    its first bytes in *head*."""
    try:
        with open_() as raw:
            member = SmallSteps(raw, head)
            if not is_elf(member.read(4)):
                return None, None
            return read_elf(member, size, want_symbols=want), None  # type: ignore[arg-type]
    except (ElfError, *_READ_ERRORS) as exc:
        return None, exc


class WheelScan(NamedTuple):
    """What :func:`scan_wheel` read from one wheel, by layer member key."""

    read: dict[MemberKey, Scanned]
    #: members it did not read (unreadable, stopped before them, or a key the
    #: wheel holds twice): verify must read these from the zip
    unread: frozenset[MemberKey]


def scan_wheel(
    wheel: str | Path, target: Target, *, stop: threading.Event | None = None
) -> WheelScan:
    """Read the members of *wheel* that ``verify`` would read in a layer for
    *target*, keyed as they will be in the layer zip.  Once *stop* is set, the
    members not yet read are left unread.
    """
    with zipfile.ZipFile(wheel) as zf:
        todo, twice = _candidates(Path(wheel).name, zf, target)
        scan = _read_members(_opener(zf), todo, symbol_filter(target), stop)
    return WheelScan(scan.read, scan.unread | twice)


# a member as zipfile lists it, or as prepare_wheel read it (its data start known)
_Info = Union[zipfile.ZipInfo, _Entry]
_Todo = list[tuple[MemberKey, _Info]]
# how to open a member for reading; None when it was seen cheaply not to be ELF
_Opener = Callable[[_Info], Optional[Callable[[], Union[RawMember, IO[bytes]]]]]
_PEEK_MAX = 16 * 1024  # compressed bytes up to which a member is sniffed in one read


def _opener(zf: zipfile.ZipFile) -> _Opener:
    def open_(info: _Info) -> Callable[[], RawMember | IO[bytes]]:
        assert isinstance(info, zipfile.ZipInfo)
        return lambda: open_member(zf, info)

    return open_


def _fd_opener(fd: int) -> _Opener:
    def open_(info: _Info) -> Callable[[], RawMember | IO[bytes]] | None:
        assert isinstance(info, _Entry)
        if info.compress_size <= _PEEK_MAX and not _maybe_elf(fd, info):
            return None
        return lambda: RawMember(fd, info, info.data_start)

    return open_


def _maybe_elf(fd: int, info: _Entry) -> bool:
    """Whether a small member may be ELF, from its first four bytes read in one go
    (most members sniffed are small data files: tzdata's zones, Fortran sources);
    True whenever that cannot be told cheaply, so the member is read as usual and
    any fault in it is reported the usual way."""
    data = os.pread(fd, info.compress_size, info.data_start)
    if len(data) < info.compress_size:
        return True
    if info.compress_type == zipfile.ZIP_DEFLATED:
        try:
            data = zlib.decompressobj(-15).decompress(data, 4)
        except zlib.error:
            return True
    return len(data) < 4 or is_elf(data[:4])


def _prepared_candidates(ready: PreparedWheel) -> tuple[_Todo, frozenset[MemberKey]]:
    """:func:`_candidates` of a wheel already read by ``prepare_wheel``, whose
    entries are the layer's: directories, symlinks and other ``.data`` schemes are
    not among them, and the names are the layer paths."""
    todo: _Todo = []
    for i, member in enumerate(ready.members):
        if member.endswith(NOT_ELF):
            continue
        e = ready.entry(i)
        if e.file_size >= 4 and e.compress_type in (0, 8):
            todo.append(
                (MemberKey(e.name, e.crc, e.compress_size, e.file_size, e.compress_type), e)
            )
    return _once(todo)


def _once(todo: _Todo) -> tuple[_Todo, frozenset[MemberKey]]:
    """*todo* without the keys it holds more than once, and those keys (a layer
    member with such a key could be a copy of either, so neither is trusted)."""
    counts = Counter(key for key, _ in todo)
    twice = frozenset(key for key, n in counts.items() if n > 1)
    return [(k, i) for k, i in todo if k not in twice], twice


def _candidates(
    filename: str, zf: zipfile.ZipFile, target: Target
) -> tuple[_Todo, frozenset[MemberKey]]:
    """The members of the wheel *filename* (open as *zf*) that verify would
    read, by their layer keys, and the keys it holds more than once (left out).

    The layer paths are :func:`~layerbuilder.layerzip.write_layer`'s: under
    site-packages, ``.data/purelib`` and ``.data/platlib`` merged in, other
    ``.data`` schemes and directories left out.
    """
    infos = zf.infolist()
    data_dirs = _data_dirs(filename, [i.orig_filename for i in infos])
    root = target.site_packages.rstrip("/")
    todo: _Todo = []
    for info in infos:
        name = info.orig_filename
        if info.file_size < 4 or name.endswith((*NOT_ELF, "/")) or is_symlink(info):
            continue  # not in the layer, or verify never reads it (see may_be_elf)
        head, sep, rest = name.partition("/")
        if sep and head in data_dirs:
            scheme, sep, name = rest.partition("/")
            if scheme not in ("purelib", "platlib") or not sep:
                continue
        key = MemberKey(
            f"{root}/{name}", info.CRC, info.compress_size, info.file_size, info.compress_type
        )
        todo.append((key, info))
    return _once(todo)


def _read_members(
    open_: _Opener,
    todo: _Todo,
    want: Callable[[VersionNeed], bool],
    stop: threading.Event | None,
) -> WheelScan:
    read: dict[MemberKey, Scanned] = {}
    unread: set[MemberKey] = set()
    # one head for all these members, in turn, as large as the largest needs
    head = _head(max((info.file_size for _, info in todo), default=0))
    for key, info in todo:
        if stop is not None and stop.is_set():
            unread.add(key)
            continue
        opened = open_(info)
        if opened is None:
            read[key] = None
            continue
        parsed, exc = _read(opened, info.file_size, want, head)
        if exc is None:
            read[key] = parsed
        elif isinstance(exc, ElfError):
            read[key] = exc
        else:
            unread.add(key)
    return WheelScan(read, frozenset(unread))


def merge_scans(scans: Iterable[WheelScan]) -> dict[MemberKey, Scanned]:
    """The results of *scans* (of every wheel in a layer) that ``verify`` may
    use: those whose key exactly one wheel member has.  A layer member with
    that key can only be a raw copy of that wheel member."""
    merged: dict[MemberKey, Scanned] = {}
    seen: set[MemberKey] = set()
    for scan in scans:
        for key in scan.unread:
            merged.pop(key, None)
            seen.add(key)
        for key, value in scan.read.items():
            if key in seen:
                merged.pop(key, None)
            else:
                merged[key] = value
            seen.add(key)
    return merged


class _Wheel:
    """One wheel in :class:`WheelScans`: how to open its members while they are read."""

    def __init__(self) -> None:
        self.open_: _Opener | None = None
        self.close: Callable[[], None] | None = None
        self.twice: frozenset[MemberKey] = frozenset()
        self.parts: list[Future[WheelScan]] = []
        self.left = 0  # parts not finished; the last one closes the wheel


class WheelScans:
    """:func:`scan_wheel` for each wheel handed to :meth:`submit`, in the background.

    A wheel's large members are read as tasks of their own, largest first, and
    the rest as one task, so that one big wheel keeps every reader busy.
    :meth:`results` waits for them all; :meth:`close` (also on leaving the
    ``with`` block) cancels the reads not started, stops the running ones at
    their next member, and waits for their threads to end.  Scanning is only a
    head start: whatever a scan does not give is read from the zip.
    """

    BIG = 1024 * 1024  # members from this size on are read on their own

    def __init__(self, target: Target, workers: int = READERS) -> None:
        self._target = target
        self._want = symbol_filter(target)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._wheels: dict[Path, tuple[Future[None], _Wheel]] = {}
        self._pool = ThreadPoolExecutor(workers, "layerbuilder-scan")

    def __enter__(self) -> WheelScans:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def submit(self, wheel: Path, prepared: PreparedWheel | None = None) -> None:
        """Start reading *wheel* (from any thread; ignored once closed).  With
        *prepared* (the wheel read by ``prepare_wheel`` for the same target), its
        entries are used instead of reading the wheel's directory again."""
        with self._lock:
            if not self._stop.is_set() and wheel not in self._wheels:
                state = _Wheel()
                task = self._pool.submit(self._plan, wheel, state, prepared)
                self._wheels[wheel] = (task, state)

    def _plan(self, wheel: Path, state: _Wheel, prepared: PreparedWheel | None) -> None:
        root = self._target.site_packages.rstrip("/")
        if prepared is not None and prepared.root == root and hasattr(os, "pread"):
            fd = os.open(wheel, os.O_RDONLY | getattr(os, "O_BINARY", 0))
            state.open_, state.close = _fd_opener(fd), functools.partial(os.close, fd)
            todo, state.twice = _prepared_candidates(prepared)
        else:
            zf = zipfile.ZipFile(wheel)
            state.open_, state.close = _opener(zf), zf.close
            todo, state.twice = _candidates(wheel.name, zf, self._target)
        big = sorted((t for t in todo if t[1].file_size >= self.BIG), key=lambda t: -t[1].file_size)
        parts = [[t] for t in big] + [[t for t in todo if t[1].file_size < self.BIG]]
        with self._lock:
            if self._stop.is_set():
                return
            state.left = len(parts)
            state.parts = [self._pool.submit(self._read, state, part) for part in parts]

    def _read(self, state: _Wheel, part: _Todo) -> WheelScan:
        assert state.open_ is not None and state.close is not None
        try:
            return _read_members(state.open_, part, self._want, self._stop)
        finally:
            with self._lock:
                state.left -= 1
                last = state.left == 0
            if last:
                state.close()

    def results(self, wheels: Iterable[Path]) -> dict[MemberKey, Scanned]:
        """Wait for the scans, then :func:`merge_scans` of them, if *wheels* (the
        wheels of the layer) were all scanned in full; else nothing."""
        with self._lock:
            scans = dict(self._wheels)
        if set(scans) != set(wheels):
            return {}
        out: list[WheelScan] = []
        try:
            for planned, state in scans.values():
                planned.result()
                parts = [part.result() for part in state.parts]
                read = {k: v for part in parts for k, v in part.read.items()}
                out.append(WheelScan(read, state.twice.union(*(p.unread for p in parts))))
        except Exception as exc:  # write_layer reports a bad wheel; verify reads the zip
            log.debug("scanning the wheels failed: %s", exc)
            return {}
        return merge_scans(out)

    def close(self) -> None:
        with self._lock:
            self._stop.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
        for _planned, state in self._wheels.values():
            if state.close is not None and (state.left or not state.parts):
                state.close()  # the wheels whose reads were cancelled (or never planned)
