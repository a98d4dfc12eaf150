"""Where ``ld.so`` would find each ``DT_NEEDED`` library of a layer's ELF files.

Lambda extracts every layer of a function to ``/opt``.  For each ELF file the
dynamic loader searches, in order: the ``DT_RPATH`` of the file and of the
files that loaded it (only when the file has no ``DT_RUNPATH``), then
``LD_LIBRARY_PATH`` (of which ``/opt/lib`` is in a layer), then the file's own
``DT_RUNPATH``, expanding ``$ORIGIN``, and finally the system directories,
which hold the libraries of the runtime's base image.  A library already loaded
under the same name (its soname or the name it was loaded by) is reused.

:func:`link` replays that for every file, starting from the files that are
certainly loaded (extension modules, executables, ``lib/`` and ``bin/``) and
then from the rest, and reports what it found as data; :mod:`layerbuilder.verify`
turns it into findings.  The base-image library lists are data files in
``layerbuilder/data/``.
"""

from __future__ import annotations

import functools
import posixpath
import re
from collections import defaultdict
from collections.abc import Collection, Mapping
from importlib import resources

import msgspec

from .elf import ElfInfo

__all__ = [
    "OPT",
    "BaseImage",
    "Linkage",
    "base_image",
    "extension_tag",
    "is_primary",
    "link",
    "manylinux_libraries",
]

OPT = "/opt"  # where Lambda extracts layers
_LD_LIBRARY_PATH_IN_OPT = ("lib",)  # /opt/lib is on Lambda's LD_LIBRARY_PATH
_EXT_NAME = re.compile(r"^[A-Za-z_]\w*\.(?P<tag>[^.]+)\.so$")
_INTERPRETER_TAG = re.compile(r"^(abi3$|cpython-|pypy|graalpy|pyston)")
_LIBPYTHON = re.compile(r"^libpython(?P<ver>\d+\.\d+)")


# -- data -----------------------------------------------------------------------------


class BaseImage(msgspec.Struct, frozen=True):
    """The shared libraries an OS's Lambda execution environment provides."""

    os_name: str
    libraries: frozenset[str]
    unverified: frozenset[str]  # believed present, not confirmed
    #: symbol-version family -> the newest the image has (GLIBCXX -> 3.4.24)
    ceilings: Mapping[str, tuple[int, ...]] = msgspec.field(default_factory=dict)


def _data(name: str) -> str:
    return resources.files("layerbuilder").joinpath("data").joinpath(name).read_text("utf-8")


@functools.cache
def base_image(os_name: str) -> BaseImage:
    """The library list for *os_name* (``Target.os_name``), read from
    ``layerbuilder/data/<os-name-slug>.txt``."""
    slug = re.sub(r"[^a-z0-9]+", "-", os_name.lower()).strip("-")
    libs: set[str] = set()
    unverified: set[str] = set()
    ceilings: dict[str, tuple[int, ...]] = {}
    for raw in _data(f"{slug}.txt").splitlines():
        parts = raw.split("#", 1)[0].split()
        if not parts:
            continue
        if parts[0] == "max" and len(parts) == 3:
            ceilings[parts[1]] = tuple(int(p) for p in parts[2].split("."))
        elif parts[1:] == ["?"]:
            unverified.add(parts[0])
        elif len(parts) == 1:
            libs.add(parts[0])
        else:
            raise ValueError(f"{slug}.txt: cannot read line {raw!r}")
    return BaseImage(os_name, frozenset(libs), frozenset(unverified), ceilings)


@functools.cache
def manylinux_libraries() -> frozenset[str]:
    """The libraries a manylinux wheel may leave external (auditwheel's whitelist)."""
    lines = (line.split("#", 1)[0].strip() for line in _data("manylinux-libs.txt").splitlines())
    return frozenset(line for line in lines if line)


def extension_tag(path: str) -> str | None:
    """The tag of an extension-module file name (``cpython-312-x86_64-linux-gnu``
    for ``m.cpython-312-x86_64-linux-gnu.so``), or None for other names."""
    m = _EXT_NAME.match(posixpath.basename(path))
    return m["tag"] if m else None


def is_primary(path: str, info: ElfInfo) -> bool:
    """An ELF file something certainly loads: an executable, anything in the layer's
    ``lib/`` or ``bin/``, or an extension module named with an interpreter tag."""
    if info.interpreter or path.split("/", 1)[0] in ("lib", "bin"):
        return True
    tag = extension_tag(path)
    return tag is not None and _INTERPRETER_TAG.match(tag) is not None


# -- linking --------------------------------------------------------------------------


class Linkage(msgspec.Struct):
    """What loading every ELF file of a layer found."""

    #: files that extension modules, executables or lib/ and bin/ files load
    used: set[str] = msgspec.field(default_factory=set)
    #: library -> files that need it and find it nowhere
    missing: dict[str, list[str]] = msgspec.field(default_factory=dict)
    #: library -> the first files of the loads that fail on it
    broken: dict[str, set[str]] = msgspec.field(default_factory=lambda: defaultdict(set))
    #: (file, library, where the layer has it) for libraries off the file's search path
    misplaced: list[tuple[str, str, str]] = msgspec.field(default_factory=list)
    #: library -> files needing a library the base image is believed to have
    unverified: dict[str, set[str]] = msgspec.field(default_factory=lambda: defaultdict(set))
    #: (file, library) pairs resolved to the base image's copy
    from_base: set[tuple[str, str]] = msgspec.field(default_factory=set)


