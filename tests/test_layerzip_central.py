"""zipread, layerzip's central directory reader: found, parsed and checked as zipfile does.

Each wheel variant below holds the same members as a plain wheel in a different
zip layout (a comment, bytes before the zip, zip64 records and extras); its
layer must be byte-identical to the plain wheel's, and the records read must be
those ``zipfile`` reads.  Broken central directories must give
:class:`UnsafeWheel` with a message naming the wheel and what is wrong.
"""

from __future__ import annotations

import hashlib
import stat
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from wheelfactory import Member, make_wheel

from layerbuilder.errors import UnsafeWheel
from layerbuilder.layerzip import write_layer
from layerbuilder.targets import get_target
from layerbuilder.zipread import read_central_directory

T312 = get_target("python3.12", "x86_64")
STORED, DEFLATED = zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED
FIXTURE_FILES = Path(__file__).resolve().parent.parent / "fixtures" / "files"
NAME = "demo-1.0-py3-none-any.whl"
READD = "delete it and download it again"
REFUSE = (
    "refusing to put this wheel in a layer. Exclude the project (--exclude) or pin "
    "another version, and report it to the project."
)

TEXT = b"import os\n" * 300
BLOB = hashlib.sha256(b"blob").digest() * 100


@pytest.fixture
def plain(tmp_path: Path) -> Path:
    (tmp_path / "plain").mkdir()
    return make_wheel(
        tmp_path / "plain",
        "demo",
        "1.0",
        [
            Member("demo/__init__.py", TEXT, DEFLATED),
            Member("demo/blob.bin", BLOB, STORED),
            Member("demo/empty.txt", b"", DEFLATED),
            Member("demo/run.sh", b"#!/bin/sh\n", STORED, mode=0o755),
            Member("demo/données.txt", b"unicode\n", DEFLATED),
            Member("demo/sub/", b"", STORED, mode=0o755, file_type=stat.S_IFDIR),
            Member("demo-1.0.data/purelib/demo_pure.py", b"PURE = 1\n", DEFLATED),
            Member("demo-1.0.data/scripts/demo", b"#!python\n", DEFLATED, mode=0o755),
        ],
    )


def _save(tmp_path: Path, kind: str, data: bytes) -> Path:
    path = tmp_path / kind / NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _end(data: bytes) -> int:
    """Where the end of central directory record is (a wheel with no comment)."""
    assert data[-22:-18] == b"PK\x05\x06"
    return len(data) - 22


def _central_offsets(data: bytes) -> list[int]:
    """The offset of every central directory record of a plain (not zip64) zip."""
    end = _end(data)
    count, _size, pos = struct.unpack_from("<HLL", data, end + 10)
    offsets = []
    for _ in range(count):
        assert data[pos : pos + 4] == b"PK\x01\x02"
        offsets.append(pos)
        n, e, c = struct.unpack_from("<HHH", data, pos + 28)
        pos += 46 + n + e + c
    return offsets


def _local_offset(data: bytes, record: int) -> int:
    return int(struct.unpack_from("<L", data, record + 42)[0])


def _with_comment(data: bytes, comment: bytes) -> bytes:
    end = _end(data)
    assert data[end + 20 :] == b"\0\0"
    return data[: end + 20] + struct.pack("<H", len(comment)) + comment


