"""``layerbuilder verify``: prove a layer zip will load on its Lambda runtime.

Checks, each reporting every problem it finds (never just the first):

* ``zip-slip``, ``symlink``, ``zip-bomb``, ``zip``: member names that escape
  the extraction directory, symbolic links, declared sizes that look like a
  zip bomb, unreadable members and duplicate names;
* ``layout``: entries Lambda never puts on ``sys.path``;
* ``size``, ``layer-count``, ``overlap``: Lambda's unzipped-size limit (with
  the function's other layers given by ``with_layers``), and files that two
  layers both provide;
* ``extension-suffix``: extension modules the target interpreter never imports;
* ``elf``, ``elf-machine``, ``glibc``, ``symbol-version``, ``needed-library``:
  every ELF file's machine, its symbol versions against the runtime's glibc and
  libstdc++, and whether the dynamic loader finds each ``DT_NEEDED`` library in
  the layer (through RPATH/RUNPATH and ``/opt/lib``) or in the base image.

The zip is read in place: members are never extracted to disk, and ELF members
are read one at a time through :mod:`layerbuilder.elf`.
See ``docs/verify.md`` for the JSON output.
"""

from __future__ import annotations

import csv
import io
import posixpath
import re
import zipfile
import zlib
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .elf import ElfError, ElfInfo
from .elfscan import (
    READERS,
    VERSION,
    MemberKey,
    Scanned,
    glibc_version,
    is_symlink,
    may_be_elf,
    read_member,
    symbol_filter,
    version_tuple,
)
from .errors import VerificationFailed
from .limits import MAX_LAYERS, MAX_UNZIPPED
from .linker import OPT, Linkage, base_image, extension_tag, link, manylinux_libraries
from .targets import Target

__all__ = [
    "CHECKS",
    "Finding",
    "LayerVerificationFailed",
    "VerifyReport",
    "verify_layer",
    "verify_zipfile",
]

#: Every check name a finding can carry, in the order findings are listed.
CHECKS = (
    "zip",
    "zip-slip",
    "symlink",
    "zip-bomb",
    "size",
    "layer-count",
    "layout",
    "extension-suffix",
    "elf",
    "elf-machine",
    "glibc",
    "symbol-version",
    "needed-library",
    "overlap",
)
_LEVELS = ("error", "warning")

SIZE_WARNING = 0.9  # warn above this share of the limit
BOMB_RATIO = 1000  # declared size / compressed size
BOMB_MIN_SIZE = 100 * 1024 * 1024
_ALLOWED_TOP = {
    "python": "",
    "lib": "on LD_LIBRARY_PATH",
    "bin": "on PATH",
    "extensions": "Lambda extensions",
}
_CPYTHON_TAG = re.compile(r"^cpython-(?P<ver>\d)(?P<minor>\d+)(?P<flags>[a-z]*)(?:-(?P<plat>.+))?$")
_SITE = re.compile(r"^python/lib/python(?P<ver>\d+\.\d+)/(?P<site>site-packages/)?")
_WHEEL_FILE = re.compile(
    r"^(?P<root>python/(?:lib/python\d+\.\d+/site-packages/)?)[^/]+\.dist-info/WHEEL$"
)
_MAX_METADATA = 64 * 1024 * 1024


# -- values --------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One problem: *level* is ``"error"`` (the layer will fail) or ``"warning"``."""

    level: str
    check: str
    path: str  # the zip member (or group, ending in "/"); "" for the layer as a whole
    message: str

    def to_json(self) -> dict[str, str]:
        return {
            "level": self.level,
            "check": self.check,
            "path": self.path,
            "message": self.message,
        }

    def format(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.level:<7}  {self.check:<16} {where}{self.message}"


def _order(f: Finding) -> tuple[int, int, str, str]:
    return (_LEVELS.index(f.level), CHECKS.index(f.check), f.path, f.message)


