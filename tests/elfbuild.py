"""ELF files for the tests: real ones compiled with the machine's gcc, and tiny
hand-made ones for the cases gcc cannot produce here (other machines, 32-bit,
big-endian, malformed).

``make_elf`` writes a minimal but loader-shaped shared object: an ELF header,
PT_LOAD/PT_DYNAMIC (and optionally PT_INTERP) program headers, ``.dynstr``,
``.dynsym``, ``.gnu.version``, ``.gnu.version_r``, a SysV or GNU hash table and
the dynamic section.  Offsets equal virtual addresses plus a fixed base, so the
reader must map addresses through PT_LOAD as ld.so does.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

EM_X86_64 = 62
EM_AARCH64 = 183
EM_386 = 3
EM_PPC64 = 21
ET_DYN = 3
ET_EXEC = 2
BASE = 0x400000

_DT = {
    "NULL": 0,
    "NEEDED": 1,
    "HASH": 4,
    "STRTAB": 5,
    "SYMTAB": 6,
    "STRSZ": 10,
    "SYMENT": 11,
    "SONAME": 14,
    "RPATH": 15,
    "RUNPATH": 29,
    "GNU_HASH": 0x6FFFFEF5,
    "VERSYM": 0x6FFFFFF0,
    "VERNEED": 0x6FFFFFFE,
    "VERNEEDNUM": 0x6FFFFFFF,
}


def _align(buf: bytearray, n: int = 8) -> None:
    buf.extend(b"\0" * (-len(buf) % n))


def make_elf(
    *,
    bits: int = 64,
    little: bool = True,
    machine: int = EM_X86_64,
    etype: int = ET_DYN,
    needed: Sequence[str] = (),
    soname: str | None = None,
    rpath: str | None = None,
    runpath: str | None = None,
    verneed: Mapping[str, Sequence[str]] | None = None,
    symbols: Sequence[tuple[str, str | None]] = (),
    hash_style: str = "sysv",
    interp: str | None = None,
) -> bytes:
    """A minimal ELF shared object (or executable) with the given dynamic data.

    *verneed* maps a needed file to the version names it must define;
    *symbols* are undefined symbols, each bound to one of those versions
    (or unversioned with ``None``).
    """
    e = "<" if little else ">"
    w = "I" if bits == 32 else "Q"
    verneed = dict(verneed or {})
    ehsize, phentsize = (52, 32) if bits == 32 else (64, 56)
    phnum = 3 if interp else 2

    body = bytearray()
    start = ehsize + phnum * phentsize
    body.extend(b"\0" * start)

    def here() -> int:
        return len(body)

    interp_at = here()
    if interp:
        body += interp.encode() + b"\0"
    _align(body)

    # .dynstr
    strings = bytearray(b"\0")
    index: dict[str, int] = {}

    def s(text: str) -> int:
        if text not in index:
            index[text] = len(strings)
            strings.extend(text.encode() + b"\0")
        return index[text]

    for name in needed:
        s(name)
    version_index: dict[str, int] = {}
    next_index = 2
    for file, names in verneed.items():
        s(file)
        for name in names:
            s(name)
            version_index.setdefault(name, next_index)
            next_index += 1
    for name, _v in symbols:
        s(name)
    dyn_strings = {
        k: s(v) for k, v in (("SONAME", soname), ("RPATH", rpath), ("RUNPATH", runpath)) if v
    }
    strtab_at = here()
    body += strings
    _align(body)

    # .dynsym (entry 0 is the null symbol)
    syment = 16 if bits == 32 else 24
    symtab_at = here()
    body += b"\0" * syment
    for name, _v in symbols:
        if bits == 32:  # st_name st_value st_size st_info st_other st_shndx
            body += struct.pack(e + "IIIBBH", s(name), 0, 0, 0x12, 0, 0)
        else:  # st_name st_info st_other st_shndx st_value st_size
            body += struct.pack(e + "IBBHQQ", s(name), 0x12, 0, 0, 0, 0)
    nsyms = len(symbols) + 1
    _align(body)

    # .gnu.version
    versym_at = here()
    body += struct.pack(e + "H", 0)
    for _name, version in symbols:
        body += struct.pack(e + "H", version_index[version] if version else 1)
    _align(body)

    # .gnu.version_r
    verneed_at = here()
    files = list(verneed.items())
    for i, (file, names) in enumerate(files):
        vn_next = 16 + 16 * len(names) if i + 1 < len(files) else 0
        body += struct.pack(e + "HHIII", 1, len(names), s(file), 16 if names else 0, vn_next)
        for j, name in enumerate(names):
            nxt = 16 if j + 1 < len(names) else 0
            body += struct.pack(e + "IHHII", 0, 0, version_index[name], s(name), nxt)
    _align(body)

    # hash table
    hash_at = here()
    if hash_style == "sysv":
        body += struct.pack(e + "II", 1, nsyms) + struct.pack(e + "I", 0) * (1 + nsyms)
    else:  # GNU: one bucket holding symbols 1..n-1, chain ends flagged by bit 0
        wordsize = bits // 8
        body += struct.pack(e + "IIII", 1, 1, 1, 6) + b"\0" * wordsize
        body += struct.pack(e + "I", 1 if nsyms > 1 else 0)
        for i in range(1, nsyms):
            body += struct.pack(e + "I", 2 | (1 if i == nsyms - 1 else 0))
    _align(body)

    # .dynamic
    entries: list[tuple[int, int]] = [(_DT["NEEDED"], s(n)) for n in needed]
    entries += [(_DT[k], v) for k, v in dyn_strings.items()]
    entries += [
        (_DT["HASH" if hash_style == "sysv" else "GNU_HASH"], BASE + hash_at),
        (_DT["STRTAB"], BASE + strtab_at),
        (_DT["SYMTAB"], BASE + symtab_at),
        (_DT["STRSZ"], len(strings)),
        (_DT["SYMENT"], syment),
        (_DT["VERSYM"], BASE + versym_at),
    ]
    if files:
        entries += [(_DT["VERNEED"], BASE + verneed_at), (_DT["VERNEEDNUM"], len(files))]
    entries.append((_DT["NULL"], 0))
    dynamic_at = here()
    for tag, val in entries:
        body += struct.pack(e + ("iI" if bits == 32 else "qQ"), tag, val)
    end = here()

    # header and program headers
    ident = b"\x7fELF" + bytes([1 if bits == 32 else 2, 1 if little else 2, 1, 0]) + b"\0" * 8
    header = ident + struct.pack(
        e + f"HHI{w}{w}{w}IHHHHHH",
        etype, machine, 1, 0, ehsize, 0, 0, ehsize, phentsize, phnum, 0, 0, 0,
    )  # fmt: skip
    phdrs = bytearray()

    def ph(ptype: int, off: int, size: int, flags: int = 4) -> None:
        if bits == 64:
            phdrs.extend(
                struct.pack(
                    e + "IIQQQQQQ", ptype, flags, off, BASE + off, BASE + off, size, size, 8
                )
            )
        else:
            phdrs.extend(
                struct.pack(
                    e + "IIIIIIII", ptype, off, BASE + off, BASE + off, size, size, flags, 4
                )
            )

    ph(1, 0, end, 5)  # PT_LOAD of the whole file
    ph(2, dynamic_at, end - dynamic_at, 6)  # PT_DYNAMIC
    if interp:
        ph(3, interp_at, len(interp) + 1)  # PT_INTERP
    body[: len(header)] = header
    body[ehsize : ehsize + len(phdrs)] = phdrs
    return bytes(body)


# -- real files from gcc ---------------------------------------------------------------


def require_gcc() -> str:
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        pytest.skip("no C compiler on this machine")
    return gcc


def compile_so(
    out: Path,
    source: str,
    *,
    libs: Sequence[str] = (),
    lib_dirs: Sequence[Path] = (),
    soname: str | None = None,
    rpath: str | None = None,
    runpath: str | None = None,
) -> Path:
    """Compile C *source* into the shared object *out* with the machine's compiler.

    ``-D_FILE_OFFSET_BITS=64`` is what ``Python.h`` turns on, and it is what
    makes ``fcntl`` bind to ``fcntl64@GLIBC_2.28`` on a glibc >= 2.28 host.
    """
    gcc = require_gcc()
    out.parent.mkdir(parents=True, exist_ok=True)
    src = out.with_name(out.name + ".c")
    src.write_text(source)
    cmd = [gcc, "-shared", "-fPIC", "-O1", "-D_GNU_SOURCE", "-D_FILE_OFFSET_BITS=64"]
    cmd += ["-o", str(out), str(src)]
    if soname:
        cmd.append(f"-Wl,-soname,{soname}")
    if rpath is not None:
        cmd += ["-Wl,--disable-new-dtags", f"-Wl,-rpath,{rpath}"]
    if runpath is not None:
        cmd += ["-Wl,--enable-new-dtags", f"-Wl,-rpath,{runpath}"]
    cmd += [f"-L{d}" for d in lib_dirs]
    cmd += [f"-l{lib}" for lib in libs]
    subprocess.run(cmd, check=True, capture_output=True)
    src.unlink()
    return out
