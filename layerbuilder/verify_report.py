"""The values ``verify`` produces (findings and the report), and the state its
checks (:mod:`layerbuilder.verify_layout`, :mod:`layerbuilder.verify_elf`) share."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import msgspec

from .elf import ElfInfo
from .elfscan import MemberKey, Scanned
from .errors import VerificationFailed
from .linker import Linkage, base_image
from .targets import Target

if TYPE_CHECKING:
    from .verify_source import LayerSource, ZipMember

__all__ = [
    "CHECKS",
    "Checks",
    "ElfFile",
    "Finding",
    "LayerVerificationFailed",
    "VerifyReport",
    "order",
    "plural",
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


class Finding(msgspec.Struct, frozen=True):
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


def order(f: Finding) -> tuple[int, int, str, str]:
    return (_LEVELS.index(f.level), CHECKS.index(f.check), f.path, f.message)


class VerifyReport(msgspec.Struct, frozen=True):
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
        counts = f"{plural(len(self.errors), 'error')}, {plural(len(self.warnings), 'warning')}"
        line = (
            f"{verdict}: {self.layer} for {self.target}: {counts}; "
            f"{self.unzipped_size:,} bytes unzipped in {plural(self.files, 'file')} "
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
            f"{plural(len(self.errors), 'error')}:\n" + "\n".join(lines) + "\n"
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


def plural(n: int, word: str) -> str:
    if n == 1:
        return f"1 {word}"
    return f"{n:,} {word[:-1] + 'ies' if word.endswith('y') else word + 's'}"


class ElfFile(msgspec.Struct):
    path: str
    info: ElfInfo


class Checks:
    """The zip and target every check reads, the state they share, and the findings
    they add (:mod:`layerbuilder.verify` runs them in order)."""

    def __init__(
        self,
        source: LayerSource,
        target: Target,
        layer: str,
        others: list[str],
        scanned: Mapping[MemberKey, Scanned],
    ) -> None:
        self.source = source
        self.scanned = scanned
        self.target = target
        self.layer = layer
        self.others = others
        self.base = base_image(target.os_name)
        self.findings: list[Finding] = []
        self.elfs: dict[str, ElfFile] = {}
        # regular files and symlinks, as on /opt (a dict as a set: for a layer's 6,170
        # names its table takes 290 KB, a set's 512 KB)
        self.files: dict[str, None] = {}
        self.other_files: dict[str, str] = {}  # path -> the other layer holding it
        self.readable: list[ZipMember] = []  # the files safe to read
        self._from_manylinux: set[str] | None = None
        self.linkage = Linkage()

    @property
    def from_manylinux(self) -> set[str]:
        """The files a manylinux wheel's RECORD lists, read when first asked for:
        only a missing library needs them (for a 241 MB layer they took 0.8 MB,
        and reading them 1.6 MB at the peak of verify)."""
        if self._from_manylinux is None:
            self._from_manylinux = self._manylinux_files(self.readable)
        return self._from_manylinux

    def _manylinux_files(self, files: list[ZipMember]) -> set[str]:
        raise NotImplementedError  # LayoutChecks reads them

    def add(self, level: str, check: str, path: str, message: str) -> None:
        self.findings.append(Finding(level, check, path, message))

    def error(self, check: str, path: str, message: str) -> None:
        self.add("error", check, path, message)

    def warn(self, check: str, path: str, message: str) -> None:
        self.add("warning", check, path, message)
