"""The ELF reader against real gcc output, hand-made files of every class and
byte order, pyelftools as a reference, and malformed input."""

from __future__ import annotations

import contextlib
import glob
import io
import os
import random
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from elfbuild import EM_386, EM_PPC64, ET_EXEC, compile_so, make_elf

from layerbuilder.elf import EM_AARCH64, EM_X86_64, ElfError, ElfInfo, VersionNeed, is_elf, read_elf

FCNTL = "#include <fcntl.h>\nint f(int fd) { return fcntl(fd, F_GETFD); }\n"


def parse(data: bytes, want: Callable[[VersionNeed], bool] | None = None) -> ElfInfo:
    return read_elf(io.BytesIO(data), len(data), want_symbols=want)


# -- real files from gcc --------------------------------------------------------------


def test_gcc_shared_object(tmp_path: Path) -> None:
    compile_so(tmp_path / "libdep.so", "int dep(void) { return 1; }\n", soname="libdep.so.1")
    so = compile_so(
        tmp_path / "ext.so",
        FCNTL + "int dep(void);\nint g(void) { return dep(); }\n",
        libs=["dep"],
        lib_dirs=[tmp_path],
        soname="ext.so",
        runpath="$ORIGIN/../pkg.libs:/opt/lib",
    )
    info = read_elf(so.open("rb"), so.stat().st_size, want_symbols=lambda n: n.name == "GLIBC_2.28")
    assert info.bits == 64 and info.little_endian
    assert info.machine == EM_X86_64 and info.machine_name == "x86_64"
    assert info.loadable
    assert info.soname == "ext.so"
    assert info.needed == ("libdep.so.1", "libc.so.6")
    assert info.runpath == ("$ORIGIN/../pkg.libs", "/opt/lib")
    assert info.rpath == ()
    assert ("libc.so.6", "GLIBC_2.28") in {(n.file, n.name) for n in info.version_needs}
    assert info.symbols == {"GLIBC_2.28": ("fcntl64",)}


def test_gcc_rpath_is_not_runpath(tmp_path: Path) -> None:
    so = compile_so(tmp_path / "r.so", "int x;\n", rpath="$ORIGIN")
    info = read_elf(so.open("rb"), so.stat().st_size)
    assert info.rpath == ("$ORIGIN",) and info.runpath == ()


def test_symbols_are_only_read_when_asked(tmp_path: Path) -> None:
    so = compile_so(tmp_path / "f.so", FCNTL)
    info = read_elf(so.open("rb"), so.stat().st_size)
    assert info.symbols == {}
    assert "GLIBC_2.28" in {n.name for n in info.version_needs}


def test_reads_a_deflated_zip_member_like_the_file(tmp_path: Path) -> None:
    so = compile_so(tmp_path / "f.so", FCNTL, runpath="$ORIGIN")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(so, "python/f.so")
    with zipfile.ZipFile(buf) as zf, zf.open("python/f.so") as member:
        size = zf.getinfo("python/f.so").file_size
        from_zip = read_elf(member, size, want_symbols=lambda n: True)  # type: ignore[arg-type]
    direct = read_elf(so.open("rb"), so.stat().st_size, want_symbols=lambda n: True)
    assert from_zip == direct


def test_agrees_with_pyelftools_on_real_files(tmp_path: Path) -> None:
    elftools = pytest.importorskip("elftools.elf.elffile")
    from elftools.elf.gnuversions import GNUVerNeedSection

    built = [
        compile_so(tmp_path / "a.so", FCNTL, runpath="$ORIGIN/x"),
        compile_so(tmp_path / "b.so", "int y;\n", rpath="/opt/lib:$ORIGIN", soname="libb.so.2"),
    ]
    system = sorted(glob.glob("/usr/lib/x86_64-linux-gnu/lib*.so.*"))[:40]
    checked = 0
    for path in [*map(str, built), *system]:
        with open(path, "rb") as f:
            if not is_elf(f.read(4)):
                continue
            mine = read_elf(f, os.path.getsize(path))
            f.seek(0)
            ref = elftools.ELFFile(f)
            needed, soname = [], None
            for seg in ref.iter_segments():
                if seg["p_type"] == "PT_DYNAMIC":
                    for tag in seg.iter_tags():
                        if tag.entry.d_tag == "DT_NEEDED":
                            needed.append(tag.needed)
                        elif tag.entry.d_tag == "DT_SONAME":
                            soname = tag.soname
            vers = {
                (v.name, a.name)
                for sec in ref.iter_sections()
                if isinstance(sec, GNUVerNeedSection)
                for v, auxs in sec.iter_versions()
                for a in auxs
            }
        assert mine.needed == tuple(needed), path
        assert mine.soname == soname, path
        assert {(n.file, n.name) for n in mine.version_needs} == vers, path
        checked += 1
    assert checked >= 2


# -- hand-made files: every class and byte order ------------------------------------