def _rewritten(src: Path, dst: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """*src* written again by zipfile with zip64 forced everywhere: zip64 end record
    and locator, zip64 extras for sizes and offsets in the central directory and in
    the local headers."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    with monkeypatch.context() as patch:
        patch.setattr(zipfile, "ZIP64_LIMIT", 0)
        with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
            for info in zin.infolist():
                data = zin.read(info)  # before zout.open(info) moves its offset
                with zout.open(info, "w", force_zip64=True) as w:
                    w.write(data)
    return dst


def _layer(wheel: Path, out: Path) -> bytes:
    write_layer([wheel], T312, out)
    return out.read_bytes()


def _variants(plain: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    data = plain.read_bytes()
    zip64 = _rewritten(plain, tmp_path / "zip64" / NAME, monkeypatch)
    return {
        "comment": _save(tmp_path, "comment", _with_comment(data, b"built by hand")),
        # the largest comment, holding something like an end record's signature
        "long comment": _save(
            tmp_path, "long", _with_comment(data, (b"PK\x05\x05" + b"c" * 65531))
        ),
        "prefix": _save(tmp_path, "prefix", b"#!/bin/sh\nexit 0\n" * 40 + data),
        "zip64": zip64,
        "zip64, comment and prefix": _save(
            tmp_path, "all", b"\0" * 99 + _with_comment(zip64.read_bytes(), b"z")
        ),
    }


def test_variants_give_the_plain_layer(
    plain: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = _layer(plain, tmp_path / "plain.zip")
    variants = _variants(plain, tmp_path, monkeypatch)
    zip64 = variants["zip64"].read_bytes()
    assert b"PK\x06\x06" in zip64[-200:] and b"PK\x06\x07" in zip64[-200:]
    with zipfile.ZipFile(variants["zip64"]) as zf:
        extras = [i.extra[:2] for i in zf.infolist()]
    assert extras.count(b"\x01\x00") >= len(extras) - 1  # all but the first (offset 0)
    for kind, wheel in variants.items():
        assert wheel.read_bytes() != plain.read_bytes()
        layer = _layer(wheel, tmp_path / f"{kind}.zip")
        assert hashlib.sha256(layer).hexdigest() == hashlib.sha256(expected).hexdigest(), kind


def _as_zipfile_reads(path: Path) -> list[tuple[object, ...]]:
    with zipfile.ZipFile(path) as zf:
        return [
            (
                i.orig_filename,
                i.flag_bits,
                i.extract_version,
                i.compress_type,
                i.CRC,
                i.compress_size,
                i.file_size,
                i.external_attr,
                i.header_offset,
                i.create_system,
            )
            for i in zf.infolist()
        ]


def _as_we_read(path: Path) -> list[tuple[object, ...]]:
    return [(r[0], *r[2:]) for r in read_central_directory(path)]


def test_records_are_those_zipfile_reads(
    plain: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheels = {"plain": plain, **_variants(plain, tmp_path, monkeypatch)}
    # a name with no UTF-8 flag and a byte above 127: cp437, as zipfile reads it
    data = bytearray(plain.read_bytes())
    for record in _central_offsets(bytes(data)):
        n = struct.unpack_from("<H", data, record + 28)[0]
        if data[record + 46 : record + 46 + n] == "demo/données.txt".encode():
            for flags_at in (record + 8, _local_offset(bytes(data), record) + 6):
                struct.pack_into("<H", data, flags_at, 0)
    wheels["cp437"] = _save(tmp_path, "cp437", bytes(data))
    assert "demo/donn├⌐es.txt" in [r[0] for r in _as_we_read(wheels["cp437"])]
    wheels["streamed"] = make_wheel(
        tmp_path, "s", "1", [Member("s/a.py", TEXT), Member("s/b", BLOB, STORED)], streaming=True
    )
    for kind, wheel in wheels.items():
        assert _as_we_read(wheel) == _as_zipfile_reads(wheel), kind


def _real_wheels() -> list[Path]:
    return sorted(FIXTURE_FILES.rglob("*.whl")) if FIXTURE_FILES.is_dir() else []


@pytest.mark.parametrize("wheel", _real_wheels(), ids=lambda p: p.name)
def test_records_can_be_made_into_something_else_one_by_one(wheel: Path) -> None:
    records = read_central_directory(wheel)
    seen: list[int] = []

    def make(record: tuple[object, ...]) -> str:
        seen.append(len(seen))
        return f"{record[0]} at {record[9]}"

    assert read_central_directory(wheel, make) == [f"{r[0]} at {r[9]}" for r in records]
    assert len(seen) == len(records) > 3


@pytest.mark.parametrize("wheel", _real_wheels(), ids=lambda p: p.name)
def test_real_wheel_records_are_those_zipfile_reads(wheel: Path) -> None:
    assert _as_we_read(wheel) == _as_zipfile_reads(wheel)


# -- broken wheels -------------------------------------------------------------------


def _patched(data: bytes, at: int, fmt: str, *values: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, at, *values)
    return bytes(out)


def _bad_signature(data: bytes) -> tuple[bytes, str]:
    second = _central_offsets(data)[1]
    return (
        data[:second] + b"PK\x01\x09" + data[second + 4 :],
        f"central directory record 2 (at offset {second}) starts with b'PK\\x01\\t', "
        "not b'PK\\x01\\x02'",
    )


def _cut_in_half(data: bytes) -> tuple[bytes, str]:
    return (
        data[: len(data) // 2],
        "no end of central directory record (b'PK\\x05\\x06') in its last 65558 bytes",
    )


def _size_too_large(data: bytes) -> tuple[bytes, str]:
    end = _end(data)
    return (
        _patched(data, end + 12, "<L", 10**6),
        f"its end record claims a 1000000-byte central directory, but only {end} bytes precede it",
    )


def _name_too_long(data: bytes) -> tuple[bytes, str]:
    offsets = _central_offsets(data)
    last = offsets[-1]
    n = struct.unpack_from("<H", data, last + 28)[0]
    return (
        _patched(data, last + 28, "<H", n + 100),
        f"central directory record {len(offsets)} (at offset {last}) is cut short: its "
        f"name, extra field and comment take {n + 100} bytes, {n} are left",
    )


def _trailing_bytes(data: bytes) -> tuple[bytes, str]:
    end = _end(data)
    size = struct.unpack_from("<L", data, end + 12)[0]
    garbage = b"PK\x01\x02 garbage"
    out = data[:end] + garbage + _patched(data[end:], 12, "<L", size + len(garbage))
    return (
        out,
        f"central directory record {len(_central_offsets(data)) + 1} (at offset {end}) "
        f"is cut short at {len(garbage)} bytes",
    )


@pytest.mark.parametrize(
    "garble",
    [_bad_signature, _cut_in_half, _size_too_large, _name_too_long, _trailing_bytes],
    ids=lambda f: f.__name__.strip("_"),
)
def test_broken_central_directory(
    plain: Path, tmp_path: Path, garble: Callable[[bytes], tuple[bytes, str]]
) -> None:
    data, reason = garble(plain.read_bytes())
    wheel = _save(tmp_path, "broken", data)
    out = tmp_path / "out" / "layer.zip"
    with pytest.raises(UnsafeWheel) as info:
        write_layer([wheel], T312, out)
    assert str(info.value) == f"{NAME} is not a readable zip ({reason}); {READD}"
    assert not isinstance(info.value.__cause__, (struct.error, IndexError))
    assert not out.exists()


@pytest.mark.parametrize(
    "garble",
    [_bad_signature, _cut_in_half, _size_too_large, _trailing_bytes],
    ids=lambda f: f.__name__.strip("_"),
)
def test_zipfile_refuses_them_too(
    plain: Path, tmp_path: Path, garble: Callable[[bytes], tuple[bytes, str]]
) -> None:
    wheel = _save(tmp_path, "broken", garble(plain.read_bytes())[0])
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(wheel).close()


def _refused_by_both(wheel: Path, message: str) -> None:
    with pytest.raises(UnsafeWheel) as info:
        write_layer([wheel], T312, wheel.parent / "layer.zip")
    assert str(info.value) == message
    with pytest.raises((zipfile.BadZipFile, NotImplementedError, UnicodeDecodeError)):
        zipfile.ZipFile(wheel).close()


def _one_member_zip(tmp_path: Path, extra: bytes) -> tuple[Path, int]:
    """A wheel of one member ``x/a.py`` with *extra* as its extra field (both headers)."""
    path = tmp_path / "x-1-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        info = zipfile.ZipInfo("x/a.py", date_time=(2020, 1, 1, 0, 0, 0))
        info.extra = extra
        zf.writestr(info, b"a = 1\n")
    return path, _central_offsets(path.read_bytes())[0]


def test_corrupt_extra_field(tmp_path: Path) -> None:
    wheel, record = _one_member_zip(tmp_path, struct.pack("<HH", 0x5455, 9) + b"\x01abcd")
    _refused_by_both(
        wheel,
        f"x-1-py3-none-any.whl is not a readable zip (central directory record 1 (at offset "
        f"{record}) (b'x/a.py') has a corrupt extra field 0x5455: it claims 9 bytes, 5 are "
        f"left); {READD}",
    )


def test_zip64_extra_without_the_field_it_needs(tmp_path: Path) -> None:
    wheel, record = _one_member_zip(tmp_path, struct.pack("<HH", 0x0001, 0))
    wheel.write_bytes(_patched(wheel.read_bytes(), record + 20, "<L", 0xFFFFFFFF))
    _refused_by_both(
        wheel,
        f"x-1-py3-none-any.whl is not a readable zip (central directory record 1 (at offset "
        f"{record}) (b'x/a.py') has a zip64 extra field without the compressed size it "
        f"should hold); {READD}",
    )


def test_unknown_extra_fields_are_skipped(tmp_path: Path) -> None:
    ut = struct.pack("<HHB", 0x5455, 1, 1)
    wheel, _ = _one_member_zip(tmp_path, ut + struct.pack("<HH", 0x7875, 3) + b"\x01\x00\x00")
    assert _as_we_read(wheel) == _as_zipfile_reads(wheel)
    assert write_layer([wheel], T312, tmp_path / "layer.zip").entries == 1


def test_split_archive(plain: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    zip64 = _rewritten(plain, tmp_path / "zip64" / NAME, monkeypatch).read_bytes()
    locator = zip64.rindex(b"PK\x06\x07")
    wheel = _save(tmp_path, "split", _patched(zip64, locator + 16, "<L", 3))
    _refused_by_both(
        wheel,
        f"{NAME} is not a readable zip (it is one of 3 disks of a split zip (disk 0)); {READD}",
    )


def test_zip64_locator_with_no_room_for_its_record(tmp_path: Path) -> None:
    data = struct.pack("<4sLQL", b"PK\x06\x07", 0, 0, 1) + struct.pack(
        "<4s4H2LH", b"PK\x05\x06", 0, 0, 0, 0, 0, 0, 0
    )
    wheel = _save(tmp_path, "locator", data)
    _refused_by_both(
        wheel,
        f"{NAME} is not a readable zip (it has a zip64 end locator but no zip64 end "
        f"record before it); {READD}",
    )


def test_utf8_flag_on_a_name_that_is_not_utf8(plain: Path, tmp_path: Path) -> None:
    data = plain.read_bytes()
    assert data.count("données".encode()) == 2  # the local and the central name
    data = data.replace("données".encode(), b"donn\xff\xfees")
    _refused_by_both(
        _save(tmp_path, "notutf8", data),
        f"{NAME}: member b'demo/donn\\xff\\xfees.txt' has the UTF-8 flag but its name is "
        f"not UTF-8; {REFUSE}",
    )


def test_member_needing_a_newer_zip_version(plain: Path, tmp_path: Path) -> None:
    data = plain.read_bytes()
    second = _central_offsets(data)[1]
    _refused_by_both(
        _save(tmp_path, "version", _patched(data, second + 6, "<B", 64)),
        f"{NAME}: member 'demo/blob.bin' needs zip 6.4 to extract (zipfile, so pip, stops "
        f"at 6.3); {REFUSE}",
    )


def test_one_byte_short_of_an_end_record(tmp_path: Path) -> None:
    wheel = _save(tmp_path, "short", b"PK\x05\x06" + b"\0" * 17)
    _refused_by_both(
        wheel,
        f"{NAME} is not a readable zip (no end of central directory record "
        f"(b'PK\\x05\\x06') in its last 65558 bytes); {READD}",
    )