@dataclass(frozen=True)
class VerifyReport:
    """Everything ``verify`` found about one layer zip."""

    layer: str
    target: Target
    findings: tuple[Finding, ...]
    unzipped_size: int
    files: int
    elf_files: int
    with_layers: tuple[str, ...] = ()
    combined_unzipped_size: int | None = None

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.level == "error")

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.level == "warning")

    @property
    def ok(self) -> bool:
        """No errors (warnings allowed)."""
        return not self.errors

    def to_json(self) -> dict[str, Any]:
        """The stable JSON document of ``verify --json`` (see docs/verify.md)."""
        return {
            "layer": self.layer,
            "runtime": self.target.runtime,
            "arch": self.target.arch,
            "ok": self.ok,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "unzipped_size": self.unzipped_size,
            "files": self.files,
            "elf_files": self.elf_files,
            "with_layers": list(self.with_layers),
            "combined_unzipped_size": self.combined_unzipped_size,
            "findings": [f.to_json() for f in self.findings],
        }

    def summary(self) -> str:
        verdict = "OK" if self.ok else "FAIL"
        counts = f"{_plural(len(self.errors), 'error')}, {_plural(len(self.warnings), 'warning')}"
        line = (
            f"{verdict}: {self.layer} for {self.target}: {counts}; "
            f"{self.unzipped_size:,} bytes unzipped in {_plural(self.files, 'file')} "
            f"({self.elf_files} ELF)"
        )
        if self.combined_unzipped_size is not None:
            line += f"; {self.combined_unzipped_size:,} bytes with the other layers"
        return line

    def format_text(self) -> str:
        """One line per finding, errors first, then a summary line."""
        return "".join(f.format() + "\n" for f in self.findings) + self.summary() + "\n"

    def raise_for_errors(self) -> None:
        """Raise :class:`VerificationFailed` listing the errors, if there are any."""
        if self.ok:
            return
        shown = self.errors[:20]
        lines = [f"  {f.check}: {f.path + ': ' if f.path else ''}{f.message}" for f in shown]
        if len(self.errors) > len(shown):
            lines.append(f"  ... and {len(self.errors) - len(shown)} more")
        raise LayerVerificationFailed(
            f"{self.layer} would not load on {self.target}: "
            f"{_plural(len(self.errors), 'error')}:\n" + "\n".join(lines) + "\n"
            "Run `layerbuilder verify` on the zip for the full report, "
            "or build with --no-verify to publish it anyway.",
            self,
        )


class LayerVerificationFailed(VerificationFailed):
    """:class:`VerificationFailed` carrying the whole :class:`VerifyReport`, so the
    handler can answer with ``exc.report.to_json()``."""

    def __init__(self, message: str, report: VerifyReport) -> None:
        super().__init__(message)
        self.report = report


def _plural(n: int, word: str) -> str:
    if n == 1:
        return f"1 {word}"
    return f"{n:,} {word[:-1] + 'ies' if word.endswith('y') else word + 's'}"


# -- entry points ---------------------------------------------------------------------


def verify_layer(
    zip_path: str | Path,
    target: Target,
    *,
    with_layers: Sequence[str | Path] = (),
    scanned: Mapping[MemberKey, Scanned] | None = None,
) -> VerifyReport:
    """Check the layer zip at *zip_path* for *target*.

    *with_layers* are the function's other layers, in the order the function
    lists them after this one; they count towards the size limit, provide
    libraries, and overlaps with them are reported.  Problems come back as
    findings; nothing about a bad zip raises.

    *scanned* holds what was already read from the members of the wheels the
    layer was made from (:func:`layerbuilder.elfscan.merge_scans`); a member
    whose :class:`~layerbuilder.elfscan.MemberKey` is in it is not read again.
    The report is the same with or without it.
    """
    name = str(zip_path)
    try:
        zf = zipfile.ZipFile(zip_path)
    except (OSError, zipfile.BadZipFile, ValueError, EOFError) as exc:
        finding = Finding("error", "zip", "", f"cannot open {name!r} as a zip file: {exc}")
        return VerifyReport(name, target, (finding,), 0, 0, 0, tuple(map(str, with_layers)))
    with zf:
        return verify_zipfile(zf, target, name=name, with_layers=with_layers, scanned=scanned)


def verify_zipfile(
    zf: zipfile.ZipFile,
    target: Target,
    *,
    name: str | None = None,
    with_layers: Sequence[str | Path] = (),
    scanned: Mapping[MemberKey, Scanned] | None = None,
) -> VerifyReport:
    """Like :func:`verify_layer` for a zip that is already open for reading."""
    layer = name or str(zf.filename or "<zip>")
    others = [str(p) for p in with_layers]
    return _Verifier(zf, target, layer, others, scanned or {}).run()


# -- the checks -----------------------------------------------------------------------


@dataclass
class _Elf:
    path: str
    info: ElfInfo


