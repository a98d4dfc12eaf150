"""``verify``'s checks of the zip itself: unsafe members, the layout Lambda
imports from, the size limits, extension module suffixes, and the files the
manylinux wheels' RECORDs list (for the ELF checks)."""

from __future__ import annotations

import csv
import io
import posixpath
import re
import zipfile
import zlib
from collections import defaultdict

from .elfscan import is_symlink
from .limits import MAX_LAYERS, MAX_UNZIPPED
from .linker import OPT, extension_tag
from .verify_report import Checks, plural
from .verify_source import ZipMember, open_layer
from .zipread import DRIVE

__all__ = ["BOMB_MIN_SIZE", "BOMB_RATIO", "SITE", "SIZE_WARNING", "LayoutChecks"]

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
SITE = re.compile(r"^python/lib/python(?P<ver>\d+\.\d+)/(?P<site>site-packages/)?")
_WHEEL_FILE = re.compile(
    r"^(?P<root>python/(?:lib/python\d+\.\d+/site-packages/)?)[^/]+\.dist-info/WHEEL$"
)
_MAX_METADATA = 64 * 1024 * 1024


class LayoutChecks(Checks):
    """The checks of the zip's members, their names and sizes, and the layout."""

    # -- safety -------------------------------------------------------------------

    def _safety(self, infos: list[ZipMember]) -> set[str]:
        """Report unsafe members; return the names that are not safe to read (no
        copy of them is).  Each set of a layer's 6,170 names takes 512 KB, so the
        few bad names are what is kept, not the many good ones."""
        failed: set[str] = set()  # names with a copy that is not safe to read
        passed: list[bool] = []  # by member: safe to read
        names: list[str] = []  # the names that are safe, to find those held twice
        for info in infos:
            raw = info.orig_filename
            problem = _unsafe_name(raw)
            ok = False
            if problem:
                self.error(
                    "zip-slip",
                    raw,
                    f"unsafe member name ({problem}); "
                    "Lambda or the tool that unpacks it could write outside the layer "
                    "directory: rebuild the zip from a clean directory",
                )
            elif is_symlink(info):
                names.append(info.filename)
                self._symlink(info)
            elif info.file_size > BOMB_MIN_SIZE and info.file_size > BOMB_RATIO * max(
                info.compress_size, 1
            ):
                names.append(info.filename)
                self.error(
                    "zip-bomb",
                    info.filename,
                    f"declares {info.file_size:,} bytes unzipped from "
                    f"{info.compress_size:,} compressed (ratio over {BOMB_RATIO}); "
                    "refusing to read it: rebuild the zip from trusted files",
                )
            else:
                names.append(info.filename)
                ok = True
            passed.append(ok)
            if not ok:
                failed.add(info.filename)
        names.sort()
        for name, after in zip(names, names[1:]):
            if name == after:
                self.warn(
                    "zip",
                    name,
                    "appears more than once in the zip; "
                    "which copy is unpacked depends on the tool: rebuild the zip",
                )
        blocked = failed - {
            i.filename for i, ok in zip(infos, passed) if ok and i.filename in failed
        }
        self._overlaps(infos, blocked)
        return blocked

    def _symlink(self, info: ZipMember) -> None:
        try:
            target = self.source.read(info)[:4096].decode("utf-8", "replace")
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
            self.files[info.filename] = None
            self.warn(
                "symlink",
                info.filename,
                f"is a symbolic link to {target!r}; tools that unpack with Python's "
                "zipfile write it as a small text file: store the file itself",
            )

    def _overlaps(self, infos: list[ZipMember], blocked: set[str]) -> None:
        """Entries sharing compressed bytes: the overlapping-file zip bomb."""
        ordered = sorted(infos, key=lambda i: i.header_offset)
        for prev, info in zip(ordered, ordered[1:]):
            name = prev.orig_filename
            if name.isascii():  # one byte a character in UTF-8 and cp437 alike
                name_len = len(name)
            else:
                encoding = "utf-8" if prev.flag_bits & 0x800 else "cp437"
                name_len = len(name.encode(encoding, "replace"))
            end = prev.header_offset + 30 + name_len + prev.compress_size
            if info.header_offset < end:
                blocked.add(info.filename)
                blocked.add(prev.filename)
                self.error(
                    "zip-bomb",
                    info.filename,
                    f"overlaps the data of {prev.filename!r} in the zip (a trick of "
                    "zip bombs): rebuild the zip from trusted files",
                )

    # -- layout and size ----------------------------------------------------------

    def _layout(self, infos: list[ZipMember]) -> None:
        want = self.target.python_version_str
        wrong: dict[tuple[str, str], int] = defaultdict(int)  # (prefix, version) -> entries
        outside_site: dict[str, int] = defaultdict(int)
        stray: dict[str, int] = defaultdict(int)
        importable = 0
        for info in infos:
            name = info.filename
            top, _, rest = name.partition("/")
            if top == "python" and rest:
                m = SITE.match(name)
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
                f"{plural(n, 'entry')} in a directory for Python {version}, which {runtime} "
                f"never puts on sys.path (it imports from python/ and "
                f"{self.target.site_packages}/): rebuild the layer for {runtime}",
            )
        for prefix, n in sorted(outside_site.items()):
            self.warn(
                "layout",
                prefix,
                f"{plural(n, 'entry')} outside site-packages/, which is not on "
                f"sys.path: move them under {self.target.site_packages}/",
            )
        for prefix, n in sorted(stray.items()):
            self.warn(
                "layout",
                prefix,
                f"{plural(n, 'entry')} outside python/ (Lambda extracts the layer to "
                "/opt and imports only from /opt/python and its site-packages): "
                "move Python code under python/",
            )
        if importable == 0 and not wrong:
            self.warn("layout", "", "nothing under python/: the layer adds nothing importable")

    def _size(self, size: int, combined: int | None) -> None:
        self._limit(size, "the layer")
        if combined is not None:
            self._limit(combined, f"the layer with {plural(len(self.others), 'other layer')}")
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

    def _other_layers(self, files: list[ZipMember], size: int) -> int:
        owner: dict[str, str] = {i.filename: self.layer for i in files}
        shared: dict[tuple[str, str, str], int] = defaultdict(int)
        total = size
        for other in self.others:
            try:
                source = open_layer(other)
                try:
                    other_files = [i for i in source.members() if not i.is_dir()]
                finally:
                    source.close()
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
                f"{plural(n, 'file')} in both {first} and {later}; on Lambda the layer "
                f"extracted later ({later}, if the function lists them in that order) "
                "overwrites the other's copies: keep one copy",
            )
        return total

    # -- extension modules --------------------------------------------------------

    def _extension_suffixes(self, files: list[ZipMember]) -> None:
        suffixes = self.target.extension_suffixes()
        want = self.target.python_version_str
        for info in files:
            name = info.filename
            if not name.startswith("python/") or not name.endswith(".so"):
                continue
            m = SITE.match(name)
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

    def _manylinux_files(self, files: list[ZipMember]) -> set[str]:
        """The layer's files that the RECORD of a manylinux/musllinux wheel lists (as
        the layer's own name strings: for a 250 MB layer a set of names made anew
        held 1.1 MB more)."""
        out: set[str] = set()
        for info in files:
            m = _WHEEL_FILE.match(info.filename)
            if m is None or info.file_size > _MAX_METADATA:
                continue
            try:
                record = self.source.getinfo(info.filename[: -len("WHEEL")] + "RECORD")
            except KeyError:
                continue
            if record.file_size > _MAX_METADATA:
                continue
            try:
                wheel = self.source.read(info).decode("utf-8", "replace")
                tags = [line[4:].strip() for line in wheel.splitlines() if line.startswith("Tag:")]
                if not any("manylinux" in t or "musllinux" in t for t in tags):
                    continue
                text = self.source.read(record).decode("utf-8", "replace")
            except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError):
                continue  # reported by the ELF pass if it matters
            for row in csv.reader(io.StringIO(text)):
                if row and not row[0].startswith(("/", "..")):
                    try:  # only the layer's own files matter, by the name it already holds
                        out.add(self.source.getinfo(m["root"] + row[0]).filename)
                    except KeyError:
                        continue
        return out


def _unsafe_name(name: str) -> str | None:
    if "\0" in name:
        return "NUL byte"
    if "\\" in name:
        return "backslash"
    if name.startswith("/") or DRIVE.match(name):
        return "absolute path"
    if ".." in name.split("/"):
        return "'..' component"
    return None


def _group(path: str) -> str:
    """The package directory a file belongs to, for grouping overlaps."""
    m = SITE.match(path)
    if m and m.group("site"):
        head, rest = path[: m.end()], path[m.end() :]
    else:
        head, rest = "", path
    first = rest.split("/", 1)[0]
    return head + first + ("/" if "/" in rest else "")
