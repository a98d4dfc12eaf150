"""``verify``'s checks of the ELF files in a layer: their machine, the glibc and
other symbol versions they need, and the libraries the dynamic loader must find."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from .elf import ElfError, ElfInfo
from .elfscan import (
    READERS,
    VERSION,
    MemberKey,
    glibc_version,
    may_be_elf,
    read_member,
    symbol_filter,
    version_tuple,
)
from .linker import link, manylinux_libraries
from .verify_layout import SITE
from .verify_report import Checks, ElfFile, plural
from .verify_source import ZipMember

__all__ = ["ElfChecks"]


class ElfChecks(Checks):
    """The checks of the ELF files: :meth:`_read_elfs` fills ``self.elfs``."""

    def _read_elfs(self, files: list[ZipMember]) -> None:
        want = symbol_filter(self.target)
        todo = [info for info in files if may_be_elf(info)]
        unread = [info for info in todo if MemberKey.of(info) not in self.scanned]
        fresh: Iterator[tuple[ElfInfo | None, BaseException | None]] = iter(())
        if unread:
            # Inflating the members is most of the work, and zlib lets go of the GIL
            # while it inflates: read several at once; findings keep the zip's order.
            with ThreadPoolExecutor(max_workers=READERS) as pool:
                fresh = iter(list(pool.map(lambda i: read_member(self.source, i, want), unread)))
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
                self.elfs[info.filename] = ElfFile(info.filename, parsed)

    def _level(self, elf: ElfFile) -> tuple[str, str]:
        """Error for files that extension modules or executables load; a warning
        (and why) for the rest, which only ctypes, a plugin host or a tool loads."""
        if elf.path in self.linkage.used:
            return "error", ""
        return "warning", (
            "; no extension module or executable in the layer loads it, so this matters "
            "only if something loads it another way (ctypes, a plugin host, a debugger)"
        )

    def _machine(self, elf: ElfFile) -> None:
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

    def _glibc(self, elf: ElfFile) -> None:
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

    def _symbol_versions(self, elf: ElfFile, library: str) -> None:
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
    return f" (as {verb} {plural(len(others), 'other file')}: {names}{more})"


def _module_path(path: str) -> str:
    """*path* as seen from sys.path: relative to site-packages or python/."""
    m = SITE.match(path)
    if m and m["site"]:
        return path[m.end() :]
    return path.removeprefix("python/")