class _Verifier:
    def __init__(
        self,
        zf: zipfile.ZipFile,
        target: Target,
        layer: str,
        others: list[str],
        scanned: Mapping[MemberKey, Scanned],
    ) -> None:
        self.zf = zf
        self.scanned = scanned
        self.target = target
        self.layer = layer
        self.others = others
        self.base = base_image(target.os_name)
        self.findings: list[Finding] = []
        self.elfs: dict[str, _Elf] = {}
        self.files: set[str] = set()  # regular files and symlinks, as on /opt
        self.other_files: dict[str, str] = {}  # path -> the other layer holding it
        self.from_manylinux: set[str] = set()  # files a manylinux wheel's RECORD lists
        self.linkage = Linkage()

    def add(self, level: str, check: str, path: str, message: str) -> None:
        self.findings.append(Finding(level, check, path, message))

    def error(self, check: str, path: str, message: str) -> None:
        self.add("error", check, path, message)

    def warn(self, check: str, path: str, message: str) -> None:
        self.add("warning", check, path, message)

    def run(self) -> VerifyReport:
        infos = self.zf.infolist()
        readable = self._safety(infos)
        files = [i for i in infos if not i.is_dir()]
        size = sum(i.file_size for i in files)
        self.files |= {i.filename for i in files if i.filename in readable}
        self._layout(infos)
        self._extension_suffixes(files)
        self.from_manylinux = self._manylinux_files([i for i in files if i.filename in readable])
        self._read_elfs([i for i in files if i.filename in readable])
        combined = self._other_layers(files, size) if self.others else None
        self._size(size, combined)
        self._libraries()
        for elf in self.elfs.values():
            self._machine(elf)
            self._glibc(elf)
        findings = tuple(sorted(set(self.findings), key=_order))
        return VerifyReport(
            self.layer,
            self.target,
            findings,
            size,
            len(files),
            len(self.elfs),
            tuple(self.others),
            combined,
        )

    # -- safety -------------------------------------------------------------------

    def _safety(self, infos: list[zipfile.ZipInfo]) -> set[str]:
        """Report unsafe members; return the names that are safe to read."""
        safe: set[str] = set()
        seen: set[str] = set()
        for info in infos:
            raw = info.orig_filename
            problem = _unsafe_name(raw)
            if problem:
                self.error(
                    "zip-slip",
                    raw,
                    f"unsafe member name ({problem}); "
                    "Lambda or the tool that unpacks it could write outside the layer "
                    "directory: rebuild the zip from a clean directory",
                )
                continue
            if info.filename in seen:
                self.warn(
                    "zip",
                    info.filename,
                    "appears more than once in the zip; "
                    "which copy is unpacked depends on the tool: rebuild the zip",
                )
            seen.add(info.filename)
            if is_symlink(info):
                self._symlink(info)
                continue
            if info.file_size > BOMB_MIN_SIZE and info.file_size > BOMB_RATIO * max(
                info.compress_size, 1
            ):
                self.error(
                    "zip-bomb",
                    info.filename,
                    f"declares {info.file_size:,} bytes unzipped from "
                    f"{info.compress_size:,} compressed (ratio over {BOMB_RATIO}); "
                    "refusing to read it: rebuild the zip from trusted files",
                )
                continue
            safe.add(info.filename)
        self._overlaps(infos, safe)
        return safe

    def _symlink(self, info: zipfile.ZipInfo) -> None:
        try:
            target = self.zf.read(info)[:4096].decode("utf-8", "replace")
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError) as exc:
            target = f"<unreadable: {exc}>"
        resolved = posixpath.normpath(
            posixpath.join(posixpath.dirname(posixpath.join(OPT, info.filename)), target)
        )
        if target.startswith("/") or not resolved.startswith(OPT + "/"):
            self.error(
                "symlink",
                info.filename,
                f"is a symbolic link to {target!r}, outside the layer: "
                "rebuild the zip without symlinks (zip without -y)",
            )
        else:
            self.files.add(info.filename)
            self.warn(
                "symlink",
                info.filename,
                f"is a symbolic link to {target!r}; tools that unpack with Python's "
                "zipfile write it as a small text file: store the file itself",
            )

    def _overlaps(self, infos: list[zipfile.ZipInfo], safe: set[str]) -> None:
        """Entries sharing compressed bytes: the overlapping-file zip bomb."""
        ordered = sorted(infos, key=lambda i: i.header_offset)
        for prev, info in zip(ordered, ordered[1:]):
            encoding = "utf-8" if prev.flag_bits & 0x800 else "cp437"
            name_len = len(prev.orig_filename.encode(encoding, "replace"))
            end = prev.header_offset + 30 + name_len + prev.compress_size
            if info.header_offset < end:
                safe.discard(info.filename)
                safe.discard(prev.filename)
                self.error(
                    "zip-bomb",
                    info.filename,
                    f"overlaps the data of {prev.filename!r} in the zip (a trick of "
                    "zip bombs): rebuild the zip from trusted files",
                )

    # -- layout and size ----------------------------------------------------------

    def _layout(self, infos: list[zipfile.ZipInfo]) -> None:
        want = self.target.python_version_str
        wrong: dict[tuple[str, str], int] = defaultdict(int)  # (prefix, version) -> entries
        outside_site: dict[str, int] = defaultdict(int)
        stray: dict[str, int] = defaultdict(int)
        importable = 0
        for info in infos:
            name = info.filename
            top, _, rest = name.partition("/")
            if top == "python" and rest:
                m = _SITE.match(name)
                if m and m["ver"] != want:
                    wrong[(f"python/lib/python{m['ver']}/", m["ver"])] += 1
                elif m and not m["site"] and name != m.group(0):
                    outside_site[m.group(0)] += 1
                elif not info.is_dir():
                    importable += 1
            elif top in _ALLOWED_TOP and (rest or info.is_dir()):
                continue
            else:
                stray[top + "/" if rest or info.is_dir() else top] += 1
        runtime = self.target.runtime
        for (prefix, version), n in sorted(wrong.items()):
            self.error(
                "layout",
                prefix,
                f"{_plural(n, 'entry')} in a directory for Python {version}, which {runtime} "
                f"never puts on sys.path (it imports from python/ and "
                f"{self.target.site_packages}/): rebuild the layer for {runtime}",
            )
        for prefix, n in sorted(outside_site.items()):
            self.warn(
                "layout",
                prefix,
                f"{_plural(n, 'entry')} outside site-packages/, which is not on "
                f"sys.path: move them under {self.target.site_packages}/",
            )
        for prefix, n in sorted(stray.items()):
            self.warn(
                "layout",
                prefix,
                f"{_plural(n, 'entry')} outside python/ (Lambda extracts the layer to "
                "/opt and imports only from /opt/python and its site-packages): "
                "move Python code under python/",
            )
        if importable == 0 and not wrong:
            self.warn("layout", "", "nothing under python/: the layer adds nothing importable")

    def _size(self, size: int, combined: int | None) -> None:
        self._limit(size, "the layer")
        if combined is not None:
            self._limit(combined, f"the layer with {_plural(len(self.others), 'other layer')}")
        count = 1 + len(self.others)
        if count > MAX_LAYERS:
            self.error(
                "layer-count",
                "",
                f"{count} layers, but a function can use at most {MAX_LAYERS}: merge some of them",
            )

    def _limit(self, size: int, what: str) -> None:
        if size > MAX_UNZIPPED:
            self.error(
                "size",
                "",
                f"{what} unzips to {size:,} bytes, over Lambda's limit of "
                f"{MAX_UNZIPPED:,} for a function and all its layers: leave out "
                "what the runtime already has (--exclude boto3 botocore) or large "
                "optional dependencies",
            )
        elif size > SIZE_WARNING * MAX_UNZIPPED:
            self.warn(
                "size",
                "",
                f"{what} unzips to {size:,} bytes, {size / MAX_UNZIPPED:.0%} of Lambda's "
                f"limit of {MAX_UNZIPPED:,} for a function and all its layers; little is "
                "left for the function's own code",
            )

    def _other_layers(self, files: list[zipfile.ZipInfo], size: int) -> int:
        owner: dict[str, str] = {i.filename: self.layer for i in files}
        shared: dict[tuple[str, str, str], int] = defaultdict(int)
        total = size
        for other in self.others:
            try:
                with zipfile.ZipFile(other) as zf:
                    other_files = [i for i in zf.infolist() if not i.is_dir()]
            except (OSError, zipfile.BadZipFile, ValueError, EOFError) as exc:
                self.error("zip", "", f"cannot open the other layer {other!r}: {exc}")
                continue
            for info in other_files:
                total += info.file_size
                name = info.filename
                if _unsafe_name(info.orig_filename):
                    continue
                self.other_files.setdefault(name, other)
                if name in owner:
                    shared[(_group(name), owner[name], other)] += 1
                owner[name] = other
        for (group, first, later), n in sorted(shared.items()):
            self.warn(
                "overlap",
                group,
                f"{_plural(n, 'file')} in both {first} and {later}; on Lambda the layer "
                f"extracted later ({later}, if the function lists them in that order) "
                "overwrites the other's copies: keep one copy",
            )
        return total

    # -- extension modules --------------------------------------------------------

    def _extension_suffixes(self, files: list[zipfile.ZipInfo]) -> None:
        suffixes = self.target.extension_suffixes()
        want = self.target.python_version_str
        for info in files:
            name = info.filename
            if not name.startswith("python/") or not name.endswith(".so"):
                continue
            m = _SITE.match(name)
            if m and m.group("ver") != want:
                continue  # reported once by the layout check
            base = posixpath.basename(name)
            tag = extension_tag(base)
            if tag is None or any(base.endswith(s) for s in suffixes[:-1]):
                continue
            why = self._suffix_problem(tag)
            if why:
                self.error(
                    "extension-suffix",
                    name,
                    f"is an extension module {why}; {self.target.runtime} imports only "
                    f"{', '.join(repr(s) for s in suffixes)} files: use the wheel built "
                    f"for {self.target.abi} on {self.target.machine}",
                )

    def _suffix_problem(self, tag: str) -> str | None:
        if tag == "abi3":
            return None
        m = _CPYTHON_TAG.match(tag)
        if m is None:
            if re.match(r"^(pypy|graalpy|pyston)", tag):
                return f"for another Python implementation ({tag!r})"
            return None  # a dotted plain library name such as libfoo.1.so: not a module
        ver = f"{m['ver']}.{m['minor']}"
        plat = m["plat"] or ""
        if ver != self.target.python_version_str:
            return f"for CPython {ver} ({tag!r})"
        if m["flags"]:
            kind = {"t": "free-threaded", "d": "debug"}.get(m["flags"], f"{m['flags']!r}")
            return f"for a {kind} build of CPython ({tag!r})"
        if not plat.startswith(self.target.machine + "-"):
            return f"for another platform ({tag!r})"
        if plat != f"{self.target.machine}-linux-gnu":
            return f"for another C library or OS ({tag!r})"
        return None

    # -- wheels the layer was made from -------------------------------------------

    def _manylinux_files(self, files: list[zipfile.ZipInfo]) -> set[str]:
        """The files that the RECORD of a manylinux/musllinux wheel lists."""
        out: set[str] = set()
        for info in files:
            m = _WHEEL_FILE.match(info.filename)
            if m is None or info.file_size > _MAX_METADATA:
                continue
            try:
                record = self.zf.getinfo(info.filename[: -len("WHEEL")] + "RECORD")
            except KeyError:
                continue
            if record.file_size > _MAX_METADATA:
                continue
            try:
                wheel = self.zf.read(info).decode("utf-8", "replace")
                tags = [line[4:].strip() for line in wheel.splitlines() if line.startswith("Tag:")]
                if not any("manylinux" in t or "musllinux" in t for t in tags):
                    continue
                text = self.zf.read(record).decode("utf-8", "replace")
            except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError):
                continue  # reported by the ELF pass if it matters
            for row in csv.reader(io.StringIO(text)):
                if row and not row[0].startswith(("/", "..")):
                    out.add(m["root"] + row[0])
        return out

    # -- ELF files ----------------------------------------------------------------

    def _read_elfs(self, files: list[zipfile.ZipInfo]) -> None:
        want = symbol_filter(self.target)
        todo = [info for info in files if may_be_elf(info)]
        unread = [info for info in todo if MemberKey.of(info) not in self.scanned]
        fresh: Iterator[tuple[ElfInfo | None, BaseException | None]] = iter(())
        if unread:
            # Inflating the members is most of the work, and zlib lets go of the GIL
            # while it inflates: read several at once; findings keep the zip's order.
            with ThreadPoolExecutor(max_workers=READERS) as pool:
                fresh = iter(list(pool.map(lambda i: read_member(self.zf, i, want), unread)))
        for info in todo:
            parsed: ElfInfo | None
            exc: BaseException | None
            key = MemberKey.of(info)
            if key in self.scanned:  # read from the wheel it was copied from
                value = self.scanned[key]
                parsed, exc = (None, value) if isinstance(value, ElfError) else (value, None)
            else:
                parsed, exc = next(fresh)
            if isinstance(exc, ElfError):
                loadable = re.search(r"\.so(\.\d+)*$", info.filename) is not None
                self.add(
                    "error" if loadable else "warning",
                    "elf",
                    info.filename,
                    f"starts like an ELF file but cannot be read ({exc}); "
                    f"{'ld.so will refuse to load it' if loadable else 'nothing can run it'}: "
                    "check the wheel it came from",
                )
            elif exc is not None:
                self.error(
                    "zip", info.filename, f"cannot be read from the zip ({exc}): rebuild the zip"
                )
            elif parsed is not None and parsed.loadable:
                self.elfs[info.filename] = _Elf(info.filename, parsed)

    def _level(self, elf: _Elf) -> tuple[str, str]:
        """Error for files that extension modules or executables load; a warning
        (and why) for the rest, which only ctypes, a plugin host or a tool loads."""
        if elf.path in self.linkage.used:
            return "error", ""
        return "warning", (
            "; no extension module or executable in the layer loads it, so this matters "
            "only if something loads it another way (ctypes, a plugin host, a debugger)"
        )

    def _machine(self, elf: _Elf) -> None:
        info = elf.info
        want = self.target.machine
        if info.machine_name == want and info.bits == 64 and info.little_endian:
            return
        got = info.machine_name
        if info.bits != 64 or not info.little_endian:
            got += f" ({info.bits}-bit, {'little' if info.little_endian else 'big'}-endian)"
        other = "arm64" if want == "x86_64" else "x86_64"
        hint = (
            f"build the layer with --arch {other}, or use {want} wheels"
            if info.machine_name in ("x86_64", "aarch64") and info.bits == 64
            else f"use a wheel built for {want}"
        )
        level, why = self._level(elf)
        self.add(
            level,
            "elf-machine",
            elf.path,
            f"is {got} code, but {self.target} runs {want} (64-bit little-endian) only"
            f"{why}: {hint}",
        )

    def _glibc(self, elf: _Elf) -> None:
        glibc = self.target.glibc
        too_new: dict[str, tuple[int, ...]] = {}
        for need in elf.info.version_needs:
            v = glibc_version(need.name)
            if v is not None and v > glibc:
                too_new[need.name] = v
        if not too_new:
            return
        names = sorted(too_new, key=lambda n: too_new[n], reverse=True)
        described = ", ".join(_with_symbols(n, elf.info.symbols) for n in names)
        have = ".".join(map(str, glibc))
        level, why = self._level(elf)
        self.add(
            level,
            "glibc",
            elf.path,
            f"needs {described}, but {self.target.runtime} runs on "
            f"{self.target.os_name} with glibc {have}{why}: use a wheel tagged "
            f"manylinux_{glibc[0]}_{glibc[1]} or older"
            + (
                ""
                if glibc >= (2, 34)
                else ", or a runtime on Amazon Linux 2023 (python3.12 or later, glibc 2.34)"
            ),
        )

    def _symbol_versions(self, elf: _Elf, library: str) -> None:
        """Symbol versions *elf* needs from the base image's copy of *library*."""
        too_new: list[str] = []
        for need in elf.info.version_needs:
            m = VERSION.match(need.name)
            if need.file != library or m is None or m["family"] == "GLIBC":
                continue
            ceiling = self.base.ceilings.get(m["family"])
            if ceiling is not None and version_tuple(m["ver"]) > ceiling:
                too_new.append(need.name)
        if too_new:
            described = ", ".join(_with_symbols(n, elf.info.symbols) for n in sorted(too_new))
            limits = ", ".join(
                f"{k}_{'.'.join(map(str, v))}" for k, v in sorted(self.base.ceilings.items())
            )
            self.error(
                "symbol-version",
                elf.path,
                f"needs {described} from {library}, but {self.target.os_name} has "
                f"{limits} at most: use a wheel that bundles its C++ runtime "
                f"(auditwheel-repaired manylinux)",
            )

    # -- the dynamic loader -------------------------------------------------------

    def _libraries(self) -> None:
        """Load every ELF file as ld.so would and report the libraries it misses."""
        linkage = link(
            {p: e.info for p, e in self.elfs.items()},
            self.files,
            self.other_files,
            self.base,
            self.target.python_version_str,
        )
        self.linkage = linkage
        for path, name in sorted(linkage.from_base):
            self._symbol_versions(self.elfs[path], name)
        for path, name, where in linkage.misplaced:
            info = self.elfs[path].info
            paths = [*info.rpath, *info.runpath]
            searched = f"RPATH/RUNPATH {':'.join(paths)}" if paths else "no RPATH/RUNPATH"
            self.warn(
                "needed-library",
                path,
                f"needs {name}, which is in the layer at {where} but not on its "
                f"library search path ({searched}, /opt/lib): it loads only if something "
                "loaded that copy first",
            )
        for name, paths in sorted(linkage.missing.items()):
            self._missing(name, paths)
        for name, needing in sorted(linkage.unverified.items()):
            self.warn(
                "needed-library",
                min(needing),
                f"needs {name}{_also(needing)}, which {self.target.os_name} is believed to "
                "have but which is not confirmed for the Lambda execution environment: "
                "test the import on Lambda, or vendor the library",
            )

    def _missing(self, name: str, paths: list[str]) -> None:
        loading = sorted(
            _module_path(root)
            for root in self.linkage.broken[name]
            if root.startswith("python/") and root.endswith(".so")
        )
        breaks = ""
        if loading:
            more = f" and {len(loading) - 3} more" if len(loading) > 3 else ""
            breaks = f", so loading {', '.join(loading[:3])}{more} fails"
        nowhere = (
            f"neither the layer (its RPATH/RUNPATH or /opt/lib) nor the "
            f"{self.target.os_name} Lambda environment provides{breaks}"
        )
        if not self.linkage.broken[name] & self.linkage.used:
            self.warn(
                "needed-library",
                paths[0],
                f"needs {name}{_also(paths)}, which {nowhere}; no extension module or "
                "executable in the layer loads it, so this matters only if something loads "
                "it another way (ctypes, a plugin host): add a layer with it under lib/ if so",
            )
            return
        if name not in manylinux_libraries() and all(p in self.from_manylinux for p in paths):
            # auditwheel vendors every library outside its list unless the packager
            # excluded it on purpose: an optional or separately installed library
            self.warn(
                "needed-library",
                paths[0],
                f"needs {name}{_also(paths)}, which its manylinux wheel leaves out on "
                f"purpose (an optional or separately installed library) and which {nowhere}: "
                "harmless if the package treats it as optional, else add a layer with it "
                "under lib/",
            )
            return
        self.error(
            "needed-library",
            paths[0],
            f"needs {name}{_also(paths)}, which {nowhere}: use a wheel that vendors it "
            "(auditwheel-repaired manylinux) or one without the feature that needs it, "
            "or add a layer with it under lib/",
        )


