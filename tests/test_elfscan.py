"""ELF members read from the wheels while they download give ``verify`` the very
report it gives reading them from the layer zip, and only for the same bytes."""

from __future__ import annotations

import hashlib
import json
import random
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec.structs
import pytest
import responses
from elfbuild import EM_AARCH64, make_elf
from fakeindex import FILES_URL, INDEX_URL, serve
from wheelfactory import Member, make_wheel, raw_member_bytes

import layerbuilder.verify_elf
from layerbuilder import elfscan
from layerbuilder.build import build_layer
from layerbuilder.elf import ElfInfo
from layerbuilder.elfscan import (
    MemberKey,
    SmallSteps,
    WheelScan,
    WheelScans,
    may_be_elf,
    merge_scans,
    scan_wheel,
)
from layerbuilder.errors import IntegrityError
from layerbuilder.layerzip import prepare_wheel, write_layer
from layerbuilder.plan import Plan
from layerbuilder.resolver import resolve
from layerbuilder.targets import Target, get_target
from layerbuilder.verify import LayerVerificationFailed, VerifyReport, verify_layer

PY312 = Target("python3.12", "x86_64")
SITE = "python/lib/python3.12/site-packages"
EXT = "cpython-312-x86_64-linux-gnu.so"
MANYLINUX = "cp312-cp312-manylinux_2_17_x86_64"

GOOD = make_elf(needed=["libc.so.6"], verneed={"libc.so.6": ["GLIBC_2.17"]})
ARM = make_elf(machine=EM_AARCH64, needed=["libc.so.6"], verneed={"libc.so.6": ["GLIBC_2.17"]})
NEW_GLIBC = make_elf(
    needed=["libc.so.6"],
    verneed={"libc.so.6": ["GLIBC_2.39"]},
    symbols=[("pidfd_spawn", "GLIBC_2.39")],
)
BROKEN = b"\x7fELF\x02\x01\x01" + b"\0" * 9 + b"\x03\x00" + b"\xff" * 40  # header cut short
NEEDS_MISSING = make_elf(needed=["libnowhere.so.3"])


def good_wheel(directory: Path) -> Path:
    return make_wheel(
        directory,
        "good",
        "1.0",
        [
            Member("good/__init__.py", b"from ._c import *\n"),
            Member(f"good/_c.{EXT}", GOOD),
            Member("good/data.bin", bytes(range(256)) * 8),
            Member("good.libs/libhelper.so.1", GOOD, compress=zipfile.ZIP_STORED),
        ],
        tag=MANYLINUX,
    )


def bad_wheel(directory: Path) -> Path:
    return make_wheel(
        directory,
        "bad",
        "1.0",
        [
            Member("bad/__init__.py", b""),
            Member(f"bad/_arm.{EXT}", ARM),
            Member(f"bad/_new.{EXT}", NEW_GLIBC),
            Member("bad/_broken.so", BROKEN),
            Member(f"bad/_needs.{EXT}", NEEDS_MISSING),
        ],
        tag=MANYLINUX,
    )


def candidates(layer: Path) -> set[MemberKey]:
    """The keys of the members verify opens to look for ELF files."""
    with zipfile.ZipFile(layer) as zf:
        return {MemberKey.of(i) for i in zf.infolist() if may_be_elf(i)}


