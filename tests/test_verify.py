"""``verify`` on layer zips holding real gcc-built ELF files, hand-made ELF
files, real wheels from fixtures/, and zips with crafted central directories."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from elfbuild import EM_386, EM_AARCH64, compile_so, make_elf

from layerbuilder.errors import VerificationFailed
from layerbuilder.linker import base_image
from layerbuilder.targets import RUNTIMES, Target
from layerbuilder.verify import (
    CHECKS,
    Finding,
    VerifyReport,
    verify_zipfile,
)
from layerbuilder.verify import verify_layer as _verify_layer

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_FILES = ROOT / "fixtures" / "files"

PY311 = Target("python3.11", "x86_64")
PY312 = Target("python3.12", "x86_64")
SITE311 = "python/lib/python3.11/site-packages"
SITE312 = "python/lib/python3.12/site-packages"
EXT312 = "cpython-312-x86_64-linux-gnu.so"


def verify_layer(path: str | Path, target: Target, **kw: Any) -> VerifyReport:
    """:func:`layerbuilder.verify.verify_layer`, which reads the zip in place
    (zipread and RawMember), checked against :func:`verify_zipfile` on the same zip
    (zipfile's ZipInfo and reads): every test here gives both the same report."""
    report = _verify_layer(path, target, **kw)
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile, ValueError, EOFError):
        assert [f.check for f in report.findings] == ["zip"]  # both cannot open it
        return report
    with zf:
        again = verify_zipfile(zf, target, name=str(path), **kw)
    assert again.to_json() == report.to_json()
    return report


PLAIN = "int answer(void) { return 42; }\n"
FCNTL = "#include <fcntl.h>\nint f(int fd) { return fcntl(fd, F_GETFD); }\n"
PIDFD = (
    "#include <sys/pidfd.h>\n#include <unistd.h>\nint p(void) { return pidfd_open(getpid(), 0); }\n"
)


