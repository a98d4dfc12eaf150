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

The zip is read in place (:mod:`layerbuilder.verify_source`): members are never
extracted to disk, and ELF members are read through :mod:`layerbuilder.elfscan`
(or taken from its scans of the wheels the layer was made from).  The checks are
in :mod:`layerbuilder.verify_layout` and :mod:`layerbuilder.verify_elf`, the
findings and the report in :mod:`layerbuilder.verify_report`; this module runs
them.
See ``docs/verify.md`` for the JSON output.
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from .elfscan import MemberKey, Scanned
from .targets import Target
from .verify_elf import ElfChecks
from .verify_layout import BOMB_MIN_SIZE, BOMB_RATIO, SIZE_WARNING, LayoutChecks
from .verify_report import CHECKS, Finding, LayerVerificationFailed, VerifyReport, order
from .verify_source import ZipFileSource, open_layer

__all__ = [
    "BOMB_MIN_SIZE",
    "BOMB_RATIO",
    "CHECKS",
    "SIZE_WARNING",
    "Finding",
    "LayerVerificationFailed",
    "VerifyReport",
    "verify_layer",
    "verify_zipfile",
]


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
        source = open_layer(zip_path)
    except (OSError, zipfile.BadZipFile, ValueError, EOFError) as exc:
        finding = Finding("error", "zip", "", f"cannot open {name!r} as a zip file: {exc}")
        return VerifyReport(name, target, (finding,), 0, 0, 0, tuple(map(str, with_layers)))
    try:
        others = [str(p) for p in with_layers]
        return _Verifier(source, target, name, others, scanned or {}).run()
    finally:
        source.close()


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
    return _Verifier(ZipFileSource(zf), target, layer, others, scanned or {}).run()


class _Verifier(LayoutChecks, ElfChecks):
    """Every check, in order."""

    def run(self) -> VerifyReport:
        infos = self.source.members()
        blocked = self._safety(infos)
        files = [i for i in infos if not i.is_dir()]
        size = sum(i.file_size for i in files)
        readable = [i for i in files if i.filename not in blocked] if blocked else files
        self.files.update(dict.fromkeys(i.filename for i in readable))
        self._layout(infos)
        self._extension_suffixes(files)
        self.readable = readable
        self._read_elfs(readable)
        combined = self._other_layers(files, size) if self.others else None
        self._size(size, combined)
        self._libraries()
        for elf in self.elfs.values():
            self._machine(elf)
            self._glibc(elf)
        findings = tuple(sorted(set(self.findings), key=order))
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
