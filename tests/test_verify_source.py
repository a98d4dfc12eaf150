"""The zip verify reads in place: members as zipfile lists them, bytes as it reads them."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from layerbuilder.verify_source import Member, ZipFileSource, open_layer
from layerbuilder.zipmember import RawMember

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_WHEELS = sorted((ROOT / "fixtures" / "files").rglob("*.whl"))
FIELDS = (
    "filename",
    "orig_filename",
    "file_size",
    "compress_size",
    "compress_type",
    "header_offset",
    "flag_bits",
    "create_system",
    "external_attr",
    "CRC",
)


def _fields(m: object) -> tuple[object, ...]:
    return (*(getattr(m, f) for f in FIELDS), m.is_dir())  # type: ignore[attr-defined]


def _odd_zip(path: Path) -> Path:
    """Deflated, stored and bzip2 members, a directory, a Unix mode, a name that is
    not ASCII, and bytes before the zip proper."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("python/a.py", "print('a')\n" * 50, zipfile.ZIP_DEFLATED)
        zf.writestr("python/b.bin", b"\x00\x01" * 100, zipfile.ZIP_STORED)
        zf.writestr("python/c.txt", "bzip2 " * 40, zipfile.ZIP_BZIP2)
        zf.writestr("python/dir/", "")
        info = zipfile.ZipInfo("python/run.sh")
        info.external_attr = 0o100755 << 16
        info.create_system = 3
        zf.writestr(info, "#!/bin/sh\n")
        zf.writestr("python/données.txt", "é")
    path.write_bytes(b"#!/usr/bin/env prefix\n" + path.read_bytes())
    return path


@pytest.mark.parametrize("wheel", FIXTURE_WHEELS[:20], ids=lambda p: p.name)
def test_members_are_those_zipfile_lists(wheel: Path) -> None:
    source = open_layer(wheel)
    try:
        with zipfile.ZipFile(wheel) as zf:
            assert [_fields(m) for m in source.members()] == [_fields(i) for i in zf.infolist()]
    finally:
        source.close()


def test_odd_members_read_as_zipfile_reads_them(tmp_path: Path) -> None:
    path = _odd_zip(tmp_path / "odd.zip")
    source = open_layer(path)
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            assert [_fields(m) for m in source.members()] == [_fields(i) for i in infos]
            for member, info in zip(source.members(), infos):
                assert source.read(member) == zf.read(info), info.filename
            assert source.getinfo("python/run.sh").external_attr == 0o100755 << 16
            # bzip2 is zipfile's to read; stored and deflated members are read in place
            bz = source.getinfo("python/c.txt")
            with source.open(bz) as f:
                assert not isinstance(f, RawMember)
            with source.open(source.getinfo("python/a.py")) as f:
                assert isinstance(f, RawMember)
    finally:
        source.close()
    with pytest.raises(KeyError):
        open_layer(path).getinfo("python/missing")


def test_a_wrong_crc_is_an_error_as_in_zipfile(tmp_path: Path) -> None:
    path = tmp_path / "crc.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("python/x.txt", b"hello world" * 10, zipfile.ZIP_STORED)
    data = bytearray(path.read_bytes())
    at = data.index(b"hello world")
    data[at] = ord("J")
    path.write_bytes(bytes(data))
    source = open_layer(path)
    try:
        with pytest.raises(zipfile.BadZipFile, match=r"Bad CRC-32 for file 'python/x\.txt'"):
            source.read(source.members()[0])
    finally:
        source.close()
    with zipfile.ZipFile(path) as zf, pytest.raises(zipfile.BadZipFile, match="Bad CRC-32"):
        zf.read("python/x.txt")


def test_not_a_zip_says_why(tmp_path: Path) -> None:
    path = tmp_path / "no.zip"
    path.write_bytes(b"\x7fELF and then nothing")
    with pytest.raises(zipfile.BadZipFile, match="no end of central directory record"):
        open_layer(path)
    with pytest.raises(OSError):
        open_layer(tmp_path / "absent.zip")


def test_zipfile_source_passes_through(tmp_path: Path) -> None:
    path = _odd_zip(tmp_path / "odd.zip")
    with zipfile.ZipFile(path) as zf:
        source = ZipFileSource(zf)
        assert source.members() == zf.infolist()
        assert source.read(source.getinfo("python/a.py")) == zf.read("python/a.py")
        source.close()
        assert zf.fp is not None  # the caller's ZipFile stays open


def test_member_names_stop_at_a_nul_byte_as_zipinfo_names_do() -> None:
    record = ("a/b\0.so", b"a/b\0.so", 0, 20, 8, 0, 1, 1, 0, 0, 3)
    member = Member(record)
    assert (member.filename, member.orig_filename) == ("a/b", "a/b\0.so")
    assert zipfile.ZipInfo("a/b\0.so").filename == "a/b"