def make_layer(path: Path, members: Mapping[str, bytes | Path | str]) -> Path:
    """A layer zip of *members* (bytes, a file to copy, or text), deflated."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in members.items():
            if isinstance(content, Path):
                content = content.read_bytes()
            zf.writestr(name, content)
    return path


def found(report: VerifyReport) -> set[tuple[str, str, str]]:
    return {(f.level, f.check, f.path) for f in report.findings}


def only(report: VerifyReport, check: str) -> Finding:
    matches = [f for f in report.findings if f.check == check]
    assert len(matches) == 1, report.format_text()
    return matches[0]


@pytest.fixture
def plain_so(tmp_path: Path) -> Path:
    return compile_so(tmp_path / "build" / "plain.so", PLAIN)


# -- a clean layer ----------------------------------------------------------------------


def test_clean_layer_has_no_findings(tmp_path: Path, plain_so: Path) -> None:
    zip_path = make_layer(
        tmp_path / "ok.zip",
        {
            f"{SITE312}/pkg/__init__.py": "from ._speed import answer\n",
            f"{SITE312}/pkg/_speed.{EXT312}": plain_so,
            f"{SITE312}/pkg/_limited.abi3.so": plain_so,
            f"{SITE312}/pkg-1.0.dist-info/METADATA": "Name: pkg\n",
            "python/top_level_module.py": "x = 1\n",
            "lib/libextra.so.1": plain_so,
            "bin/tool": "#!/bin/sh\n",
        },
    )
    report = verify_layer(zip_path, PY312)
    assert report.findings == (), report.format_text()
    assert report.ok
    assert report.files == 7 and report.elf_files == 3
    assert report.unzipped_size == sum(i.file_size for i in zipfile.ZipFile(zip_path).infolist())
    assert report.format_text().startswith("OK: ")
    report.raise_for_errors()  # no errors: does not raise


# -- glibc ----------------------------------------------------------------------------


def test_too_new_glibc_symbol_is_named(tmp_path: Path) -> None:
    so = compile_so(tmp_path / "b" / "f.so", FCNTL)
    ext = f"{SITE311}/pkg/_io.cpython-311-x86_64-linux-gnu.so"
    report = verify_layer(make_layer(tmp_path / "l.zip", {ext: so}), PY311)
    finding = only(report, "glibc")
    assert (finding.level, finding.path) == ("error", ext)
    assert "GLIBC_2.28 (fcntl64)" in finding.message
    assert "glibc 2.26" in finding.message and "Amazon Linux 2" in finding.message
    assert "manylinux_2_26" in finding.message
    assert not report.ok


def test_glibc_2_28_is_fine_on_amazon_linux_2023(tmp_path: Path) -> None:
    so = compile_so(tmp_path / "b" / "f.so", FCNTL)
    report = verify_layer(make_layer(tmp_path / "l.zip", {f"{SITE312}/f.{EXT312}": so}), PY312)
    assert report.findings == ()


def test_glibc_newer_than_2_34_fails_on_amazon_linux_2023(tmp_path: Path) -> None:
    so = compile_so(tmp_path / "b" / "p.so", PIDFD + FCNTL)
    report = verify_layer(make_layer(tmp_path / "l.zip", {f"{SITE312}/p.{EXT312}": so}), PY312)
    message = only(report, "glibc").message
    # highest version first; 2.28 is within 2.34 and not listed
    assert message.startswith("needs GLIBC_2.36 (pidfd_open), but python3.12")
    assert "GLIBC_2.28" not in message


# -- machine ---------------------------------------------------------------------------


def test_other_machine_is_flagged(tmp_path: Path, plain_so: Path) -> None:
    arm = bytearray(plain_so.read_bytes())
    arm[18:20] = struct.pack("<H", EM_AARCH64)
    members = {
        f"{SITE312}/a.{EXT312}": plain_so,
        f"{SITE312}/arm.cpython-312-aarch64-linux-gnu.so": bytes(arm),
        "lib/libold32.so.1": make_elf(bits=32, machine=EM_386),
    }
    report = verify_layer(make_layer(tmp_path / "l.zip", members), PY312)
    machine = {f.path: f.message for f in report.findings if f.check == "elf-machine"}
    assert set(machine) == {f"{SITE312}/arm.cpython-312-aarch64-linux-gnu.so", "lib/libold32.so.1"}
    assert machine[f"{SITE312}/arm.cpython-312-aarch64-linux-gnu.so"].startswith(
        "is aarch64 code, but python3.12 on x86_64 runs x86_64"
    )
    assert "--arch arm64" in machine[f"{SITE312}/arm.cpython-312-aarch64-linux-gnu.so"]
    assert "i686 (32-bit, little-endian)" in machine["lib/libold32.so.1"]
    # the arm suffix is wrong too
    assert ("error", "extension-suffix", f"{SITE312}/arm.cpython-312-aarch64-linux-gnu.so") in (
        found(report)
    )


def test_x86_64_layer_checked_as_arm64(tmp_path: Path, plain_so: Path) -> None:
    ext = f"{SITE312}/a.{EXT312}"
    report = verify_layer(
        make_layer(tmp_path / "l.zip", {ext: plain_so}), Target("python3.12", "arm64")
    )
    assert found(report) == {("error", "elf-machine", ext), ("error", "extension-suffix", ext)}
    assert (
        "x86_64 code, but python3.12 on arm64 runs aarch64" in only(report, "elf-machine").message
    )


def test_big_endian_aarch64_is_not_aarch64(tmp_path: Path) -> None:
    data = make_elf(little=False, machine=EM_AARCH64)
    report = verify_layer(
        make_layer(tmp_path / "l.zip", {"lib/libbe.so": data}), Target("python3.12", "arm64")
    )
    assert "aarch64 (64-bit, big-endian)" in only(report, "elf-machine").message


# -- needed libraries -----------------------------------------------------------------


def _needing(tmp_path: Path, lib: str, **kw: str) -> Path:
    """An extension that needs lib<lib>.so.1 (built, then left out of the layer)."""
    build = tmp_path / "build"
    compile_so(
        build / f"lib{lib}.so", f"int {lib}_fn(void) {{ return 1; }}\n", soname=f"lib{lib}.so.1"
    )
    return compile_so(
        build / f"ext_{lib}.so",
        f"int {lib}_fn(void);\nint call(void) {{ return {lib}_fn(); }}\n",
        libs=[lib],
        lib_dirs=[build],
        **kw,  # type: ignore[arg-type]
    )


def test_missing_library_is_an_error(tmp_path: Path) -> None:
    ext = f"{SITE312}/pkg/_x.{EXT312}"
    report = verify_layer(
        make_layer(tmp_path / "l.zip", {ext: _needing(tmp_path, "missing")}), PY312
    )
    finding = only(report, "needed-library")
    assert (finding.level, finding.path) == ("error", ext)
    assert finding.message.startswith("needs libmissing.so.1, which neither the layer")
    assert "Amazon Linux 2023" in finding.message


def test_missing_library_is_reported_once_with_what_it_breaks(tmp_path: Path) -> None:
    ext = _needing(tmp_path, "gone")
    inner = make_elf(needed=["libgone.so.1"], soname="libinner.so.1")
    outer = make_elf(needed=["libinner.so.1"], runpath="$ORIGIN/../pkg.libs")
    members = {
        f"{SITE312}/pkg/a.{EXT312}": ext,
        f"{SITE312}/pkg/b.{EXT312}": ext,
        f"{SITE312}/pkg/c.{EXT312}": outer,
        f"{SITE312}/pkg.libs/libinner.so.1": inner,
    }
    finding = only(verify_layer(make_layer(tmp_path / "l.zip", members), PY312), "needed-library")
    assert finding.path == f"{SITE312}/pkg.libs/libinner.so.1"
    assert finding.message.startswith(
        f"needs libgone.so.1 (as do 2 other files: a.{EXT312}, b.{EXT312}), which neither"
    )
    assert f"so loading pkg/a.{EXT312}, pkg/b.{EXT312}, pkg/c.{EXT312} fails" in finding.message


def _wheel_metadata(dist: str, tag: str, files: list[str]) -> dict[str, str]:
    """WHEEL and RECORD of an installed wheel in SITE312."""
    info = f"{SITE312}/{dist}.dist-info"
    record = "".join(f"{f},sha256=x,1\n" for f in [*files, f"{dist}.dist-info/WHEEL"])
    return {
        f"{info}/WHEEL": f"Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: {tag}\n",
        f"{info}/RECORD": record + f"{dist}.dist-info/RECORD,,\n",
    }


@pytest.mark.parametrize(
    ("library", "tag", "level"),
    [
        # left out of a manylinux wheel on purpose (auditwheel --exclude): optional
        ("libtbb.so.12", "cp312-cp312-manylinux_2_17_x86_64", "warning"),
        # on auditwheel's list, so the wheel expects the system to have it: Lambda has not
        ("libGL.so.1", "cp312-cp312-manylinux_2_17_x86_64", "error"),
        # not a manylinux wheel: nothing says the library is optional
        ("libtbb.so.12", "cp312-cp312-linux_x86_64", "error"),
    ],
)
def test_missing_library_of_a_manylinux_wheel(
    tmp_path: Path, library: str, tag: str, level: str
) -> None:
    ext = f"pkg/_x.{EXT312}"
    members: dict[str, bytes | Path | str] = {
        f"{SITE312}/{ext}": make_elf(needed=[library, "libc.so.6"]),
        **_wheel_metadata("pkg-1.0", tag, [ext]),
    }
    finding = only(verify_layer(make_layer(tmp_path / "l.zip", members), PY312), "needed-library")
    assert (finding.level, finding.path) == (level, f"{SITE312}/{ext}")
    assert finding.message.startswith(f"needs {library}, which")
    assert ("leaves out on purpose" in finding.message) is (level == "warning")


def test_manylinux_files_are_the_layers_own_names(tmp_path: Path) -> None:
    from layerbuilder.verify import _Verifier
    from layerbuilder.verify_source import open_layer

    ext = f"pkg/_x.{EXT312}"
    members: dict[str, bytes | Path | str] = {
        f"{SITE312}/{ext}": make_elf(needed=["libc.so.6"]),
        **_wheel_metadata("pkg-1.0", "cp312-cp312-manylinux_2_17_x86_64", [ext, "pkg/gone.py"]),
    }
    source = open_layer(make_layer(tmp_path / "l.zip", members))
    try:
        files = [m for m in source.members() if not m.is_dir()]
        listed = _Verifier(source, PY312, "l.zip", [], {})._manylinux_files(files)
        by_name = {m.filename: m.filename for m in files}
        # RECORD lists pkg/gone.py too, but the layer has no such file
        assert listed == {f"{SITE312}/{ext}", f"{SITE312}/pkg-1.0.dist-info/WHEEL"} | {
            f"{SITE312}/pkg-1.0.dist-info/RECORD"
        }
        assert all(name is by_name[name] for name in listed)
    finally:
        source.close()


def test_files_nothing_loads_only_warn(tmp_path: Path, plain_so: Path) -> None:
    """A helper .so in a none-any wheel (debugpy ships attach_linux_amd64.so): wrong
    machine, too-new glibc or missing libraries matter only if something loads it."""
    helper = make_elf(
        machine=EM_AARCH64,
        needed=["libnothere.so.1", "libc.so.6"],
        verneed={"libc.so.6": ["GLIBC_2.39"]},
        symbols=[("dlopen", "GLIBC_2.39")],
    )
    members = {
        f"{SITE312}/dbg/attach_linux_arm64.so": helper,
        f"{SITE312}/dbg/_ext.{EXT312}": plain_so,
    }
    report = verify_layer(make_layer(tmp_path / "l.zip", members), PY312)
    assert found(report) == {
        ("warning", check, f"{SITE312}/dbg/attach_linux_arm64.so")
        for check in ("elf-machine", "glibc", "needed-library")
    }
    assert all("no extension module or executable in the layer loads it" in f.message
               for f in report.findings)  # fmt: skip
    assert report.ok


def test_runpath_origin_libs_dir_provides_the_library(tmp_path: Path) -> None:
    ext = _needing(tmp_path, "vend", runpath="$ORIGIN/../pkg.libs")
    lib = tmp_path / "build" / "libvend.so"
    members = {f"{SITE312}/pkg/_x.{EXT312}": ext, f"{SITE312}/pkg.libs/libvend.so.1": lib}
    assert verify_layer(make_layer(tmp_path / "ok.zip", members), PY312).findings == ()

    # the same library in a directory the RUNPATH does not name: found, but only by luck
    members = {f"{SITE312}/pkg/_x.{EXT312}": ext, f"{SITE312}/other.libs/libvend.so.1": lib}
    finding = only(verify_layer(make_layer(tmp_path / "w.zip", members), PY312), "needed-library")
    assert finding.level == "warning"
    assert f"in the layer at {SITE312}/other.libs/libvend.so.1" in finding.message
    assert "RPATH/RUNPATH $ORIGIN/../pkg.libs" in finding.message


def test_rpath_is_inherited_but_runpath_is_not(tmp_path: Path) -> None:
    """ld.so searches a loader's DT_RPATH for its dependencies' dependencies, but
    DT_RUNPATH only for the object's own."""
    build = tmp_path / "build"
    compile_so(build / "libb.so", "int b(void) { return 2; }\n", soname="libb.so.1")
    liba = compile_so(
        build / "liba.so",
        "int b(void);\nint a(void) { return b(); }\n",
        soname="liba.so.1",
        libs=["b"],
        lib_dirs=[build],
    )
    for flag, level in (("rpath", None), ("runpath", "warning")):
        ext = compile_so(
            build / f"ext_{flag}.so",
            "int a(void);\nint e(void) { return a(); }\n",
            libs=["a"],
            lib_dirs=[build],
            **{flag: "$ORIGIN/pkg.libs"},  # type: ignore[arg-type]
        )
        members = {
            f"{SITE312}/_e.{EXT312}": ext,
            f"{SITE312}/pkg.libs/liba.so.1": liba,
            f"{SITE312}/pkg.libs/libb.so.1": build / "libb.so",
        }
        report = verify_layer(make_layer(tmp_path / f"{flag}.zip", members), PY312)
        if level is None:
            assert report.findings == (), report.format_text()
        else:
            finding = only(report, "needed-library")
            assert (finding.level, finding.path) == (level, f"{SITE312}/pkg.libs/liba.so.1")
            assert finding.message.startswith("needs libb.so.1, which is in the layer")