# -- helpers --------------------------------------------------------------------------


def _unsafe_name(name: str) -> str | None:
    if "\0" in name:
        return "NUL byte"
    if "\\" in name:
        return "backslash"
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "absolute path"
    if ".." in name.split("/"):
        return "'..' component"
    return None


def _with_symbols(version: str, symbols: Mapping[str, tuple[str, ...]]) -> str:
    names = symbols.get(version, ())
    if not names:
        return version
    more = f", +{len(names) - 3}" if len(names) > 3 else ""
    return f"{version} ({', '.join(names[:3])}{more})"


def _also(paths: Sequence[str] | set[str]) -> str:
    """``" (as do 2 other files: a.so, b.so)"`` for the files after the first."""
    others = sorted(paths)[1:]
    if not others:
        return ""
    names = ", ".join(posixpath.basename(p) for p in others[:3])
    more = ", ..." if len(others) > 3 else ""
    verb = "does" if len(others) == 1 else "do"
    return f" (as {verb} {_plural(len(others), 'other file')}: {names}{more})"


def _module_path(path: str) -> str:
    """*path* as seen from sys.path: relative to site-packages or python/."""
    m = _SITE.match(path)
    if m and m["site"]:
        return path[m.end() :]
    return path.removeprefix("python/")


def _group(path: str) -> str:
    """The package directory a file belongs to, for grouping overlaps."""
    m = _SITE.match(path)
    if m and m.group("site"):
        head, rest = path[: m.end()], path[m.end() :]
    else:
        head, rest = "", path
    first = rest.split("/", 1)[0]
    return head + first + ("/" if "/" in rest else "")
