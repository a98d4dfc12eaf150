"""Members read raw from the zip (zipmember) give the bytes zipfile gives, at every
seek ``verify`` makes, with ISA-L or zlib inflating; broken ones are unreadable."""

from __future__ import annotations

import io
import os
import random
import struct
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from elfbuild import compile_so, make_elf
from test_elfscan import BROKEN, GOOD, PY312, SITE, bad_wheel, good_wheel, same_report
from wheelfactory import patch_flags

from layerbuilder import elfscan, verify_source, zipmember
from layerbuilder.elf import ElfInfo
from layerbuilder.elfscan import SmallSteps, read_member, symbol_filter
from layerbuilder.layerzip import write_layer
from layerbuilder.verify import verify_layer, verify_zipfile
from layerbuilder.zipmember import RawMember, open_member

HEAD = SmallSteps.HEAD
WANT = symbol_filter(PY312)
ISAL = zipmember._ISAL

# zlib, and ISA-L where it is installed
INFLATERS = [pytest.param(zlib, id="zlib")]
if ISAL is not None:
    INFLATERS.insert(0, pytest.param(ISAL, id="isal"))


@pytest.fixture(params=INFLATERS)
def inflater(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(zipmember, "_inflater", lambda: request.param)
    return request.param


def test_isal_inflates_where_it_is_installed() -> None:
    try:
        from isal import isal_zlib
    except ImportError:
        assert zipmember._inflater() is zlib
    else:
        assert zipmember._inflater() is isal_zlib


def _data() -> bytes:
    """3 MiB that compress unevenly: random, zeros, text-like."""
    rnd = random.Random(11)
    text = b"".join(rnd.choice([b"GLIBC_2.17 ", b"libc.so.6 ", b"\x00" * 7]) for _ in range(60_000))
    blob = rnd.randbytes(1 << 20) + bytes(700_000) + text
    return blob + rnd.randbytes((3 << 20) - len(blob))


DATA = _data()

# (seek, n) the way read_elf goes: the header, far ahead to PT_DYNAMIC, back to the
# tables in the head, across the end of the head, ahead again, behind past the head
# (inflating again from the top), relative, at and past the end, then the rest
STEPS: list[tuple[int, int, int]] = [
    (0, 0, 4),
    (0, 0, 65536),
    (2_900_000, 0, 65536),
    (300_000, 0, 4096),
    (10, 0, 7),
    (HEAD - 3, 0, 10),
    (1_000_000, 0, 100),
    (900_000, 0, 100),
    (100, 1, 5),
    (len(DATA) - 2, 0, 10),
    (len(DATA) + 10, 0, 5),
    (HEAD - 5, 0, -1),
    (5, 0, 3 << 20),
]


@pytest.fixture(params=[zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED], ids=["deflated", "stored"])
def member_zip(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[zipfile.ZipFile]:
    path = tmp_path / "m.zip"
    with zipfile.ZipFile(path, "w", request.param) as zf:
        zf.writestr("first.txt", b"something before")
        zf.writestr("lib.so", DATA)
    with zipfile.ZipFile(path) as zf:
        yield zf


def test_raw_reads_give_zipfiles_bytes_at_every_seek(
    member_zip: zipfile.ZipFile, inflater: Any
) -> None:
    info = member_zip.getinfo("lib.so")
    with open_member(member_zip, info) as raw, member_zip.open(info) as ext:
        assert isinstance(raw, RawMember)
        mine, theirs = SmallSteps(raw), SmallSteps(ext)
        for offset, whence, n in STEPS:
            at = mine.seek(offset, whence)
            assert at == theirs.seek(offset, whence)
            got = mine.read(n)
            assert got == theirs.read(n), (offset, whence, n)
            assert got == DATA[at : at + n if n >= 0 else None], (offset, whence, n)
            assert mine.tell() == theirs.tell()


def test_raw_member_on_its_own(member_zip: zipfile.ZipFile, inflater: Any) -> None:
    info = member_zip.getinfo("lib.so")
    with open_member(member_zip, info) as raw:
        assert isinstance(raw, RawMember)
        assert raw.skip(2_000_000) == 2_000_000
        assert raw.read(10) == DATA[2_000_000:2_000_010]
        assert raw.seek(5) == 5 and raw.read(5) == DATA[5:10]  # back: from the top
        assert raw.seek(10, 1) == 20 and raw.tell() == 20
        assert raw.skip(len(DATA)) == len(DATA) - 20
        assert raw.read(10) == b""
        raw.seek(0)
        assert raw.read() == DATA


def _member_zip(path: Path, data: bytes, method: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", method) as zf:
        zf.writestr(f"{SITE}/pkg/_c.so", data)
    return path


NAME = f"{SITE}/pkg/_c.so"
# 2.4 MB, its PT_DYNAMIC and version needs at the end, its strings at the start
_RND = random.Random(3)
BIG_ELF = make_elf(
    needed=["libc.so.6"],
    verneed={"libc.so.6": ["GLIBC_2.17"]},
    symbols=[(f"s{_RND.getrandbits(200):050x}", None) for _ in range(30_000)],
)


def _unreadable(path: Path) -> str:
    with zipfile.ZipFile(path) as zf:
        return _unreadable_in(zf, zf.getinfo(NAME))


def _local_offset(path: Path) -> int:
    with zipfile.ZipFile(path) as zf:
        return zf.getinfo(NAME).header_offset


def _unreadable_in(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> str:
    parsed, exc = read_member(zf, info, WANT)
    assert parsed is None and isinstance(exc, zipfile.BadZipFile), exc
    assert repr(NAME) in str(exc)
    return str(exc)


@pytest.mark.parametrize("method", [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED])
def test_truncated_member_is_unreadable(tmp_path: Path, inflater: Any, method: int) -> None:
    path = _member_zip(tmp_path / "l.zip", BIG_ELF, method)
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(NAME)
        assert isinstance(read_member(zf, info, WANT)[0], ElfInfo)
        os.truncate(path, info.header_offset + 30 + len(NAME) + info.compress_size // 2)
        assert "the file ends there" in _unreadable_in(zf, info)


def test_compressed_data_cut_short_is_unreadable(tmp_path: Path, inflater: Any) -> None:
    path = _member_zip(tmp_path / "l.zip", BIG_ELF)
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(NAME)
        info.compress_size -= 1000  # the compressed data ends before the stream does
        assert "compressed bytes end before its data does" in _unreadable_in(zf, info)


@pytest.mark.parametrize("at", [0, 20_000])
def test_corrupt_deflate_stream_is_unreadable(tmp_path: Path, inflater: Any, at: int) -> None:
    path = _member_zip(tmp_path / "l.zip", BIG_ELF)
    data = bytearray(path.read_bytes())
    start = _local_offset(path) + 30 + len(NAME)
    data[start + at : start + at + 100] = b"\xff" * 100  # at 0: a reserved block type
    path.write_bytes(bytes(data))
    message = _unreadable(path)
    if at == 0:
        assert "corrupt compressed data" in message


def test_more_data_than_the_declared_size_is_unreadable(tmp_path: Path, inflater: Any) -> None:
    path = _member_zip(tmp_path / "l.zip", BIG_ELF)
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(NAME)
        info.file_size = 1000  # a size too small for what inflates
        assert "inflates to more than its 1000 bytes" in _unreadable_in(zf, info)


@pytest.mark.parametrize("method", [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED])
def test_bad_local_header_is_unreadable(tmp_path: Path, method: int) -> None:
    path = _member_zip(tmp_path / "l.zip", GOOD, method)
    at = _local_offset(path)
    good = path.read_bytes()
    path.write_bytes(good[:at] + b"PK\x03\x05" + good[at + 4 :])
    assert "no valid local header" in _unreadable(path)
    name_at = at + 30 + len(NAME) - len("_c.so")
    path.write_bytes(good[:name_at] + b"_d" + good[name_at + 2 :])
    assert "in its local header" in _unreadable(path)
    # a name or extra length that runs past the file
    path.write_bytes(good[:at] + good[at : at + 28] + struct.pack("<H", 0xFFFF) + good[at + 30 :])
    _unreadable(path)


def test_no_corruption_escapes_as_another_exception(tmp_path: Path, inflater: Any) -> None:
    """Bytes overwritten anywhere in a member: read_member still returns."""
    path = _member_zip(tmp_path / "l.zip", BIG_ELF)
    good = path.read_bytes()
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(NAME)
    at = info.header_offset
    end = at + 30 + len(NAME) + info.compress_size  # the central directory is left alone
    rnd = random.Random(5)
    for _ in range(40):
        pos = rnd.randrange(at, end - 8)
        path.write_bytes(good[:pos] + rnd.randbytes(8) + good[pos + 8 :])
        with zipfile.ZipFile(path) as zf:
            _, exc = read_member(zf, zf.getinfo(NAME), WANT)
        assert exc is None or isinstance(exc, (zipfile.BadZipFile, elfscan.ElfError)), exc


def test_members_zipfile_cannot_give_raw_fall_back_to_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    encrypted = _member_zip(tmp_path / "e.zip", GOOD)
    patch_flags(encrypted, {NAME: 0x1})
    with zipfile.ZipFile(encrypted) as zf:
        _, exc = read_member(zf, zf.getinfo(NAME), WANT)
    assert isinstance(exc, RuntimeError) and "password required" in str(exc)  # as zipfile says

    path = _member_zip(tmp_path / "l.zip", GOOD, zipfile.ZIP_BZIP2)
    with zipfile.ZipFile(path) as zf:
        with open_member(zf, zf.getinfo(NAME)) as f:
            assert isinstance(f, zipfile.ZipExtFile)
        parsed, exc = read_member(zf, zf.getinfo(NAME), WANT)
    assert exc is None and isinstance(parsed, ElfInfo)
    in_memory = io.BytesIO(_member_zip(tmp_path / "m.zip", GOOD).read_bytes())
    with zipfile.ZipFile(in_memory) as zf:
        with open_member(zf, zf.getinfo(NAME)) as f:
            assert isinstance(f, zipfile.ZipExtFile)  # no file to pread from
        assert isinstance(read_member(zf, zf.getinfo(NAME), WANT)[0], ElfInfo)
    monkeypatch.delattr(os, "pread")  # Windows
    with zipfile.ZipFile(tmp_path / "m.zip") as zf:
        with open_member(zf, zf.getinfo(NAME)) as f:
            assert isinstance(f, zipfile.ZipExtFile)
        assert isinstance(read_member(zf, zf.getinfo(NAME), WANT)[0], ElfInfo)


# -- verify: the same report whichever way the members are read --------------------------

_BIG_SO = r"""
#include <stdio.h>
#include <fcntl.h>
__asm__(".section .rodata\n.globl blob\nblob:\n.incbin \"BLOB\"\n.previous\n");
int f(int fd) { return fcntl(fd, F_GETFD) + puts("x"); }
"""


def _layers(tmp_path: Path) -> list[Path]:
    wheels = [good_wheel(tmp_path), bad_wheel(tmp_path)]
    layers = [write_layer(wheels, PY312, tmp_path / "wheels.zip").path]
    members = {
        f"{SITE}/pkg/_bad.cpython-312-x86_64-linux-gnu.so": BROKEN,
        f"{SITE}/pkg/truncated.so": make_elf(needed=["libc.so.6"])[:200],
        f"{SITE}/pkg/big.so": BIG_ELF,
    }
    blob = tmp_path / "blob.bin"
    blob.write_bytes(random.Random(9).randbytes(HEAD) + bytes(HEAD) + DATA[: 2 * HEAD])
    try:
        so = compile_so(tmp_path / "big" / "big.so", _BIG_SO.replace("BLOB", str(blob)))
    except pytest.skip.Exception:
        pass
    else:  # a real library whose PT_DYNAMIC is far past the head
        members[f"{SITE}/pkg/_real.cpython-312-x86_64-linux-gnu.so"] = so.read_bytes()
    for method, label in [(zipfile.ZIP_DEFLATED, "deflated"), (zipfile.ZIP_STORED, "stored")]:
        layers.append(tmp_path / f"{label}.zip")
        with zipfile.ZipFile(layers[-1], "w", method) as zf:
            for name, data in members.items():
                zf.writestr(name, data)
    return layers


def test_verify_reports_the_same_with_isal_zlib_and_zipfile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """verify_layer reads members as RawMembers (ISA-L or zlib inflating them); the
    reference reads every member through zipfile's own ZipExtFile."""
    layers = _layers(tmp_path)
    monkeypatch.setattr(
        verify_source.ZipFileSource, "open", lambda self, member: self.zf.open(member)
    )
    reference = []
    for layer in layers:
        with zipfile.ZipFile(layer) as zf:
            reference.append(verify_zipfile(zf, PY312, name=str(layer)))
    assert any(f.check == "glibc" for f in reference[0].findings)
    assert any(f.check == "elf" for f in reference[1].findings)
    opened: list[type] = []
    real_open = verify_source.open_at

    def spy(fd: int, info: Any, encoding: str = "cp437") -> Any:
        f = real_open(fd, info, encoding)
        opened.append(type(f))
        return f

    monkeypatch.setattr(verify_source, "open_at", spy)
    for param in INFLATERS:
        monkeypatch.setattr(zipmember, "_inflater", lambda m=param.values[0]: m)
        for layer, expected in zip(layers, reference):
            opened.clear()
            same_report(verify_layer(layer, PY312), expected)
            assert set(opened) == {RawMember}, layer.name