def test_opt_lib_and_other_layers_provide_libraries(tmp_path: Path) -> None:
    ext = _needing(tmp_path, "shared")
    lib = tmp_path / "build" / "libshared.so"
    alone = make_layer(tmp_path / "alone.zip", {f"{SITE312}/_x.{EXT312}": ext})
    assert only(verify_layer(alone, PY312), "needed-library").level == "error"
    # /opt/lib is on LD_LIBRARY_PATH
    with_lib = make_layer(
        tmp_path / "lib.zip", {f"{SITE312}/_x.{EXT312}": ext, "lib/libshared.so.1": lib}
    )
    assert verify_layer(with_lib, PY312).findings == ()
    # ... also when another layer of the function puts it there
    other = make_layer(tmp_path / "other.zip", {"lib/libshared.so.1": lib})
    assert verify_layer(alone, PY312, with_layers=[other]).findings == ()


def test_base_image_libraries_depend_on_the_os(tmp_path: Path) -> None:
    data = make_elf(needed=["libc.so.6", "libstdc++.so.6", "libz.so.1", "libexpat.so.1"])
    ext311 = f"{SITE311}/x.cpython-311-x86_64-linux-gnu.so"
    assert verify_layer(make_layer(tmp_path / "a.zip", {ext311: data}), PY311).findings == ()
    ext312 = f"{SITE312}/x.{EXT312}"
    finding = only(
        verify_layer(make_layer(tmp_path / "b.zip", {ext312: data}), PY312), "needed-library"
    )
    assert finding.level == "error" and finding.message.startswith("needs libexpat.so.1")