@pytest.mark.parametrize("bits", [32, 64])
@pytest.mark.parametrize("little", [True, False])
@pytest.mark.parametrize("hash_style", ["sysv", "gnu"])
def test_crafted_round_trip(bits: int, little: bool, hash_style: str) -> None:
    data = make_elf(
        bits=bits,
        little=little,
        machine=EM_PPC64 if not little else EM_386 if bits == 32 else EM_AARCH64,
        needed=["libfoo.so.1", "libc.so.6"],
        soname="libself.so.3",
        rpath="$ORIGIN/a:$ORIGIN/b",
        runpath="/opt/lib",
        verneed={"libc.so.6": ["GLIBC_2.17", "GLIBC_2.29"], "libfoo.so.1": ["FOO_1"]},
        symbols=[("exp", "GLIBC_2.29"), ("memcpy", "GLIBC_2.17"), ("log", "GLIBC_2.29")],
        hash_style=hash_style,
    )
    info = parse(data, want=lambda n: n.name == "GLIBC_2.29")
    assert info.bits == bits and info.little_endian is little
    assert info.needed == ("libfoo.so.1", "libc.so.6")
    assert info.soname == "libself.so.3"
    assert info.rpath == ("$ORIGIN/a", "$ORIGIN/b")
    assert info.runpath == ("/opt/lib",)
    assert [(n.file, n.name) for n in info.version_needs] == [
        ("libc.so.6", "GLIBC_2.17"),
        ("libc.so.6", "GLIBC_2.29"),
        ("libfoo.so.1", "FOO_1"),
    ]
    assert info.symbols == {"GLIBC_2.29": ("exp", "log")}


def test_machine_names() -> None:
    assert parse(make_elf(machine=EM_AARCH64)).machine_name == "aarch64"
    assert parse(make_elf(bits=32, machine=EM_386)).machine_name == "i686"
    assert parse(make_elf(machine=4242)).machine_name == "e_machine 4242"


def test_patched_machine_of_a_real_file(tmp_path: Path) -> None:
    so = compile_so(tmp_path / "f.so", FCNTL)
    data = bytearray(so.read_bytes())
    data[18:20] = struct.pack("<H", EM_AARCH64)
    assert parse(bytes(data)).machine == EM_AARCH64


def test_executable_with_interpreter() -> None:
    info = parse(
        make_elf(etype=ET_EXEC, interp="/lib64/ld-linux-x86-64.so.2", needed=["libc.so.6"])
    )
    assert info.interpreter == "/lib64/ld-linux-x86-64.so.2"
    assert info.needed == ("libc.so.6",)


def test_no_dynamic_segment() -> None:
    # ELF header and no program headers at all: a relocatable object, say
    fields = (1, 62, 1, 0, 0, 0, 0, 64, 56, 0, 64, 0, 0)
    header = b"\x7fELF\x02\x01\x01" + b"\0" * 9 + struct.pack("<HHIQQQIHHHHHH", *fields)
    info = parse(header)
    assert info.needed == () and info.version_needs == () and not info.loadable


def test_is_elf() -> None:
    assert is_elf(b"\x7fELF\x02")
    assert not is_elf(b"PK\x03\x04")
    assert not is_elf(b"")


# -- malformed input: ElfError, never anything else -----------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x7fELF", "past the end"),
        (b"\x7fELF\x03\x01" + b"\0" * 80, "ELF class 3"),
        (b"\x7fELF\x02\x07" + b"\0" * 80, "data encoding 7"),
        (b"NOPE" + b"\0" * 80, "no ELF magic"),
    ],
)
def test_bad_headers(data: bytes, message: str) -> None:
    with pytest.raises(ElfError, match=message):
        parse(data)


def test_string_offset_outside_table() -> None:
    data = bytearray(make_elf(needed=["libfoo.so.1"]))
    # point DT_STRSZ at 1 byte: every name now runs past its table
    at = data.find(struct.pack("<qQ", 10, 0)[:8])
    assert at > 0
    data[at + 8 : at + 16] = struct.pack("<Q", 1)
    with pytest.raises(ElfError, match="string"):
        parse(bytes(data))


def test_every_truncation_is_an_elf_error() -> None:
    data = make_elf(
        needed=["libfoo.so.1"],
        verneed={"libc.so.6": ["GLIBC_2.28"]},
        symbols=[("fcntl64", "GLIBC_2.28")],
    )
    for n in range(len(data)):
        with contextlib.suppress(ElfError):
            parse(data[:n], want=lambda v: True)


@pytest.mark.parametrize("bits", [32, 64])
def test_random_corruption_never_crashes(bits: int, tmp_path: Path) -> None:
    rng = random.Random(1234 + bits)
    seeds = [
        make_elf(
            bits=bits,
            little=bool(i % 2),
            needed=["libfoo.so.1", "libc.so.6"],
            runpath="$ORIGIN",
            verneed={"libc.so.6": ["GLIBC_2.28", "GLIBC_2.2.5"]},
            symbols=[("a", "GLIBC_2.28"), ("b", None)],
            hash_style=("sysv", "gnu")[i // 2],
        )
        for i in range(4)
    ]
    outcomes = {"ok": 0, "error": 0}
    for _ in range(1500):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 6)):
            pos = rng.randrange(len(data))
            data[pos] = rng.randrange(256)
        try:
            parse(bytes(data), want=lambda v: True)
            outcomes["ok"] += 1
        except ElfError:
            outcomes["error"] += 1
    assert outcomes["error"] > 0 and outcomes["ok"] > 0