@pytest.fixture
def zip_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The members verify reads from the layer zip itself."""
    reads: list[str] = []
    real = layerbuilder.verify_elf.read_member

    def spy(zf: zipfile.ZipFile, info: zipfile.ZipInfo, want: Any) -> Any:
        reads.append(info.filename)
        return real(zf, info, want)

    monkeypatch.setattr(layerbuilder.verify_elf, "read_member", spy)
    return reads


def same_report(a: VerifyReport, b: VerifyReport) -> None:
    assert a.to_json() == b.to_json()
    assert a.format_text() == b.format_text()
    errors = []
    for report in (a, b):
        try:
            report.raise_for_errors()
        except LayerVerificationFailed as exc:
            errors.append(str(exc))
    assert errors[:1] == errors[1:]


# -- scan_wheel and verify_layer(scanned=...) ------------------------------------------


def test_report_is_the_same_with_and_without_the_scans(
    tmp_path: Path, zip_reads: list[str]
) -> None:
    wheels = [good_wheel(tmp_path), bad_wheel(tmp_path)]
    layer = write_layer(wheels, PY312, tmp_path / "l.zip").path
    scanned = merge_scans(scan_wheel(w, PY312) for w in wheels)
    # every member verify would open was read from the wheels, ELF or not
    assert set(scanned) == candidates(layer)
    kinds = sorted(type(v).__name__ for v in scanned.values())
    assert kinds == ["ElfError"] + ["ElfInfo"] * 5 + ["NoneType"], kinds

    plain = verify_layer(layer, PY312)
    assert len(zip_reads) == len(scanned)
    zip_reads.clear()
    ahead = verify_layer(layer, PY312, scanned=scanned)
    assert zip_reads == []
    same_report(ahead, plain)
    # and the report is not empty: every kind of ELF problem is in it
    assert {(f.level, f.check, f.path) for f in plain.findings} == {
        ("error", "elf-machine", f"{SITE}/bad/_arm.{EXT}"),
        ("error", "glibc", f"{SITE}/bad/_new.{EXT}"),
        ("error", "elf", f"{SITE}/bad/_broken.so"),
        ("warning", "needed-library", f"{SITE}/bad/_needs.{EXT}"),  # manylinux: optional
    }
    glibc = next(f for f in plain.findings if f.check == "glibc")
    assert glibc.message.startswith("needs GLIBC_2.39 (pidfd_spawn), but python3.12")
    broken = next(f for f in plain.findings if f.check == "elf")
    assert broken.message.startswith("starts like an ELF file but cannot be read (")


def test_the_scans_are_what_verify_uses(tmp_path: Path) -> None:
    """A scanned result is taken as it is (so the keying below is what keeps it right)."""
    wheel = good_wheel(tmp_path)
    layer = write_layer([wheel], PY312, tmp_path / "l.zip").path
    scanned = merge_scans([scan_wheel(wheel, PY312)])
    key = next(k for k in scanned if k.name == f"{SITE}/good/_c.{EXT}")
    value = scanned[key]
    assert isinstance(value, ElfInfo)
    forged = dict(scanned)
    forged[key] = msgspec.structs.replace(value, machine=EM_AARCH64)
    report = verify_layer(layer, PY312, scanned=forged)
    assert [(f.check, f.path) for f in report.errors] == [("elf-machine", key.name)]
    assert verify_layer(layer, PY312, scanned=scanned).findings == ()


def test_a_member_whose_crc_differs_is_read_from_the_zip(
    tmp_path: Path, zip_reads: list[str]
) -> None:
    """Scans of an older build of a wheel: same name and sizes, other bytes."""
    name = f"pkg/_c.{EXT}"
    assert len(ARM) == len(GOOD)
    (tmp_path / "v1").mkdir()
    (tmp_path / "v2").mkdir()
    stored = zipfile.ZIP_STORED  # so the compressed sizes are equal too
    v1 = make_wheel(tmp_path / "v1", "pkg", "1.0", [Member(name, GOOD, compress=stored)])
    v2 = make_wheel(tmp_path / "v2", "pkg", "1.0", [Member(name, ARM, compress=stored)])
    layer = write_layer([v2], PY312, tmp_path / "l.zip").path
    scanned = merge_scans([scan_wheel(v1, PY312)])

    (cached,) = (k for k in scanned if k.name == f"{SITE}/{name}")
    (actual,) = (k for k in candidates(layer) if k.name == f"{SITE}/{name}")
    assert cached._replace(crc=actual.crc) == actual and cached.crc != actual.crc

    plain = verify_layer(layer, PY312)
    zip_reads.clear()
    ahead = verify_layer(layer, PY312, scanned=scanned)
    assert zip_reads == [actual.name]
    same_report(ahead, plain)
    assert [(f.check, f.path) for f in ahead.errors] == [("elf-machine", actual.name)]


def test_a_key_two_wheels_give_is_read_from_the_zip(tmp_path: Path, zip_reads: list[str]) -> None:
    shared = Member(f"shared/_c.{EXT}", ARM)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = make_wheel(tmp_path / "a", "a", "1.0", [shared, Member("a/x.so", GOOD)])
    b = make_wheel(tmp_path / "b", "b", "1.0", [shared])
    layer = write_layer([a, b], PY312, tmp_path / "l.zip").path
    scans = [scan_wheel(a, PY312), scan_wheel(b, PY312)]
    key = next(k for k in scans[0].read if k.name.endswith("shared/_c." + EXT))
    assert key in scans[1].read
    scanned = merge_scans(scans)
    assert key not in scanned and any(k.name.endswith("a/x.so") for k in scanned)

    plain = verify_layer(layer, PY312)
    zip_reads.clear()
    same_report(verify_layer(layer, PY312, scanned=scanned), plain)
    assert zip_reads == [key.name]


def test_a_name_a_wheel_holds_twice_is_read_from_the_zip(tmp_path: Path) -> None:
    name = f"dup/_c.{EXT}"
    same = make_wheel(tmp_path, "same", "1.0", [Member(name, ARM), Member(name, ARM)])
    scan = scan_wheel(same, PY312)
    assert [k.name for k in scan.unread] == [f"{SITE}/{name}"]
    assert all(k.name != f"{SITE}/{name}" for k in scan.read)

    other = make_wheel(tmp_path, "other", "1.0", [Member(name, ARM), Member(name, GOOD)])
    layer = write_layer([other], PY312, tmp_path / "l.zip").path
    scanned = merge_scans([scan_wheel(other, PY312)])
    same_report(verify_layer(layer, PY312, scanned=scanned), verify_layer(layer, PY312))
    assert any(f.check == "elf-machine" for f in verify_layer(layer, PY312).findings)


def test_an_unreadable_member_is_left_to_the_zip(tmp_path: Path, zip_reads: list[str]) -> None:
    """Even when another wheel holds an intact copy with the same key."""
    name = f"pkg/_c.{EXT}"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    wheel = make_wheel(tmp_path / "a", "pkg", "1.0", [Member(name, GOOD)])
    intact = make_wheel(tmp_path / "b", "copy", "1.0", [Member(name, GOOD)])
    data = wheel.read_bytes()
    at = data.index(raw_member_bytes(wheel, name))
    wheel.write_bytes(data[:at] + b"\xff" + data[at + 1 :])  # a reserved deflate block type
    layer = write_layer([wheel, intact], PY312, tmp_path / "l.zip").path

    scans = [scan_wheel(wheel, PY312), scan_wheel(intact, PY312)]
    assert [k.name for k in scans[0].unread] == [f"{SITE}/{name}"]
    assert set(scans[0].unread) <= set(scans[1].read)  # the same key, readable there
    plain = verify_layer(layer, PY312)
    zip_reads.clear()
    same_report(verify_layer(layer, PY312, scanned=merge_scans(scans)), plain)
    assert zip_reads == [f"{SITE}/{name}"]
    assert [(f.check, f.path) for f in plain.errors] == [("zip", f"{SITE}/{name}")]


# -- WheelScans ----------------------------------------------------------------------


def _scan_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("layerbuilder-scan")]


def test_closing_cancels_pending_scans_and_stops_running_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[str] = []
    running = threading.Event()

    def slow(open_: Any, todo: Any, want: Any, stop: threading.Event) -> WheelScan:
        started.append(threading.current_thread().name)
        running.set()
        assert stop.wait(10)  # until close() says stop
        return WheelScan({}, frozenset())

    monkeypatch.setattr(elfscan, "_read_members", slow)
    scans = WheelScans(PY312, workers=1)
    wheels = []
    for i in range(3):
        (tmp_path / str(i)).mkdir()
        wheels.append(good_wheel(tmp_path / str(i)))
    for wheel in wheels:
        scans.submit(wheel)
    assert running.wait(10)
    scans.close()
    assert len(started) == 1  # the other wheels' reads never started
    assert _scan_threads() == []
    scans.submit(tmp_path / "late.whl")  # ignored once closed
    assert len(started) == 1
    assert scans.results(wheels) == {}


def test_scans_of_prepared_wheels_read_the_same(tmp_path: Path, zip_reads: list[str]) -> None:
    """From prepare_wheel's entries (no second read of the wheel's directory),
    the same members are read with the same results."""
    wheels = [good_wheel(tmp_path), bad_wheel(tmp_path)]
    with WheelScans(PY312) as scans:
        for wheel in wheels:
            scans.submit(wheel)
        want = scans.results(wheels)
    with WheelScans(PY312) as scans:
        for wheel in wheels:
            scans.submit(wheel, prepare_wheel(wheel, PY312))
        got = scans.results(wheels)
    assert _comparable(got) == _comparable(want)
    kinds = sorted(type(v).__name__ for v in got.values())
    assert kinds == ["ElfError"] + ["ElfInfo"] * 5 + ["NoneType"], kinds
    # a wheel prepared for another runtime (another site-packages) is read afresh
    py311 = get_target("python3.11", "x86_64")
    with WheelScans(PY312) as scans:
        for wheel in wheels:
            scans.submit(wheel, prepare_wheel(wheel, py311))
        assert _comparable(scans.results(wheels)) == _comparable(want)


def _comparable(scanned: dict[Any, Any]) -> dict[Any, Any]:
    """Errors compare by identity: compare them by what they say."""
    return {k: repr(v) if isinstance(v, BaseException) else v for k, v in scanned.items()}


def test_results_are_empty_unless_every_wheel_was_scanned(tmp_path: Path) -> None:
    good = good_wheel(tmp_path)
    not_a_zip = tmp_path / "broken-1.0-py3-none-any.whl"
    not_a_zip.write_bytes(b"PK not really")
    with WheelScans(PY312) as scans:
        scans.submit(good)
        assert len(scans.results([good])) == len(scan_wheel(good, PY312).read) > 0
        assert scans.results([good, not_a_zip]) == {}  # not_a_zip was never handed over
        scans.submit(not_a_zip)
        assert scans.results([good, not_a_zip]) == {}  # its scan failed
    assert _scan_threads() == []


# -- build_layer ---------------------------------------------------------------------


@pytest.fixture
def crafted_index(tmp_path: Path) -> Iterator[Any]:
    """An index of the projects ``good`` and ``bad`` (see above)."""
    fixtures = tmp_path / "index-fixtures"
    (fixtures / "index").mkdir(parents=True)
    (fixtures / "files" / "wheels").mkdir(parents=True)
    for wheel in (good_wheel(fixtures / "files/wheels"), bad_wheel(fixtures / "files/wheels")):
        data = wheel.read_bytes()
        project = wheel.name.split("-", 1)[0]
        entry = {
            "filename": wheel.name,
            "url": f"{FILES_URL}/wheels/{wheel.name}",
            "digests": {"sha256": hashlib.sha256(data).hexdigest()},
            "size": len(data),
            "requires_python": None,
            "yanked": False,
            "upload_time_iso_8601": "2025-01-01T00:00:00.000000Z",
        }
        doc = {"info": {"name": project, "version": "1.0"}, "releases": {"1.0": [entry]}}
        (fixtures / "index" / f"{project}.json").write_text(json.dumps(doc))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        serve(rsps, fixtures)
        yield rsps


def test_build_verifies_from_the_scans_with_the_same_outcome(
    crafted_index: Any, tmp_path: Path, zip_reads: list[str]
) -> None:
    out = tmp_path / "out" / "l.zip"
    unverified = build_layer(["good", "bad"], output=out, index_url=INDEX_URL, verify=False)
    expected = verify_layer(out, PY312)
    assert not expected.ok
    zip_reads.clear()
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    out.unlink()

    with pytest.raises(LayerVerificationFailed) as err:
        build_layer(["good", "bad"], output=out, index_url=INDEX_URL)
    assert zip_reads == []  # every ELF member was read during the download
    same_report(err.value.report, expected)
    with pytest.raises(LayerVerificationFailed) as again:
        expected.raise_for_errors()
    assert str(err.value) == str(again.value)
    assert not out.exists()
    assert _scan_threads() == []

    good = build_layer(["good"], output=out, index_url=INDEX_URL)
    assert zip_reads == []
    assert list(good.timings) == ["resolve", "download", "zip", "verify"]
    assert unverified.zip_sha256 == digest


def test_failed_download_cancels_the_scans_and_leaves_nothing(
    fake_index: Any, tmp_path: Path
) -> None:
    plan = resolve(["requests"], PY312, index_url=INDEX_URL)
    last = plan.packages[-1]
    bad = msgspec.structs.replace(last, file=msgspec.structs.replace(last.file, sha256="0" * 64))
    out, work = tmp_path / "l.zip", tmp_path / "work"
    with pytest.raises(IntegrityError, match=last.file.filename):
        build_layer(
            Plan(plan.target, (*plan.packages[:-1], bad)),
            output=out,
            work_dir=work,
            index_url=INDEX_URL,
        )
    assert not out.exists()
    assert list(work.iterdir()) == []
    assert _scan_threads() == []
    assert not [t for t in threading.enumerate() if t.name.startswith("layerbuilder-")]


def test_scan_wheel_keys_members_as_write_layer_places_them(tmp_path: Path) -> None:
    wheel = make_wheel(
        tmp_path,
        "pkg",
        "1.0",
        [
            Member(f"pkg-1.0.data/platlib/pkg/_c.{EXT}", GOOD),
            Member("pkg-1.0.data/purelib/pkg/_pure.so", ARM),
            Member("pkg-1.0.data/scripts/tool", GOOD),  # dropped from the layer
            Member("pkg-1.0.data/data/share/lib.so", GOOD),  # dropped too
            Member("pkg/sub/", b""),  # a directory entry
            Member("pkg/readme.txt", b"\x7fELF not really"),  # never opened
            Member("pkg/tiny", b"\x7fE"),  # too small to be ELF
            Member("pkg/bin/tool", b"#!/bin/sh\n", mode=0o755),
            Member("pkg-1.0.dist-info/licenses/LICENSE", b"MIT License"),
        ],
    )
    scan = scan_wheel(wheel, PY312)
    assert scan.unread == frozenset()
    assert {k.name: type(v).__name__ for k, v in scan.read.items()} == {
        f"{SITE}/pkg/_c.{EXT}": "ElfInfo",
        f"{SITE}/pkg/_pure.so": "ElfInfo",
        f"{SITE}/pkg/bin/tool": "NoneType",
        f"{SITE}/pkg-1.0.dist-info/licenses/LICENSE": "NoneType",
    }
    # exactly the keys of the layer members verify would open
    layer = write_layer([wheel], PY312, tmp_path / "l.zip").path
    assert set(scan.read) == candidates(layer)
    with zipfile.ZipFile(wheel) as zf:
        info = zf.getinfo(f"pkg-1.0.data/platlib/pkg/_c.{EXT}")
    assert MemberKey(
        f"{SITE}/pkg/_c.{EXT}", info.CRC, info.compress_size, info.file_size, info.compress_type
    ) in set(scan.read)


def test_small_steps_reads_like_a_file_and_keeps_the_head(tmp_path: Path) -> None:
    data = random.Random(7).randbytes(3 << 20)
    with zipfile.ZipFile(tmp_path / "m.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("lib.so", data)
    rewinds = 0
    with zipfile.ZipFile(tmp_path / "m.zip") as zf, zf.open("lib.so") as raw:
        real_seek = raw.seek

        def seek(offset: int, whence: int = 0) -> int:
            nonlocal rewinds
            rewinds += 1
            return real_seek(offset, whence)

        raw.seek = seek  # type: ignore[method-assign]
        f = SmallSteps(raw)
        # the way read_elf goes: the header, far ahead to PT_DYNAMIC, back to the tables
        for offset, n in [(0, 4), (0, 65536), (2_900_000, 65536), (300_000, 4096), (10, 7)]:
            assert f.seek(offset) == offset
            assert f.read(n) == data[offset : offset + n], (offset, n)
        assert rewinds == 0
        f.seek(SmallSteps.HEAD - 3)  # across the end of the kept head
        assert f.read(10) == data[SmallSteps.HEAD - 3 : SmallSteps.HEAD + 7]
        assert rewinds == 1
        f.seek(1_000_000)  # ahead: no need to go back
        assert f.read(100) == data[1_000_000:1_000_100]
        assert rewinds == 1
        f.seek(900_000)  # behind, past the head: inflated again from the top
        assert f.read(100) == data[900_000:900_100]
        assert rewinds == 2
        assert f.tell() == 900_100
        f.seek(100, 1)
        assert f.read(5) == data[900_200:900_205]
        f.seek(len(data) - 2)
        assert f.read(10) == data[-2:]
        f.seek(len(data) + 10)
        assert f.read(5) == b""
        f.seek(SmallSteps.HEAD - 5)
        assert f.read() == data[SmallSteps.HEAD - 5 :]