def test_manylinux_whitelisted_graphics_libraries_are_not_on_lambda(tmp_path: Path) -> None:
    data = make_elf(needed=["libGL.so.1", "libgthread-2.0.so.0", "libc.so.6"])
    report = verify_layer(
        make_layer(tmp_path / "cv.zip", {f"{SITE312}/cv2/cv2.abi3.so": data}), PY312
    )
    messages = sorted(f.message.split(",")[0] for f in report.errors)
    assert messages == ["needs libGL.so.1", "needs libgthread-2.0.so.0"]


def test_unverified_base_library_is_a_warning(tmp_path: Path) -> None:
    data = make_elf(needed=["libatomic.so.1"])
    finding = only(
        verify_layer(make_layer(tmp_path / "a.zip", {"lib/libq.so": data}), PY312), "needed-library"
    )
    assert finding.level == "warning" and "not confirmed" in finding.message


def test_libpython_of_another_version_is_missing(tmp_path: Path) -> None:
    data = make_elf(needed=["libpython3.11.so.1.0"])
    finding = only(
        verify_layer(make_layer(tmp_path / "a.zip", {f"{SITE312}/m.abi3.so": data}), PY312),
        "needed-library",
    )
    assert finding.level == "error"
    data = make_elf(needed=["libpython3.12.so.1.0"])
    finding = only(
        verify_layer(make_layer(tmp_path / "b.zip", {f"{SITE312}/m.abi3.so": data}), PY312),
        "needed-library",
    )
    assert finding.level == "warning"


def test_libstdcxx_symbol_versions_against_the_image(tmp_path: Path) -> None:
    data = make_elf(
        needed=["libstdc++.so.6", "libc.so.6"],
        verneed={"libstdc++.so.6": ["GLIBCXX_3.4.26", "CXXABI_1.3"]},
        symbols=[
            ("_ZNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEE7reserveEv", "GLIBCXX_3.4.26")
        ],
    )
    ext = f"{SITE311}/x.cpython-311-x86_64-linux-gnu.so"
    finding = only(
        verify_layer(make_layer(tmp_path / "a.zip", {ext: data}), PY311), "symbol-version"
    )
    assert finding.message.startswith("needs GLIBCXX_3.4.26 (_ZNSt7__cxx11")
    assert "GLIBCXX_3.4.24" in finding.message
    assert (
        verify_layer(
            make_layer(tmp_path / "b.zip", {f"{SITE312}/x.{EXT312}": data}), PY312
        ).findings
        == ()
    )
    # a vendored libstdc++ on the RUNPATH lifts the ceiling
    vendored = make_elf(
        needed=["libstdc++.so.6"],
        runpath="$ORIGIN/x.libs",
        verneed={"libstdc++.so.6": ["GLIBCXX_3.4.26"]},
    )
    members = {ext: vendored, f"{SITE311}/x.libs/libstdc++.so.6": make_elf(soname="libstdc++.so.6")}
    assert verify_layer(make_layer(tmp_path / "c.zip", members), PY311).findings == ()