def link(
    elfs: Mapping[str, ElfInfo],
    files: Collection[str],
    other_files: Mapping[str, str],
    base: BaseImage,
    python_version: str,
) -> Linkage:
    """Resolve every ``DT_NEEDED`` of *elfs* (zip path -> parsed ELF).

    *files* are all the paths the layer puts under ``/opt`` (ELF or not, with
    symlinks), *other_files* those of the function's other layers (path -> layer),
    *python_version* the runtime's (``"3.12"``) for its ``libpython``.
    """
    return _Linker(elfs, files, other_files, base, python_version).run()


class _Linker:
    def __init__(
        self,
        elfs: Mapping[str, ElfInfo],
        files: Collection[str],
        other_files: Mapping[str, str],
        base: BaseImage,
        python_version: str,
    ) -> None:
        self.elfs = elfs
        self.files = files
        self.other_files = other_files
        self.base = base
        self.python_version = python_version
        self.out = Linkage()
        self.resolved: dict[tuple[str, str], bool] = {}  # (file, needed) -> found once

    def run(self) -> Linkage:
        needed = {n for info in self.elfs.values() for n in info.needed}
        for root in sorted(p for p, info in self.elfs.items() if is_primary(p, info)):
            self.out.used |= self._load(root)
        # then what nothing in the layer loads: ctypes libraries, plugins, helpers
        orphans = [
            p
            for p, info in sorted(self.elfs.items())
            if posixpath.basename(p) not in needed and (info.soname or "") not in needed
        ]
        reached = set(self.out.used)
        for root in orphans + sorted(self.elfs):
            if root not in reached:
                reached |= self._load(root)
        missing: dict[str, list[str]] = defaultdict(list)
        for (path, name), ok in sorted(self.resolved.items()):
            if ok:
                continue
            elsewhere = self._elsewhere(name)
            if elsewhere:
                self.out.misplaced.append((path, name, elsewhere))
            else:
                missing[name].append(path)
        self.out.missing = dict(missing)
        return self.out

    def _load(self, root: str) -> set[str]:
        """Load *root* and everything it needs; the layer files loaded."""
        loaded: dict[str, str] = {}  # soname or load name -> path
        queue: list[tuple[str, tuple[str, ...]]] = [(root, ())]
        seen = {root}
        while queue:
            path, loaders = queue.pop(0)
            info = self.elfs[path]
            for name in (posixpath.basename(path), info.soname):
                if name:
                    loaded.setdefault(name, path)
            chain = (path, *loaders)
            for name in info.needed:
                where = loaded.get(name) or self._search(path, chain, name)
                key = (path, name)
                self.resolved[key] = self.resolved.get(key, False) or where is not None
                if where is None:
                    self.out.broken[name].add(root)
                elif where in self.elfs:
                    loaded.setdefault(name, where)
                    if where not in seen:
                        seen.add(where)
                        queue.append((where, chain))
                elif where == "base:" + name:
                    self.out.from_base.add((path, name))
                elif where == "unverified:" + name:
                    self.out.unverified[name].add(path)
        return seen

    def _search(self, path: str, chain: tuple[str, ...], name: str) -> str | None:
        """Where ld.so finds *name* for *path* (loaded through *chain*): a zip path,
        ``"other:<path>"``, ``"base:<name>"``, ``"unverified:<name>"`` or None."""
        if "/" in name:
            return self._in_opt(name if name.startswith("/") else "", "")
        info = self.elfs[path]
        dirs: list[tuple[str, str]] = []  # (directory, $ORIGIN for it)
        if not info.runpath:
            for p in chain:  # DT_RPATH of the object and of everything that loaded it
                dirs += [(d, _origin(p)) for d in self.elfs[p].rpath]
        dirs += [(posixpath.join(OPT, d), "") for d in _LD_LIBRARY_PATH_IN_OPT]
        dirs += [(d, _origin(path)) for d in info.runpath]
        for directory, origin in dirs:
            found = self._in_opt(directory, origin, name)
            if found:
                return found
        if name in self.base.libraries:
            return "base:" + name
        if name in self.base.unverified:
            return "unverified:" + name
        m = _LIBPYTHON.match(name)
        if m and m["ver"] == self.python_version:
            return "unverified:" + name  # the interpreter's own, if it is built shared
        return None

    def _in_opt(self, directory: str, origin: str, name: str = "") -> str | None:
        expanded = directory.replace("${ORIGIN}", "$ORIGIN").replace("$ORIGIN", origin)
        if "$" in expanded or not expanded.startswith("/"):
            return None  # $LIB, $PLATFORM or a relative path: not resolvable here
        full = posixpath.normpath(posixpath.join(expanded, name) if name else expanded)
        if not full.startswith(OPT + "/"):
            return None  # a system directory: the base image list covers those
        path = full[len(OPT) + 1 :]
        if path in self.files:
            return path
        if path in self.other_files:
            return "other:" + path
        return None

    def _elsewhere(self, name: str) -> str | None:
        """A copy of *name* anywhere in the layers, by file name or soname."""
        here = sorted(
            p
            for p, info in self.elfs.items()
            if posixpath.basename(p) == name or info.soname == name
        )
        there = sorted(
            f"{layer}:{p}" for p, layer in self.other_files.items() if posixpath.basename(p) == name
        )
        return (here + there)[0] if here or there else None


def _origin(path: str) -> str:
    """``$ORIGIN`` of the layer file *path* once extracted."""
    return posixpath.dirname(posixpath.join(OPT, path))
