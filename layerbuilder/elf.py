"""A small, bounded ELF reader: just what the dynamic loader looks at.

It reads the ELF header, the program headers, the ``PT_DYNAMIC`` segment
(``DT_NEEDED``, ``DT_SONAME``, ``DT_RPATH``, ``DT_RUNPATH``) and the symbol
version needs (``DT_VERNEED``, the ``.gnu.version_r`` data), and, on request,
the names of the symbols that need a given version (``DT_VERSYM`` and
``DT_SYMTAB``).  32- and 64-bit files of either byte order are supported.

Everything is found the way ``ld.so`` finds it, through the program headers
and the dynamic addresses, never through the section headers: those sit at
the end of the file, and the loader ignores them.  The file is read through a
small block cache, so a member of a zip is decompressed at most a few times
and never held whole in memory.  Anything inconsistent raises
:class:`ElfError`; no other exception escapes :func:`read_elf` for bad input.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import BinaryIO

import msgspec
import msgspec.structs

__all__ = [
    "EM_AARCH64",
    "EM_X86_64",
    "ET_DYN",
    "ET_EXEC",
    "MACHINES",
    "ElfError",
    "ElfInfo",
    "VersionNeed",
    "is_elf",
    "read_elf",
]

MAGIC = b"\x7fELF"

ET_REL, ET_EXEC, ET_DYN = 1, 2, 3
EM_386, EM_ARM, EM_X86_64, EM_AARCH64 = 3, 40, 62, 183

#: e_machine -> the name ``uname -m`` (and wheel platform tags) use.
MACHINES: Mapping[int, str] = {
    2: "sparc",
    EM_386: "i686",
    8: "mips",
    20: "ppc",
    21: "ppc64",
    22: "s390x",
    EM_ARM: "armv7l",
    43: "sparcv9",
    EM_X86_64: "x86_64",
    EM_AARCH64: "aarch64",
    243: "riscv64",
    258: "loongarch64",
}

_PT_LOAD, _PT_DYNAMIC, _PT_INTERP = 1, 2, 3
_PN_XNUM = 0xFFFF
_DT_NULL, _DT_NEEDED, _DT_HASH, _DT_STRTAB, _DT_SYMTAB = 0, 1, 4, 5, 6
_DT_STRSZ, _DT_SYMENT, _DT_SONAME, _DT_RPATH, _DT_RUNPATH = 10, 11, 14, 15, 29
_DT_GNU_HASH, _DT_VERSYM = 0x6FFFFEF5, 0x6FFFFFF0
_DT_VERNEED, _DT_VERNEEDNUM = 0x6FFFFFFE, 0x6FFFFFFF

# Bounds that no real file comes near; they keep a hostile file cheap.
_MAX_PHNUM = 4096
_MAX_DYN = 100_000
_MAX_VERNEED = 4096
_MAX_STR = 4096
_MAX_SYMS = 4_000_000
_SYMBOLS_PER_VERSION = 20


class ElfError(ValueError):
    """The file starts like ELF but is not a well-formed one."""


class VersionNeed(msgspec.Struct, frozen=True):
    """One ``Vernaux`` entry: *file* (a ``DT_NEEDED`` name) must define *name*."""

    file: str
    name: str
    index: int  # the value .gnu.version holds for symbols bound to this version


class ElfInfo(msgspec.Struct, frozen=True):
    """What the dynamic loader would read from one ELF file."""

    bits: int  # 32 or 64
    little_endian: bool
    type: int  # ET_EXEC, ET_DYN, ...
    machine: int  # e_machine
    interpreter: str | None = None
    soname: str | None = None
    needed: tuple[str, ...] = ()
    rpath: tuple[str, ...] = ()
    runpath: tuple[str, ...] = ()
    version_needs: tuple[VersionNeed, ...] = ()
    #: version name -> names of undefined symbols bound to it (only the
    #: versions the caller asked for; at most a few names each)
    symbols: Mapping[str, tuple[str, ...]] = msgspec.field(default_factory=dict)

    @property
    def machine_name(self) -> str:
        return MACHINES.get(self.machine, f"e_machine {self.machine}")

    @property
    def loadable(self) -> bool:
        """An executable or a shared object (not a relocatable ``.o``)."""
        return self.type in (ET_EXEC, ET_DYN)


def is_elf(head: bytes) -> bool:
    """Whether *head* (the first bytes of a file) starts with the ELF magic."""
    return head[:4] == MAGIC


class _Reader:
    """Random access to a seekable stream through a small LRU block cache."""

    BLOCK = 64 * 1024
    BLOCKS = 64  # 4 MiB at most

    def __init__(self, f: BinaryIO, size: int) -> None:
        self._f = f
        self.size = size
        self._cache: OrderedDict[int, bytes] = OrderedDict()

    def _block(self, n: int) -> bytes:
        data = self._cache.get(n)
        if data is not None:
            self._cache.move_to_end(n)
            return data
        self._f.seek(n * self.BLOCK)
        data = self._f.read(self.BLOCK)
        self._cache[n] = data
        if len(self._cache) > self.BLOCKS:
            self._cache.popitem(last=False)
        return data

    def read(self, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0 or offset + length > self.size:
            raise ElfError(f"reads {length} bytes at offset {offset}, past the end of the file")
        out = bytearray()
        while len(out) < length:
            pos = offset + len(out)
            block = self._block(pos // self.BLOCK)
            start = pos % self.BLOCK
            chunk = block[start : start + length - len(out)]
            if not chunk:
                raise ElfError(f"file ends before offset {pos}")
            out += chunk
        return bytes(out)

    def cstr(self, offset: int, end: int) -> str:
        """The NUL-terminated string at *offset*, not reaching past *end*."""
        if not 0 <= offset < min(end, self.size):
            raise ElfError(f"string offset {offset} outside the string table")
        out = bytearray()
        pos = offset
        while True:
            block = self._block(pos // self.BLOCK)
            start = pos % self.BLOCK
            nul = block.find(b"\0", start)
            piece = block[start:] if nul < 0 else block[start:nul]
            out += piece
            if nul >= 0:
                break
            pos += len(piece)
            if not piece or pos >= min(end, self.size) or len(out) > _MAX_STR:
                raise ElfError(f"unterminated string at offset {offset}")
        if len(out) > _MAX_STR or offset + len(out) >= end:
            raise ElfError(f"string at offset {offset} runs past its table")
        return out.decode("utf-8", "surrogateescape")


class _Parser:
    def __init__(self, r: _Reader) -> None:
        self.r = r
        ident = r.read(0, 16)
        if ident[:4] != MAGIC:
            raise ElfError("no ELF magic")
        if ident[4] not in (1, 2):
            raise ElfError(f"unknown ELF class {ident[4]}")
        if ident[5] not in (1, 2):
            raise ElfError(f"unknown ELF data encoding {ident[5]}")
        self.bits = 32 if ident[4] == 1 else 64
        self.little = ident[5] == 1
        self.e = "<" if self.little else ">"
        self.w = "I" if self.bits == 32 else "Q"  # address / offset word
        self.loads: list[tuple[int, int, int]] = []  # (vaddr, offset, filesz)

    def unpack(self, fmt: str, offset: int) -> tuple[int, ...]:
        fmt = self.e + fmt.replace("W", self.w)
        return struct.unpack(fmt, self.r.read(offset, struct.calcsize(fmt)))

    def to_offset(self, vaddr: int, length: int = 1) -> int:
        """The file offset of virtual address *vaddr* (through PT_LOAD)."""
        for start, offset, filesz in self.loads:
            if start <= vaddr and vaddr + length <= start + filesz:
                return offset + (vaddr - start)
        raise ElfError(f"address {vaddr:#x} is in no loaded segment")

    def parse(self, want: Callable[[VersionNeed], bool] | None) -> ElfInfo:
        (etype, machine, _version, _entry, phoff, shoff, _flags, _ehsize, phentsize, phnum) = (
            self.unpack("HHIWWWIHHH", 16)
        )
        if phnum == _PN_XNUM:  # the real count is in section header 0's sh_info
            sh_info_at = shoff + (28 if self.bits == 32 else 44)
            (phnum,) = self.unpack("I", sh_info_at)
        phsize = 32 if self.bits == 32 else 56
        if phnum and phentsize < phsize:
            raise ElfError(f"program header entry size {phentsize} is too small")
        if phnum > _MAX_PHNUM:
            raise ElfError(f"{phnum} program headers")
        dynamic: tuple[int, int] | None = None
        interp: tuple[int, int] | None = None
        for i in range(phnum):
            at = phoff + i * phentsize
            if self.bits == 64:
                ptype, _f, off, vaddr, _pa, filesz, _mem, _al = self.unpack("IIQQQQQQ", at)
            else:
                ptype, off, vaddr, _pa, filesz, _mem, _f, _al = self.unpack("IIIIIIII", at)
            if ptype == _PT_LOAD:
                self.loads.append((vaddr, off, filesz))
            elif ptype == _PT_DYNAMIC:
                dynamic = (off, filesz)
            elif ptype == _PT_INTERP:
                interp = (off, filesz)
        info = ElfInfo(self.bits, self.little, etype, machine)
        interpreter = None
        if interp is not None:
            interpreter = self.r.cstr(interp[0], interp[0] + interp[1] + 1)
        if dynamic is None:
            return msgspec.structs.replace(info, interpreter=interpreter)
        return self._dynamic(info, interpreter, *dynamic, want)

    def _dynamic(
        self,
        info: ElfInfo,
        interpreter: str | None,
        offset: int,
        size: int,
        want: Callable[[VersionNeed], bool] | None,
    ) -> ElfInfo:
        entsize = 8 if self.bits == 32 else 16
        fmt = "iI" if self.bits == 32 else "qQ"
        tags: dict[int, int] = {}
        lists: dict[int, list[int]] = {_DT_NEEDED: [], _DT_RPATH: [], _DT_RUNPATH: []}
        for i in range(min(size // entsize, _MAX_DYN)):
            tag, val = self.unpack(fmt, offset + i * entsize)
            if tag == _DT_NULL:
                break
            if tag in lists:
                lists[tag].append(val)
            else:
                tags.setdefault(tag, val)
        if _DT_STRTAB not in tags:
            if any(lists.values()) or _DT_SONAME in tags:
                raise ElfError("dynamic section names strings but has no DT_STRTAB")
            return msgspec.structs.replace(info, interpreter=interpreter)
        strsz = tags.get(_DT_STRSZ, 0)
        strtab = self.to_offset(tags[_DT_STRTAB], max(strsz, 1))
        strend = strtab + strsz if strsz else self.r.size

        def s(off: int) -> str:
            return self.r.cstr(strtab + off, strend)

        def paths(vals: list[int]) -> tuple[str, ...]:
            return tuple(p for v in vals for p in s(v).split(":") if p)

        needs = self._verneed(tags, s) if _DT_VERNEED in tags else ()
        symbols: dict[str, tuple[str, ...]] = {}
        wanted = {n.index: n.name for n in needs if want is not None and want(n)}
        if wanted and _DT_VERSYM in tags and _DT_SYMTAB in tags:
            symbols = self._symbols(tags, wanted, s)
        return msgspec.structs.replace(
            info,
            interpreter=interpreter,
            soname=s(tags[_DT_SONAME]) if _DT_SONAME in tags else None,
            needed=tuple(s(v) for v in lists[_DT_NEEDED]),
            rpath=paths(lists[_DT_RPATH]),
            runpath=paths(lists[_DT_RUNPATH]),
            version_needs=needs,
            symbols=symbols,
        )

    def _verneed(self, tags: dict[int, int], s: Callable[[int], str]) -> tuple[VersionNeed, ...]:
        count = tags.get(_DT_VERNEEDNUM, _MAX_VERNEED)
        at = self.to_offset(tags[_DT_VERNEED], 16)
        out: list[VersionNeed] = []
        for _ in range(min(count, _MAX_VERNEED)):
            version, cnt, vn_file, vn_aux, vn_next = self.unpack("HHIII", at)
            if version != 1:
                raise ElfError(f"unknown Verneed version {version}")
            file = s(vn_file)
            aux = at + vn_aux
            for _ in range(min(cnt, _MAX_VERNEED)):
                _hash, _flags, other, name, next_aux = self.unpack("IHHII", aux)
                out.append(VersionNeed(file, s(name), other & 0x7FFF))
                if not next_aux:
                    break
                aux += next_aux
            if not vn_next:
                break
            at += vn_next
        return tuple(out)

    def _symbol_count(self, tags: dict[int, int]) -> int | None:
        if _DT_HASH in tags:
            _nbucket, nchain = self.unpack("II", self.to_offset(tags[_DT_HASH], 8))
            return nchain
        if _DT_GNU_HASH not in tags:
            return None
        at = self.to_offset(tags[_DT_GNU_HASH], 16)
        nbuckets, symoffset, bloom_size, _shift = self.unpack("IIII", at)
        if nbuckets > _MAX_SYMS or bloom_size > _MAX_SYMS:
            raise ElfError("GNU hash table is implausibly large")
        buckets_at = at + 16 + bloom_size * (self.bits // 8)
        raw = self.r.read(buckets_at, 4 * nbuckets)
        last = max(struct.unpack(f"{self.e}{nbuckets}I", raw), default=0)
        if last < symoffset:
            return symoffset
        chain_at = buckets_at + 4 * nbuckets
        index = last
        while index < _MAX_SYMS:
            (value,) = self.unpack("I", chain_at + 4 * (index - symoffset))
            if value & 1:
                return index + 1
            index += 1
        raise ElfError("GNU hash chain does not end")

    def _symbols(
        self, tags: dict[int, int], wanted: dict[int, str], s: Callable[[int], str]
    ) -> dict[str, tuple[str, ...]]:
        count = self._symbol_count(tags)
        if count is None or count > _MAX_SYMS:
            return {}
        versym = self.to_offset(tags[_DT_VERSYM], 2 * count) if count else 0
        syment = tags.get(_DT_SYMENT, 16 if self.bits == 32 else 24)
        symtab = self.to_offset(tags[_DT_SYMTAB], syment * count) if count else 0
        found: dict[str, list[str]] = {}
        chunk = 32 * 1024
        for first in range(0, count, chunk):
            n = min(chunk, count - first)
            raw = self.r.read(versym + 2 * first, 2 * n)
            for i, value in enumerate(struct.unpack(f"{self.e}{n}H", raw)):
                name = wanted.get(value & 0x7FFF)
                if name is None or len(found.get(name, ())) >= _SYMBOLS_PER_VERSION:
                    continue
                (st_name,) = self.unpack("I", symtab + (first + i) * syment)
                found.setdefault(name, []).append(s(st_name))
        return {k: tuple(v) for k, v in found.items()}


def read_elf(
    f: BinaryIO, size: int, *, want_symbols: Callable[[VersionNeed], bool] | None = None
) -> ElfInfo:
    """Parse the ELF file in the seekable stream *f* of *size* bytes.

    *want_symbols* picks the version needs whose symbol names to collect
    (for messages such as ``GLIBC_2.28 (fcntl64)``); by default none are read.
    Raises :class:`ElfError` for anything malformed.
    """
    try:
        return _Parser(_Reader(f, size)).parse(want_symbols)
    except ElfError:
        raise
    except (struct.error, OverflowError, MemoryError, UnicodeError) as exc:
        raise ElfError(f"malformed ELF: {exc}") from exc