# -- extension suffixes and layout ----------------------------------------------------


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("m.cpython-311-x86_64-linux-gnu.so", "for CPython 3.11"),
        ("m.cpython-312-aarch64-linux-gnu.so", "for another platform"),
        ("m.cpython-312-darwin.so", "for another platform"),
        ("m.cpython-312-x86_64-linux-musl.so", "for another C library"),
        ("m.cpython-312d-x86_64-linux-gnu.so", "debug build"),
        ("m.pypy310-pp73-x86_64-linux-gnu.so", "another Python implementation"),
    ],
)
def test_wrong_extension_suffix(tmp_path: Path, name: str, why: str) -> None:
    report = verify_layer(
        make_layer(tmp_path / "l.zip", {f"{SITE312}/pkg/{name}": b"not elf"}), PY312
    )
    finding = only(report, "extension-suffix")
    assert finding.path == f"{SITE312}/pkg/{name}" and why in finding.message
    assert "cp312" in finding.message


def test_free_threaded_extension_in_a_regular_runtime(tmp_path: Path) -> None:
    name = f"{SITE312.replace('3.12', '3.13')}/m.cpython-313t-x86_64-linux-gnu.so"
    report = verify_layer(
        make_layer(tmp_path / "l.zip", {name: b"x"}), Target("python3.13", "x86_64")
    )
    assert "free-threaded" in only(report, "extension-suffix").message


def test_names_that_are_not_extension_modules_pass(tmp_path: Path) -> None:
    members = {
        f"{SITE312}/pkg/plain.so": b"x",
        f"{SITE312}/pkg/m.abi3.so": b"x",
        f"{SITE312}/pkg.libs/libfoo-1a2b3c.so.1.2": b"x",
        f"{SITE312}/pkg/libbar.1.so": b"x",
    }
    assert verify_layer(make_layer(tmp_path / "l.zip", members), PY312).findings == ()


def test_layout(tmp_path: Path, plain_so: Path) -> None:
    members = {
        f"{SITE311}/old/__init__.py": "",
        f"{SITE311}/old/_x.cpython-311-x86_64-linux-gnu.so": plain_so,
        "python/lib/python3.12/not_on_path.py": "",
        f"{SITE312}/ok.py": "",
        "site-packages/lost.py": "",
        "README.txt": "",
        "lib/libfine.so.1": plain_so,
        "extensions/my-extension": "#!/bin/sh\n",
    }
    report = verify_layer(make_layer(tmp_path / "l.zip", members), PY312)
    assert {(f.level, f.path) for f in report.findings if f.check == "layout"} == {
        ("error", "python/lib/python3.11/"),
        ("warning", "python/lib/python3.12/"),
        ("warning", "site-packages/"),
        ("warning", "README.txt"),
    }
    wrong = next(f for f in report.findings if f.path == "python/lib/python3.11/")
    assert wrong.message.startswith(
        "2 entries in a directory for Python 3.11, which python3.12 never puts"
    )
    # the cp311 extension under the wrong directory is reported once, by layout
    assert not [f for f in report.findings if f.check in ("extension-suffix", "glibc")]


def test_nothing_importable(tmp_path: Path) -> None:
    report = verify_layer(make_layer(tmp_path / "l.zip", {"lib/x.txt": "x"}), PY312)
    assert only(report, "layout").message.startswith("nothing under python/")


# -- size, other layers --------------------------------------------------------------


def _declare_sizes(path: Path, sizes: Mapping[str, int]) -> None:
    """Rewrite the uncompressed sizes the central directory declares (stored zip)."""
    data = bytearray(path.read_bytes())
    pos = 0
    while True:
        pos = data.find(b"PK\x01\x02", pos)
        if pos < 0:
            break
        name_len = struct.unpack_from("<H", data, pos + 28)[0]
        name = data[pos + 46 : pos + 46 + name_len].decode()
        if name in sizes:
            struct.pack_into("<I", data, pos + 24, sizes[name])
        pos += 46
    path.write_bytes(bytes(data))


