from __future__ import annotations

import hashlib
import itertools
import os
import shutil
import stat
import subprocess
import threading
import zipfile
from pathlib import Path

import pytest
from wheelfactory import Member, make_wheel, patch_flags, patch_local_name, raw_member_bytes

from layerbuilder import layerzip
from layerbuilder.errors import UnsafeWheel
from layerbuilder.layerzip import LayerReport, write_layer
from layerbuilder.targets import get_target

T312 = get_target("python3.12", "x86_64")
SP = "python/lib/python3.12/site-packages"
STORED, DEFLATED = zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED
FIXTURE_FILES = Path(__file__).resolve().parent.parent / "fixtures" / "files"

# compressible and incompressible payloads
TEXT = b"def f():\n    return 'hello'\n" * 200
BLOB = hashlib.sha256(b"seed").digest() * 512


def unzip_t(path: Path) -> None:
    """``unzip -t`` (Info-ZIP) must accept the zip, when the tool is installed."""
    if shutil.which("unzip") is None:
        return
    proc = subprocess.run(["unzip", "-t", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "No errors detected" in proc.stdout


def check_zip(path: Path) -> dict[str, zipfile.ZipInfo]:
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None
        infos = {i.filename: i for i in zf.infolist()}
    unzip_t(path)
    return infos


def read_all(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    return make_wheel(
        tmp_path,
        "demo",
        "1.0",
        [
            Member("demo/__init__.py", TEXT, DEFLATED),
            Member("demo/blob.bin", BLOB, STORED),
            Member("demo/empty.txt", b"", DEFLATED),
            Member("demo/tool.sh", b"#!/bin/sh\necho hi\n", STORED, mode=0o755),
            Member("demo/ownerexec", b"x", DEFLATED, mode=0o700),
            Member("demo/readonly.txt", b"ro", DEFLATED, mode=0o400),
            Member("demo/sub/", b"", STORED, mode=0o755, file_type=stat.S_IFDIR),
            Member("demo/noslash", b"", STORED, mode=0o755, file_type=stat.S_IFDIR),
            Member("demo-1.0.data/purelib/demo_pure.py", b"PURE = 1\n", DEFLATED),
            Member("demo-1.0.data/platlib/demo_plat/_x.so", BLOB[:999], STORED, mode=0o755),
            Member("demo-1.0.data/scripts/demo-cli", b"#!python\n", DEFLATED, mode=0o755),
            Member("demo-1.0.data/headers/demo.h", b"int x;\n", DEFLATED),
            Member("demo-1.0.data/data/share/demo.txt", b"share\n", DEFLATED),
        ],
    )


EXPECTED_NAMES = sorted(
    f"{SP}/{n}"
    for n in [
        "demo/__init__.py",
        "demo/blob.bin",
        "demo/empty.txt",
        "demo/tool.sh",
        "demo/ownerexec",
        "demo/readonly.txt",
        "demo_pure.py",
        "demo_plat/_x.so",
        "demo-1.0.dist-info/METADATA",
        "demo-1.0.dist-info/WHEEL",
        "demo-1.0.dist-info/RECORD",
    ]
)


def test_reroots_and_maps_data_dirs(demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "layer.zip"
    report = write_layer([demo], T312, out)
    infos = check_zip(out)
    assert list(infos) == EXPECTED_NAMES  # sorted, no directory entries
    assert report.dropped == (
        "demo-1.0.data/scripts/demo-cli",
        "demo-1.0.data/headers/demo.h",
        "demo-1.0.data/data/share/demo.txt",
    )
    assert report.collisions == ()
    assert report.entries == len(EXPECTED_NAMES)


def test_prepared_entries_hold_no_second_copy_of_their_names(demo: Path) -> None:
    entries = layerzip.prepare_wheel(demo, T312).entries
    assert sorted(e.name for e in entries) == EXPECTED_NAMES
    moved = {e.member: e.path for e in entries if e.path != e.member}
    assert moved == {
        "demo-1.0.data/purelib/demo_pure.py": "demo_pure.py",
        "demo-1.0.data/platlib/demo_plat/_x.so": "demo_plat/_x.so",
    }
    # the others share the member's string, and every entry the root's
    assert all(e.path is e.member for e in entries if e.member not in moved)
    assert {id(e.root) for e in entries} == {id(entries[0].root)}
    assert entries[0].root == SP


def test_member_bytes_equal_originals(demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "layer.zip"
    write_layer([demo], T312, out)
    original = read_all(demo)
    layer = read_all(out)
    for name, data in original.items():
        if (
            name.endswith(("/", "noslash"))
            or "/scripts/" in name
            or "/headers/" in name
            or "/data/" in name
        ):
            continue
        final = name.replace("demo-1.0.data/purelib/", "").replace("demo-1.0.data/platlib/", "")
        assert layer[f"{SP}/{final}"] == data


def test_compressed_bytes_copied_raw(demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "layer.zip"
    write_layer([demo], T312, out)
    with zipfile.ZipFile(demo) as src, zipfile.ZipFile(out) as dst:
        for name in ("demo/__init__.py", "demo/blob.bin", "demo/tool.sh"):
            a, b = src.getinfo(name), dst.getinfo(f"{SP}/{name}")
            assert (a.compress_type, a.CRC, a.compress_size, a.file_size) == (
                b.compress_type,
                b.CRC,
                b.compress_size,
                b.file_size,
            )
            assert raw_member_bytes(demo, name) == raw_member_bytes(out, f"{SP}/{name}")
    assert dst.getinfo(f"{SP}/demo/__init__.py").compress_type == DEFLATED
    assert dst.getinfo(f"{SP}/demo/blob.bin").compress_type == STORED


def test_modes_times_and_headers(demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "layer.zip"
    write_layer([demo], T312, out)
    infos = check_zip(out)
    modes = {name[len(SP) + 1 :]: info.external_attr >> 16 for name, info in infos.items()}
    assert modes["demo/tool.sh"] == 0o100755
    assert modes["demo/ownerexec"] == 0o100755  # any exec bit -> 755
    assert modes["demo_plat/_x.so"] == 0o100755
    assert modes["demo/__init__.py"] == 0o100644
    assert modes["demo/readonly.txt"] == 0o100644  # normalised up to 644
    for info in infos.values():
        assert info.date_time == (1980, 1, 1, 0, 0, 0)
        assert info.create_system == 3
        assert info.flag_bits == 0
        assert info.extract_version == 20
        assert info.extra == b""
        assert info.comment == b""
    # no data descriptors: the local header carries CRC and sizes
    data = out.read_bytes()
    for info in infos.values():
        off = info.header_offset
        assert data[off : off + 4] == b"PK\x03\x04"
        assert int.from_bytes(data[off + 14 : off + 18], "little") == info.CRC
        assert int.from_bytes(data[off + 18 : off + 22], "little") == info.compress_size
        assert int.from_bytes(data[off + 22 : off + 26], "little") == info.file_size
        assert data[off + 10 : off + 14] == b"\x00\x00\x21\x00"  # 00:00:00 1980-01-01


def test_report_matches_file(demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "layer.zip"
    report = write_layer([demo], T312, out)
    data = out.read_bytes()
    assert report == LayerReport(
        path=out,
        zip_size=len(data),
        unzipped_size=sum(i.file_size for i in check_zip(out).values()),
        entries=len(EXPECTED_NAMES),
        sha256=hashlib.sha256(data).hexdigest(),
        dropped=report.dropped,
    )
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    assert sorted(os.listdir(tmp_path)) == sorted(["layer.zip", demo.name])


def test_writer_keeps_order_and_hashes_what_it_writes(tmp_path: Path) -> None:
    """Small pieces gathered into blocks and big ones passed as they are, in order."""
    big = layerzip._COPY_CHUNK
    pieces = [b"local", b"a" * 10, b"b" * (2 * big), b"c" * (big - 1), b"d", b"e" * big]
    pieces += [bytes([i]) * i for i in range(200)] + [b"f" * (big + 1), b"end"]
    out = tmp_path / "out.bin"
    with out.open("wb") as raw, layerzip._HashingWriter(raw) as writer:
        for piece in pieces:
            writer.write(piece)
    assert writer.offset == sum(map(len, pieces))
    assert out.read_bytes() == b"".join(pieces)
    assert writer.hexdigest() == hashlib.sha256(b"".join(pieces)).hexdigest()


class _Sink:
    """A file that keeps what it is given and which buffer each piece came in."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.buffers: set[int] = set()

    def write(self, data: memoryview) -> int:
        self.buffers.add(id(data.obj))
        self.data += data
        return len(data)


def test_writer_copies_through_a_few_buffers_made_once(tmp_path: Path) -> None:
    source = tmp_path / "source.bin"
    source.write_bytes(bytes(range(256)) * 4096)  # 1 MiB, four blocks
    sink = _Sink()
    with source.open("rb") as f, layerzip._HashingWriter(sink) as writer:  # type: ignore[arg-type]
        writer.write(b"head")
        assert writer.copy_from(f.fileno(), 10, 700_000) == 700_000
        assert writer.copy_from(f.fileno(), (1 << 20) - 5, 100) == 5  # the file ends
        writer.write(b"tail" * 100_000)
    expected = b"head" + source.read_bytes()[10:700_010] + source.read_bytes()[-5:]
    expected += b"tail" * 100_000
    assert bytes(sink.data) == expected
    assert writer.offset == len(expected)
    assert writer.hexdigest() == hashlib.sha256(expected).hexdigest()
    assert len(sink.buffers) <= layerzip._BLOCKS  # ~1.1 MB went through 3 buffers


def test_a_wheel_cut_short_after_it_was_read_leaves_no_zip(demo: Path, tmp_path: Path) -> None:
    ready = layerzip.prepare_wheel(demo, T312)
    blob = next(e for e in ready.entries if e.member == "demo/blob.bin")
    with demo.open("r+b") as f:
        f.truncate(blob.data_start + 10)
    out = tmp_path / "out" / "layer.zip"
    cut = r"demo-1.0-py3-none-any.whl: member '[^']+' is cut short \(the wheel is truncated\)"
    with pytest.raises(UnsafeWheel, match=cut):
        write_layer([demo], T312, out, prepared={demo: ready})
    assert list(out.parent.iterdir()) == []


class _FullDisk:
    def __init__(self) -> None:
        self.writes = 0

    def write(self, data: bytes) -> int:
        self.writes += 1
        raise OSError(28, "No space left on device")


def test_writer_raises_what_writing_raised() -> None:
    disk = _FullDisk()
    full = layerzip._HashingWriter(disk)  # type: ignore[arg-type]
    with pytest.raises(OSError, match="No space left on device"), full as writer:
        for _ in range(50):
            writer.write(b"x" * layerzip._COPY_CHUNK)
    assert disk.writes == 1  # nothing written after the error
    assert not [t for t in threading.enumerate() if t.name == "layerzip"]


def test_deterministic(demo: Path, tmp_path: Path) -> None:
    a = write_layer([demo], T312, tmp_path / "a.zip")
    b = write_layer([demo], T312, tmp_path / "b.zip")
    assert a.sha256 == b.sha256
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()


def test_deterministic_regardless_of_member_order_and_source_times(tmp_path: Path) -> None:
    members = [
        Member("pkg/b.py", b"b", DEFLATED, date_time=(2001, 1, 1, 0, 0, 0)),
        Member("pkg/a.py", b"a" * 100, STORED, date_time=(2022, 2, 2, 2, 2, 2)),
        Member("pkg/__init__.py", b"", DEFLATED),
    ]
    (tmp_path / "1").mkdir()
    (tmp_path / "2").mkdir()
    # no dist-info: its RECORD would list the members in their (different) order
    w1 = make_wheel(tmp_path / "1", "pkg", "1", members, dist_info=False)
    w2 = make_wheel(
        tmp_path / "2",
        "pkg",
        "1",
        [
            Member(m.name, m.data, m.compress, date_time=(2030, 12, 31, 23, 59, 58))
            for m in reversed(members)
        ],
        dist_info=False,
    )
    assert w1.read_bytes() != w2.read_bytes()
    a = write_layer([w1], T312, tmp_path / "a.zip")
    b = write_layer([w2], T312, tmp_path / "b.zip")
    assert a.sha256 == b.sha256


def test_site_packages_follows_target(demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "layer.zip"
    write_layer([demo], get_target("python3.9", "arm64"), out)
    names = list(check_zip(out))
    assert names[0].startswith("python/lib/python3.9/site-packages/")
    assert all(n.startswith("python/lib/python3.9/site-packages/") for n in names)


def test_several_wheels_interleave_sorted(tmp_path: Path) -> None:
    w1 = make_wheel(tmp_path, "zed", "1", [Member("zed/__init__.py", b"z"), Member("a.pth", b"")])
    w2 = make_wheel(tmp_path, "alpha", "2", [Member("alpha/__init__.py", b"a")])
    out = tmp_path / "layer.zip"
    report = write_layer([w1, w2], T312, out)
    names = [n[len(SP) + 1 :] for n in check_zip(out)]
    assert names == sorted(names)
    assert names[:3] == ["a.pth", "alpha-2.dist-info/METADATA", "alpha-2.dist-info/RECORD"]
    assert report.entries == 2 * 3 + 3
    assert read_all(out)[f"{SP}/zed/__init__.py"] == b"z"


def test_collisions_first_wheel_wins(tmp_path: Path) -> None:
    w1 = make_wheel(
        tmp_path, "one", "1", [Member("ns/same.py", b"same"), Member("ns/clash.py", b"first")]
    )
    w2 = make_wheel(
        tmp_path,
        "two",
        "1",
        [Member("ns/same.py", b"same", STORED), Member("ns/clash.py", b"second!")],
    )
    out = tmp_path / "layer.zip"
    report = write_layer([w1, w2], T312, out)
    layer = read_all(out)
    assert layer[f"{SP}/ns/clash.py"] == b"first"
    assert layer[f"{SP}/ns/same.py"] == b"same"
    assert report.collisions == (
        f"{SP}/ns/clash.py (kept from one-1-py3-none-any.whl; "
        "the different copy in two-1-py3-none-any.whl was left out)",
    )
    # the other order keeps the other copy
    report2 = write_layer([w2, w1], T312, tmp_path / "layer2.zip")
    assert read_all(tmp_path / "layer2.zip")[f"{SP}/ns/clash.py"] == b"second!"
    assert "kept from two-1-py3-none-any.whl" in report2.collisions[0]


def test_unicode_names_get_utf8_flag(tmp_path: Path) -> None:
    w = make_wheel(tmp_path, "uni", "1", [Member("uni/données.txt", b"ok")])
    out = tmp_path / "layer.zip"
    write_layer([w], T312, out)
    info = check_zip(out)[f"{SP}/uni/données.txt"]
    assert info.flag_bits == 0x800
    assert read_all(out)[f"{SP}/uni/données.txt"] == b"ok"


def test_source_data_descriptors_and_local_zip64_extra(tmp_path: Path) -> None:
    members = [
        Member("dd/a.py", TEXT, DEFLATED, force_zip64=True),
        Member("dd/b.bin", BLOB, STORED),
        Member("dd/c.py", b"c" * 5000, DEFLATED),
    ]
    w = make_wheel(tmp_path, "dd", "1", members, streaming=True)
    with zipfile.ZipFile(w) as zf:
        assert all(i.flag_bits & 0x08 for i in zf.infolist())  # data descriptors in source
    out = tmp_path / "layer.zip"
    write_layer([w], T312, out)
    infos = check_zip(out)
    assert all(i.flag_bits == 0 for i in infos.values())
    layer = read_all(out)
    for m in members:
        assert layer[f"{SP}/{m.name}"] == m.data


def test_forced_zip64_readable(demo: Path, tmp_path: Path) -> None:
    """Every ZIP64 record path (sizes, offsets, end records) via tiny limits."""
    entries = sorted(layerzip.prepare_wheel(demo, T312).entries, key=lambda e: e.name)
    out = tmp_path / "z64.zip"
    with out.open("wb") as raw, layerzip._HashingWriter(raw) as writer:
        layerzip._write_zip(writer, entries, len(entries), zip64_limit=0, zip64_count_limit=0)
    infos = check_zip(out)
    assert list(infos) == EXPECTED_NAMES
    assert all(i.extract_version == 45 for i in infos.values())
    data = out.read_bytes()
    assert b"PK\x06\x06" in data and b"PK\x06\x07" in data
    layer = read_all(out)
    assert layer[f"{SP}/demo/__init__.py"] == TEXT
    assert layer[f"{SP}/demo/blob.bin"] == BLOB


@pytest.mark.slow
def test_more_than_65535_entries(tmp_path: Path) -> None:
    n = 66_000
    w = make_wheel(tmp_path, "many", "1", [Member(f"many/m{i:05d}", b"", STORED) for i in range(n)])
    out = tmp_path / "layer.zip"
    report = write_layer([w], T312, out)
    assert report.entries == n + 3
    with zipfile.ZipFile(out) as zf:
        assert len(zf.infolist()) == n + 3
    data = out.read_bytes()
    assert b"PK\x06\x06" in data[-200:]
    assert data[-12:-10] == b"\xff\xff"  # the classic end record points at zip64
    unzip_t(out)


# -- unsafe wheels -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("member", "why"),
    [
        (Member("../evil.py", b"x"), "'..' segment"),
        (Member("pkg/../../evil.py", b"x"), "'..' segment"),
        (Member("/etc/evil", b"x"), "absolute path"),
        (Member("C:/evil", b"x"), "absolute path"),
        (Member("pkg\\evil.py", b"x"), "backslash"),
        (Member("pkg/evil\0.py", b"x"), "NUL"),
        (Member("pkg//evil.py", b"x"), "empty or '.'"),
        (Member("./evil.py", b"x"), "empty or '.'"),
        (Member("pkg/.", b"x"), "empty or '.'"),
        (Member("", b"x"), "empty or '.'"),
        (
            Member("pkg/link", b"/etc/passwd", STORED, mode=0o777, file_type=stat.S_IFLNK),
            "symbolic link",
        ),
    ],
)
def test_unsafe_members_rejected(tmp_path: Path, member: Member, why: str) -> None:
    w = make_wheel(tmp_path, "bad", "1", [Member("bad/__init__.py", b""), member])
    out = tmp_path / "out" / "layer.zip"
    with pytest.raises(UnsafeWheel) as info:
        write_layer([w], T312, out)
    message = str(info.value)
    assert message.startswith("bad-1-py3-none-any.whl: member ")
    assert repr(member.name) in message
    assert why in message
    assert not out.exists()
    assert not (out.parent.exists() and os.listdir(out.parent))


def test_every_name_refused_is_looked_at() -> None:
    """_check_member's fast path (_suspect) lets no name through that its full
    checks refuse: every name of up to 5 characters from a hostile alphabet."""
    for length in range(6):
        for chars in itertools.product("a./\\:\0", repeat=length):
            name = "".join(chars)
            with pytest.raises(UnsafeWheel) as info:  # encrypted: the full checks run
                layerzip._check_member(Path("w.whl"), name, 0x1, 20, 0)
            if "is encrypted" not in str(info.value):
                assert layerzip._suspect(name), name


def test_encrypted_member_rejected(tmp_path: Path) -> None:
    w = make_wheel(tmp_path, "enc", "1", [Member("enc/secret.py", b"x")])
    patch_flags(w, {"enc/secret.py": 0x1})
    with pytest.raises(UnsafeWheel, match=r"member 'enc/secret.py' is encrypted"):
        write_layer([w], T312, tmp_path / "layer.zip")


def test_local_name_differing_from_central_rejected(tmp_path: Path) -> None:
    w = make_wheel(tmp_path, "two", "1", [Member("two/good.py", b"x")])
    patch_local_name(w, "two/good.py", "../goody.py")
    with pytest.raises(UnsafeWheel, match=r"'two/good.py' is named b'\.\./goody\.py'"):
        write_layer([w], T312, tmp_path / "layer.zip")
    assert not (tmp_path / "layer.zip").exists()


def test_not_a_zip(tmp_path: Path) -> None:
    w = tmp_path / "junk-1-py3-none-any.whl"
    w.write_bytes(b"this is not a zip")
    with pytest.raises(UnsafeWheel, match=r"junk-1-py3-none-any\.whl is not a readable zip"):
        write_layer([w], T312, tmp_path / "layer.zip")


def test_truncated_wheel_leaves_old_output_and_no_temp(demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "layer.zip"
    out.parent.mkdir()
    out.write_bytes(b"previous")
    # keep the central directory, zero the start of the data: local headers break
    data = bytearray(demo.read_bytes())
    data[0:4] = b"XXXX"
    broken = tmp_path / "broken" / demo.name
    broken.parent.mkdir()
    broken.write_bytes(bytes(data))
    with pytest.raises(UnsafeWheel, match="no valid local header"):
        write_layer([broken], T312, out)
    assert out.read_bytes() == b"previous"
    assert not [t for t in threading.enumerate() if t.name == "layerzip"]  # stopped
    assert os.listdir(out.parent) == ["layer.zip"]


def test_symlinks_refused_before_writing_anything(tmp_path: Path) -> None:
    good = make_wheel(tmp_path, "good", "1", [Member("good/x.py", b"x")])
    bad = make_wheel(tmp_path, "bad", "1", [Member("bad/l", b"x", STORED, file_type=stat.S_IFLNK)])
    with pytest.raises(UnsafeWheel, match=r"bad-1-py3-none-any\.whl: member 'bad/l'"):
        write_layer([good, bad], T312, tmp_path / "out" / "layer.zip")
    assert not (tmp_path / "out" / "layer.zip").exists()


# -- real wheels -------------------------------------------------------------------------


def _real_wheels() -> list[Path]:
    """The smallest recorded wheel of each project (pure ones and ones with .so files)."""
    if not FIXTURE_FILES.is_dir():
        return []
    smallest: dict[str, Path] = {}
    for wheel in sorted(FIXTURE_FILES.rglob("*.whl"), key=lambda p: (p.stat().st_size, p.name)):
        smallest.setdefault(wheel.name.split("-")[0].lower(), wheel)
    return sorted(smallest.values(), key=lambda p: p.name)


def _fixture(pattern: str) -> Path | None:
    found = (
        sorted(FIXTURE_FILES.rglob(pattern), key=lambda p: p.name) if FIXTURE_FILES.is_dir() else []
    )
    return found[-1] if found else None


@pytest.mark.parametrize("wheel", _real_wheels(), ids=lambda p: p.name)
def test_real_wheel_every_member_identical(wheel: Path, tmp_path: Path) -> None:
    out = tmp_path / "layer.zip"
    report = write_layer([wheel], T312, out)
    infos = check_zip(out)
    original = read_all(wheel)
    layer = read_all(out)
    expected = {}
    for name, data in original.items():
        if name.endswith("/"):
            continue
        head, _, rest = name.partition("/")
        if head.endswith(".data"):
            scheme, _, rel = rest.partition("/")
            if scheme not in ("purelib", "platlib"):
                assert name in report.dropped
                continue
            name = rel
        expected[f"{SP}/{name}"] = data
    assert layer == expected
    assert report.unzipped_size == sum(i.file_size for i in infos.values())
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            if not info.filename.endswith("/") and ".data/" not in info.filename:
                assert raw_member_bytes(wheel, info.filename) == raw_member_bytes(
                    out, f"{SP}/{info.filename}"
                )


def test_real_wheels_found_or_not_yet_recorded() -> None:
    """Makes the absence of fixtures visible rather than silently skipping."""
    if not _real_wheels():
        pytest.skip("no wheels under fixtures/files yet")
    assert all(zipfile.is_zipfile(w) for w in _real_wheels())


def test_real_extension_keeps_exec_bit(tmp_path: Path) -> None:
    wheel = _fixture("markupsafe-*-cp312-cp312-manylinux*x86_64*.whl")
    if wheel is None:
        pytest.skip("markupsafe cp312 wheel not recorded")
    out = tmp_path / "layer.zip"
    write_layer([wheel], T312, out)
    modes = {n: i.external_attr >> 16 for n, i in check_zip(out).items()}
    so = [n for n in modes if n.endswith(".so")]
    assert so and all(modes[n] == 0o100755 for n in so)
    assert all(modes[n] == 0o100644 for n in modes if n.endswith(".py"))
    assert modes[next(n for n in modes if n.endswith("dist-info/RECORD"))] == 0o100644


def test_real_layer_imports_on_target_python(tmp_path: Path) -> None:
    """requests and its pure dependencies, re-rooted, import on the target's Python."""
    python = sorted(Path("/root/.pyenv/versions").glob("3.12.*/bin/python3.12"))
    names = ["requests-*", "urllib3-*", "idna-*", "certifi-*", "charset_normalizer-*none-any"]
    wheels = [_fixture(f"{n}.whl") for n in names]
    if not python or any(w is None for w in wheels):
        pytest.skip("python3.12 or the recorded requests stack is missing")
    out = tmp_path / "layer.zip"
    report = write_layer([w for w in wheels if w is not None], T312, out)
    assert report.collisions == ()
    root = tmp_path / "opt"
    with zipfile.ZipFile(out) as zf:
        zf.extractall(root)
    code = "import requests, urllib3, idna, certifi, charset_normalizer; print(requests.__file__)"
    proc = subprocess.run(
        [
            str(python[-1]),
            "-I",
            "-S",
            "-c",
            f"import sys; sys.path[:0] = [sys.argv[1]]; {code}",
            str(root / SP),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(root / SP / "requests" / "__init__.py")


def test_local_headers_read_in_windows_find_every_members_data(tmp_path: Path) -> None:
    # sizes that put headers on both sides of, and across, each read window's end
    window = layerzip._HEAD_WINDOW
    sizes = [window - 40, 7, 0, 3 * window + 11, 1, window // 2, window - 90, 5, 2 * window]
    members = [
        Member(f"win/m{i:02d}.bin", os.urandom(n), compress=zipfile.ZIP_STORED)
        for i, n in enumerate(sizes)
    ]
    w = make_wheel(tmp_path, "win", "1", members)
    ready = layerzip.prepare_wheel(w, T312)
    data = w.read_bytes()
    for i, member in enumerate(ready.members):
        e = ready.entry(i)
        assert data[e.data_start : e.data_start + e.compress_size] == raw_member_bytes(w, member)
    # a layer made from it holds the same bytes
    out = write_layer([w], T312, tmp_path / "layer.zip")
    with zipfile.ZipFile(out.path) as layer:
        for m in members:
            assert layer.read(f"python/lib/python3.12/site-packages/{m.name}") == m.data


def test_members_lying_together_are_copied_in_runs(tmp_path: Path) -> None:
    small = [Member(f"run/s{i:02d}.py", os.urandom(300 + i)) for i in range(30)]
    big = Member("run/zbig.bin", os.urandom(3 * layerzip._RUN_BYTES), compress=zipfile.ZIP_STORED)
    w = make_wheel(tmp_path, "run", "1", [*small, big])
    other = make_wheel(tmp_path, "other", "1", [Member("other/o.py", b"o = 1\n")])
    readies = [layerzip.prepare_wheel(x, T312) for x in (w, other)]
    rows = [r.row(i) for r in readies for i in range(len(r.paths))]
    runs = list(layerzip._runs(rows))
    assert [e for run in runs for e in run] == rows  # every entry, in order
    sizes = [len(run) for run in runs]
    # the 30 small members (and dist-info's first after them) together, the big one
    # alone, the other wheel's apart from this one's
    assert sizes[0] == 30 and [len(r) for r in runs if r[0][3] == "run/zbig.bin"] == [1]
    assert all(len({e[2] for e in run}) == 1 for run in runs)
    for run in runs:
        assert run[-1][9] + run[-1][6] - run[0][9] <= layerzip._RUN_BYTES or len(run) == 1
    # members out of file order start a new run
    assert [len(r) for r in layerzip._runs([rows[1], rows[0]])] == [1, 1]
    out = write_layer(
        [w, other], T312, tmp_path / "layer.zip", prepared=dict(zip((w, other), readies))
    )
    with zipfile.ZipFile(out.path) as layer:
        for m in [*small, big]:
            assert layer.read(f"python/lib/python3.12/site-packages/{m.name}") == m.data


def test_a_wheel_cut_short_inside_a_run_names_the_member(tmp_path: Path) -> None:
    small = [Member(f"run/s{i:02d}.py", os.urandom(300)) for i in range(10)]
    w = make_wheel(tmp_path, "run", "1", small, dist_info=False)  # s05 is then first cut
    ready = layerzip.prepare_wheel(w, T312)
    s05 = next(e for e in ready.entries if e.member == "run/s05.py")
    with w.open("r+b") as f:
        f.truncate(s05.data_start + 10)
    with pytest.raises(
        UnsafeWheel, match=r"run-1-py3-none-any.whl: member 'run/s05.py' is cut short"
    ):
        write_layer([w], T312, tmp_path / "layer.zip", prepared={w: ready})
    assert not (tmp_path / "layer.zip").exists()