def _stored(path: Path, names: list[str]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for name in names:
            zf.writestr(name, b"x" * 100)
    return path


def test_oversize_from_declared_sizes(tmp_path: Path) -> None:
    names = [f"{SITE312}/big{i}.bin" for i in range(5)]
    path = _stored(tmp_path / "big.zip", names)
    _declare_sizes(path, dict.fromkeys(names, 60_000_000))  # 300 MB declared, 500 bytes real
    report = verify_layer(path, PY312)
    finding = only(report, "size")
    assert finding.level == "error"
    assert "300,000,000 bytes, over Lambda's limit of 262,144,000" in finding.message
    assert report.unzipped_size == 300_000_000
    assert "zip-bomb" not in {f.check for f in report.findings}

    path = _stored(tmp_path / "near.zip", names[:4])
    _declare_sizes(path, dict.fromkeys(names[:4], 60_000_000))  # 240 MB: over 90 %
    assert only(verify_layer(path, PY312), "size").level == "warning"


def test_combined_size_counts_other_layers(tmp_path: Path) -> None:
    names = [f"{SITE312}/a{i}.bin" for i in range(4)]
    mine = _stored(tmp_path / "mine.zip", names)
    _declare_sizes(mine, dict.fromkeys(names, 50_000_000))
    other = _stored(tmp_path / "other.zip", ["python/b.bin"])
    _declare_sizes(other, {"python/b.bin": 70_000_000})
    assert verify_layer(mine, PY312).findings == ()
    report = verify_layer(mine, PY312, with_layers=[other])
    assert report.unzipped_size == 200_000_000
    assert report.combined_unzipped_size == 270_000_000
    finding = only(report, "size")
    assert (
        finding.level == "error" and "with 1 other layer unzips to 270,000,000" in finding.message
    )


def test_overlaps_between_layers(tmp_path: Path) -> None:
    first = make_layer(
        tmp_path / "a.zip",
        {f"{SITE312}/six.py": "a", f"{SITE312}/pkg/__init__.py": "", f"{SITE312}/pkg/m.py": ""},
    )
    second = make_layer(
        tmp_path / "b.zip", {f"{SITE312}/pkg/__init__.py": "", f"{SITE312}/pkg/m.py": ""}
    )
    third = make_layer(tmp_path / "c.zip", {f"{SITE312}/six.py": "c"})
    report = verify_layer(first, PY312, with_layers=[second, third])
    overlaps = {f.path: f.message for f in report.findings if f.check == "overlap"}
    assert set(overlaps) == {f"{SITE312}/pkg/", f"{SITE312}/six.py"}
    assert overlaps[f"{SITE312}/pkg/"].startswith(f"2 files in both {first} and {second}")
    assert f"in both {first} and {third}" in overlaps[f"{SITE312}/six.py"]
    assert all(f.level == "warning" for f in report.findings)


def test_too_many_layers_and_unreadable_other_layer(tmp_path: Path) -> None:
    mine = make_layer(tmp_path / "a.zip", {f"{SITE312}/a.py": ""})
    others = [make_layer(tmp_path / f"o{i}.zip", {f"{SITE312}/o{i}.py": ""}) for i in range(5)]
    assert only(verify_layer(mine, PY312, with_layers=others), "layer-count").message.startswith(
        "6 layers, but a function can use at most 5"
    )
    bogus = tmp_path / "bogus.zip"
    bogus.write_text("not a zip")
    finding = only(verify_layer(mine, PY312, with_layers=[bogus]), "zip")
    assert finding.level == "error" and str(bogus) in finding.message


# -- safety ------------------------------------------------------------------------


def test_zip_slip_names(tmp_path: Path) -> None:
    path = tmp_path / "slip.zip"
    bad = [
        "../evil.py",
        "python/../../evil.py",
        "/etc/cron.d/evil",
        "python\\evil.py",
        "C:/evil.py",
    ]
    with zipfile.ZipFile(path, "w") as zf:
        for name in [*bad, f"{SITE312}/fine.py"]:
            zf.writestr(zipfile.ZipInfo(name), b"x")
    report = verify_layer(path, PY312)
    slips = {f.path: f.message for f in report.findings if f.check == "zip-slip"}
    assert set(slips) == set(bad)
    assert "'..' component" in slips["../evil.py"]
    assert "absolute path" in slips["/etc/cron.d/evil"] and "absolute path" in slips["C:/evil.py"]
    assert "backslash" in slips["python\\evil.py"]
    assert all(f.level == "error" for f in report.findings if f.check == "zip-slip")


def _symlink(zf: zipfile.ZipFile, name: str, target: str) -> None:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = 0o120777 << 16
    zf.writestr(info, target)


def test_symlinks(tmp_path: Path) -> None:
    ext = _needing(tmp_path, "linked", runpath="$ORIGIN")
    path = tmp_path / "links.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.write(ext, f"{SITE312}/_x.{EXT312}")
        zf.write(tmp_path / "build" / "liblinked.so", f"{SITE312}/liblinked.so.1.0.0")
        _symlink(zf, f"{SITE312}/liblinked.so.1", "liblinked.so.1.0.0")
        _symlink(zf, f"{SITE312}/passwd", "../../../../../etc/passwd")
        _symlink(zf, f"{SITE312}/abs", "/etc/shadow")
    report = verify_layer(path, PY312)
    assert found(report) == {
        ("warning", "symlink", f"{SITE312}/liblinked.so.1"),
        ("error", "symlink", f"{SITE312}/passwd"),
        ("error", "symlink", f"{SITE312}/abs"),
    }  # and the link satisfies DT_NEEDED liblinked.so.1


def test_zip_bomb_by_ratio(tmp_path: Path) -> None:
    name = f"{SITE312}/bomb.bin"
    path = _stored(tmp_path / "bomb.zip", [name])
    _declare_sizes(path, {name: 200 * 1024 * 1024})
    finding = only(verify_layer(path, PY312), "zip-bomb")
    assert (
        finding.path == name and "209,715,200 bytes unzipped from 100 compressed" in finding.message
    )


def test_zip_bomb_by_overlapping_entries(tmp_path: Path) -> None:
    path = _stored(tmp_path / "overlap.zip", [f"{SITE312}/a.bin", f"{SITE312}/b.bin"])
    data = bytearray(path.read_bytes())
    second = data.find(b"PK\x01\x02", data.find(b"PK\x01\x02") + 4)
    struct.pack_into("<I", data, second + 42, 0)  # b.bin's local header offset := a.bin's
    path.write_bytes(bytes(data))
    finding = only(verify_layer(path, PY312), "zip-bomb")
    assert "overlaps the data of" in finding.message


def test_duplicate_names(tmp_path: Path) -> None:
    path = tmp_path / "dup.zip"
    with zipfile.ZipFile(path, "w") as zf, pytest.warns(UserWarning, match="Duplicate name"):
        zf.writestr(f"{SITE312}/a.py", "1")
        zf.writestr(f"{SITE312}/a.py", "2")
    finding = only(verify_layer(path, PY312), "zip")
    assert finding.level == "warning" and "more than once" in finding.message


def test_malformed_elf_is_a_finding(tmp_path: Path) -> None:
    members = {
        f"{SITE312}/pkg/_bad.{EXT312}": b"\x7fELF\x02\x01\x01" + b"\xff" * 100,
        f"{SITE312}/pkg/data.bin": b"\x7fELF" + b"\0" * 10,
        f"{SITE312}/pkg/truncated.so": make_elf(needed=["libc.so.6"])[:200],
    }
    report = verify_layer(make_layer(tmp_path / "l.zip", members), PY312)
    assert {(f.level, f.path) for f in report.findings if f.check == "elf"} == {
        ("error", f"{SITE312}/pkg/_bad.{EXT312}"),
        ("warning", f"{SITE312}/pkg/data.bin"),
        ("error", f"{SITE312}/pkg/truncated.so"),
    }


def test_not_a_zip(tmp_path: Path) -> None:
    path = tmp_path / "layer.zip"
    path.write_bytes(b"\x7fELF not a zip")
    report = verify_layer(path, PY312)
    assert found(report) == {("error", "zip", "")}
    assert "cannot open" in report.findings[0].message


def test_corrupt_member_is_a_finding(tmp_path: Path, plain_so: Path) -> None:
    name = f"{SITE312}/_x.{EXT312}"
    path = make_layer(tmp_path / "l.zip", {name: plain_so})
    data = bytearray(path.read_bytes())
    start = data.find(b"PK\x03\x04") + 30 + len(name)
    data[start + 10 : start + 40] = b"\xff" * 30  # garbage in the deflate stream
    path.write_bytes(bytes(data))
    report = verify_layer(path, PY312)
    assert {f.check for f in report.findings} <= {"zip", "elf"} and report.errors


# -- reports -----------------------------------------------------------------------


def test_report_order_json_text_and_raise(tmp_path: Path) -> None:
    so = compile_so(tmp_path / "b" / "f.so", FCNTL)
    members = {
        f"{SITE311}/z/_io.cpython-311-x86_64-linux-gnu.so": so,
        "stray.txt": "",
        f"{SITE311}/a/_m.cpython-312-x86_64-linux-gnu.so": b"x",
    }
    report = verify_layer(make_layer(tmp_path / "l.zip", members), PY311)
    levels = [f.level for f in report.findings]
    assert levels == sorted(levels, key=("error", "warning").index)
    assert [f.check for f in report.errors] == ["extension-suffix", "glibc"]

    doc = report.to_json()
    assert json.loads(json.dumps(doc)) == doc
    assert list(doc) == [
        "layer", "runtime", "arch", "ok", "errors", "warnings", "unzipped_size",
        "files", "elf_files", "with_layers", "combined_unzipped_size", "findings",
    ]  # fmt: skip
    assert (doc["runtime"], doc["arch"], doc["ok"], doc["errors"], doc["warnings"]) == (
        "python3.11", "x86_64", False, 2, 1,
    )  # fmt: skip
    assert doc["findings"][0] == report.findings[0].to_json()
    assert set(doc["findings"][0]) == {"level", "check", "path", "message"}
    assert all(f["check"] in CHECKS for f in doc["findings"])

    lines = report.format_text().splitlines()
    assert len(lines) == 4
    assert lines[0].startswith("error    extension-suffix ")
    assert lines[1].startswith("error    glibc            ")
    assert lines[2].startswith("warning  layout           stray.txt: ")
    assert lines[3].startswith(
        f"FAIL: {tmp_path / 'l.zip'} for python3.11 on x86_64: 2 errors, 1 warning;"
    )

    with pytest.raises(VerificationFailed) as exc:
        report.raise_for_errors()
    text = str(exc.value)
    assert "would not load on python3.11 on x86_64: 2 errors" in text
    assert "GLIBC_2.28 (fcntl64)" in text and "stray.txt" not in text
    assert "--no-verify" in text
    assert exc.value.report is report  # type: ignore[attr-defined]  # for the handler's 422
    from layerbuilder.errors import exit_code_for, http_status_for

    assert (exit_code_for(exc.value), http_status_for(exc.value)) == (8, 422)


def test_verify_zipfile_on_an_open_zip(tmp_path: Path, plain_so: Path) -> None:
    path = make_layer(
        tmp_path / "l.zip", {f"{SITE312}/_x.cpython-311-x86_64-linux-gnu.so": plain_so}
    )
    with zipfile.ZipFile(path) as zf:
        report = verify_zipfile(zf, PY312, name="built.zip")
    assert report.layer == "built.zip"
    assert report.findings == verify_layer(path, PY312).findings


def test_base_image_lists() -> None:
    for runtime in RUNTIMES.values():
        image = base_image(runtime.os_name)
        assert {
            "libc.so.6",
            "libm.so.6",
            "libgcc_s.so.1",
            "libstdc++.so.6",
            "libz.so.1",
        } <= image.libraries
        assert not image.libraries & {"libGL.so.1", "libX11.so.6", "libglib-2.0.so.0"}
    al2, al2023 = base_image("Amazon Linux 2"), base_image("Amazon Linux 2023")
    assert "libexpat.so.1" in al2.libraries and "libexpat.so.1" not in al2023.libraries
    assert (
        "libcrypt.so.1" in al2.libraries
        and "libcrypt.so.1" not in al2023.libraries | al2023.unverified
    )
    assert al2.ceilings["GLIBCXX"] == (3, 4, 24) and al2023.ceilings["GLIBCXX"] == (3, 4, 29)


# -- real wheels -------------------------------------------------------------------


def _fixture_wheel(pattern: str) -> Path:
    wheels = sorted(FIXTURE_FILES.rglob(pattern))
    if not wheels:
        pytest.skip(f"no fixture wheel matches {pattern}")
    return wheels[0]


def test_real_wheel_layer_passes_clean(tmp_path: Path) -> None:
    from layerbuilder.layerzip import write_layer

    wheel = _fixture_wheel("markupsafe-*-cp312-cp312-manylinux*x86_64*.whl")
    out = write_layer([wheel], PY312, tmp_path / "markupsafe.zip").path
    report = verify_layer(out, PY312)
    assert report.findings == (), report.format_text()
    assert report.elf_files == 1
    # the same layer for the wrong arch and the wrong Python
    arm = verify_layer(out, Target("python3.12", "arm64"))
    assert {f.check for f in arm.errors} == {"elf-machine", "extension-suffix"}
    wrong_python = verify_layer(out, PY311)
    assert {(f.check, f.path) for f in wrong_python.errors} == {
        ("layout", "python/lib/python3.12/")
    }


def test_real_aarch64_wheel_on_arm64(tmp_path: Path) -> None:
    from layerbuilder.layerzip import write_layer

    arm64 = Target("python3.12", "arm64")
    wheel = _fixture_wheel("markupsafe-*-cp312-cp312-manylinux*aarch64*.whl")
    out = write_layer([wheel], arm64, tmp_path / "arm.zip").path
    assert verify_layer(out, arm64).findings == ()
    assert only(verify_layer(out, PY312), "elf-machine").message.startswith("is aarch64 code")


# -- the done-when, live: pip's layer from a manylinux_2_28-only wheel ---------------


def _pip_layer(tmp_path: Path, target: Target, requirement: str, platforms: list[str]) -> Path:
    """A layer as people build it with pip: ``pip install --target`` then zip."""
    site = tmp_path / "site"
    env = {k: v for k, v in os.environ.items() if k != "PIP_FIND_LINKS"}
    env["PIP_CONFIG_FILE"] = os.devnull
    cmd = [sys.executable, "-m", "pip", "install", "--isolated", "--quiet", "--no-compile"]
    cmd += ["--only-binary=:all:", "--python-version", target.python_version_str]
    cmd += ["--implementation", "cp", "--abi", target.abi, "--target", str(site)]
    for platform in platforms:
        cmd += ["--platform", platform]
    subprocess.run([*cmd, requirement], check=True, env=env, timeout=600)
    out = tmp_path / "pip-layer.zip"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(site.rglob("*")):
            if path.is_file():
                zf.write(path, f"{target.site_packages}/{path.relative_to(site).as_posix()}")
    return out


@pytest.mark.live
def test_live_pip_layer_from_manylinux_2_28_wheel_is_flagged(tmp_path: Path) -> None:
    # cryptography's manylinux_2_28 wheel (tagged 2_28 only) needs statx@GLIBC_2.28;
    # pip picks it when told the target is manylinux_2_28, as many layer recipes do
    layer = _pip_layer(
        tmp_path, PY311, "cryptography", ["manylinux_2_28_x86_64", "manylinux2014_x86_64"]
    )
    names = zipfile.ZipFile(layer).namelist()
    assert any("cryptography" in n and n.endswith(".dist-info/WHEEL") for n in names)
    report = verify_layer(layer, PY311)
    glibc = [f for f in report.findings if f.check == "glibc"]
    assert [f.path for f in glibc] == [f"{SITE311}/cryptography/hazmat/bindings/_rust.abi3.so"]
    assert "GLIBC_2.28 (statx" in glibc[0].message
    assert not report.ok

    # an x86_64 layer checked as arm64
    arm = verify_layer(layer, Target("python3.11", "arm64"))
    assert f"{SITE311}/cryptography/hazmat/bindings/_rust.abi3.so" in {
        f.path for f in arm.findings if f.check == "elf-machine"
    }
