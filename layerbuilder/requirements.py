"""Requirements files, read the way pip reads them, within what layerbuilder does.

Handled: comments, blank lines, ``\\`` line continuations, ``-r``/``--requirement``
includes (relative to the including file; cycles are reported), ``-c``/``--constraint``
files, markers, extras, per-line ``--hash=sha256:...``, ``-i``/``--index-url``,
``--pre``, and the harmless ``--only-binary``/``--prefer-binary``/``--require-hashes``.

Refused with a message quoting ``file:line``: editable installs, URLs and local
paths (layerbuilder installs named releases from one index), ``--extra-index-url``
and ``--find-links`` (one index only), ``--no-binary`` (no source builds), and
anything that does not parse.

The result iterates as :class:`RequirementLine` values: strings holding the
requirement, carrying their hashes and origin, which
:func:`layerbuilder.resolver.resolve` accepts as they are.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec
from packaging.requirements import InvalidRequirement as _PackagingInvalidRequirement
from packaging.requirements import Requirement

from .errors import InvalidRequirement

__all__ = ["RequirementLine", "RequirementsFile", "parse_requirements", "parse_requirements_file"]

_Bad = Callable[[str], InvalidRequirement]
_COMMENT = re.compile(r"(^|\s+)#.*$")
_HEX = re.compile(r"^[0-9a-fA-F]{64}$")
_URLISH = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
_ARCHIVE = (".whl", ".tar.gz", ".tgz", ".tar.bz2", ".zip")

# options with no effect here: layerbuilder only ever takes wheels
_IGNORED_FLAGS = ("--prefer-binary", "--require-hashes")
_REFUSED = {
    "-e": "editable installs are not supported: name a released version instead",
    "--editable": "editable installs are not supported: name a released version instead",
    "--extra-index-url": (
        "layerbuilder reads one index only; serve every package from one index "
        "and give it with --index-url"
    ),
    "-f": "--find-links is not supported: layerbuilder reads one index only",
    "--find-links": "--find-links is not supported: layerbuilder reads one index only",
    "--no-binary": "--no-binary is not supported: layerbuilder never builds from source",
    "--no-index": "--no-index is not supported: layerbuilder always reads an index",
}


class RequirementLine(str):
    """One requirement: its PEP 508 text, plus where it came from.

    ``hashes`` are the sha256 hex digests given with ``--hash`` (the file
    chosen must match one); ``constraint`` marks lines from ``-c`` files.
    """

    origin: str
    hashes: frozenset[str]
    constraint: bool

    def __new__(
        cls,
        text: str,
        *,
        origin: str,
        hashes: frozenset[str] = frozenset(),
        constraint: bool = False,
    ) -> RequirementLine:
        self = super().__new__(cls, text)
        self.origin = origin
        self.hashes = hashes
        self.constraint = constraint
        return self

    def __repr__(self) -> str:
        return f"RequirementLine({str(self)!r}, origin={self.origin!r})"


class RequirementsFile(msgspec.Struct, frozen=True):
    """What a requirements file says: its requirement (and constraint) lines,
    the ``--index-url`` it names, if any, and whether it asked for ``--pre``."""

    lines: tuple[RequirementLine, ...] = ()
    index_url: str | None = None
    pre: bool = False
    files: tuple[str, ...] = ()  # every file read, includes too

    def __iter__(self) -> Iterator[RequirementLine]:
        return iter(self.lines)

    def __len__(self) -> int:
        return len(self.lines)

    @property
    def requirements(self) -> tuple[RequirementLine, ...]:
        return tuple(r for r in self.lines if not r.constraint)

    @property
    def constraints(self) -> tuple[RequirementLine, ...]:
        return tuple(r for r in self.lines if r.constraint)


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """pip's join: ``\\`` at the end continues a line; comments end one."""
    pending: list[str] = []
    start = 0
    for number, line in enumerate(text.splitlines(), start=1):
        is_comment = _COMMENT.match(line) is not None
        if not line.endswith("\\") or is_comment:
            if is_comment:
                line = " " + line
            if pending:
                pending.append(line)
                yield start, "".join(pending)
                pending = []
            else:
                yield number, line
        else:
            if not pending:
                start = number
            pending.append(line[:-1])
    if pending:
        yield start, "".join(pending)


class _Reader:
    def __init__(self) -> None:
        self.lines: list[RequirementLine] = []
        self.index_url: str | None = None
        self.index_origin = ""
        self.pre = False
        self.files: list[str] = []

    def read(self, path: str, stack: tuple[str, ...], constraint: bool, origin: str) -> None:
        key = os.path.realpath(path)
        if key in stack:
            chain = " -> ".join([*(os.path.relpath(p) for p in stack), os.path.relpath(key)])
            raise InvalidRequirement(f"{origin}: requirements files include each other: {chain}")
        try:
            text = Path(path).read_text(encoding="utf-8-sig")
        except OSError as exc:
            where = f"{origin}: " if origin else ""
            raise InvalidRequirement(
                f"{where}cannot read requirements file {path!r}: {exc.strerror or exc}"
            ) from None
        except UnicodeDecodeError:
            raise InvalidRequirement(f"requirements file {path!r} is not UTF-8 text") from None
        self.files.append(path)
        self.parse(text, path, os.path.dirname(path), (*stack, key), constraint)

    def parse(
        self, text: str, source: str, base_dir: str, stack: tuple[str, ...], constraint: bool
    ) -> None:
        for number, raw in _logical_lines(text):
            line = _COMMENT.sub("", raw).strip()
            if line:
                self._line(line, f"{source}:{number}", base_dir, stack, constraint)

    def _line(
        self, line: str, origin: str, base_dir: str, stack: tuple[str, ...], constraint: bool
    ) -> None:
        def bad(reason: str) -> InvalidRequirement:
            return InvalidRequirement(f"{origin}: {line!r}: {reason}")

        # pip: every space-separated token before the first starting with "-"
        # is the requirement; the rest are options, split like a shell would
        words = line.split(" ")
        first_opt = next((i for i, w in enumerate(words) if w.startswith("-")), len(words))
        spec = " ".join(words[:first_opt]).strip()
        try:
            options = shlex.split(" ".join(words[first_opt:]), posix=True)
        except ValueError as exc:
            raise bad(str(exc)) from None
        if not spec:
            self._options(options, origin, base_dir, stack, constraint, bad)
            return
        hashes = self._hashes(options, bad)
        self.lines.append(self._requirement(spec, origin, hashes, constraint, bad))

    def _options(
        self,
        tokens: list[str],
        origin: str,
        base_dir: str,
        stack: tuple[str, ...],
        constraint: bool,
        bad: _Bad,
    ) -> None:
        opt, _, value = tokens[0].partition("=")
        if opt.startswith("-") and not opt.startswith("--") and len(opt) > 2 and not value:
            opt, value = opt[:2], opt[2:]  # -rfile
        rest = tokens[1:]
        if not value and rest and opt not in ("--pre", *_IGNORED_FLAGS):
            value, rest = rest[0], rest[1:]
        if opt in _REFUSED:
            raise bad(_REFUSED[opt])
        if opt in ("-r", "--requirement", "-c", "--constraint"):
            if not value:
                raise bad(f"{opt} needs a file name")
            if _URLISH.match(value):
                raise bad("requirements files are read from local paths only")
            nested = value if os.path.isabs(value) else os.path.join(base_dir, value)
            self.read(nested, stack, opt in ("-c", "--constraint"), origin)
        elif opt in ("-i", "--index-url"):
            if not value:
                raise bad(f"{opt} needs a URL")
            if self.index_url is not None and self.index_url != value:
                raise bad(
                    f"a second index URL; {self.index_origin} already gave {self.index_url!r}: "
                    "layerbuilder reads one index only"
                )
            self.index_url, self.index_origin = value.rstrip("/"), origin
        elif opt == "--pre":
            self.pre = True
        elif opt == "--only-binary" or opt in _IGNORED_FLAGS:
            pass  # layerbuilder only ever installs wheels
        else:
            raise bad(f"unsupported option {opt!r}")
        if rest and opt not in ("--only-binary",):
            raise bad(f"unexpected {' '.join(rest)!r} after {opt}")

    @staticmethod
    def _hashes(options: list[str], bad: _Bad) -> frozenset[str]:
        hashes: set[str] = set()
        others: list[str] = []
        i = 0
        while i < len(options):
            opt = options[i]
            if opt == "--hash" and i + 1 < len(options):
                value, i = options[i + 1], i + 2
            elif opt.startswith("--hash="):
                value, i = opt[len("--hash=") :], i + 1
            else:
                others.append(opt)
                i += 1
                continue
            algo, sep, digest = value.partition(":")
            if not sep or not digest:
                raise bad(f"--hash {value!r} is not of the form sha256:<hex digest>")
            if algo.lower() == "sha256":
                if not _HEX.match(digest):
                    raise bad(f"--hash {value!r}: a sha256 digest is 64 hex digits")
                hashes.add(digest.lower())
            elif algo.lower() not in ("sha384", "sha512"):
                raise bad(f"--hash {value!r}: unknown hash algorithm {algo!r}")
        if others:
            raise bad(f"unsupported option {others[0]!r} on a requirement line")
        if not hashes and any(o.startswith("--hash") for o in options):
            raise bad("only sha256 hashes can be checked against the index: add a sha256 --hash")
        return frozenset(hashes)

    @staticmethod
    def _requirement(
        spec: str, origin: str, hashes: frozenset[str], constraint: bool, bad: _Bad
    ) -> RequirementLine:
        head = spec.split(";", 1)[0].strip()
        pathish = "@" not in head and (head.startswith((".", "/", "~")) or head.endswith(_ARCHIVE))
        if _URLISH.match(head) or pathish:
            raise bad("URLs and local paths are not supported: name a released version instead")
        try:
            req = Requirement(spec)
        except _PackagingInvalidRequirement as exc:
            raise bad(f"not a valid requirement: {exc}") from None
        if req.url:
            raise bad("direct URL references are not supported: name a released version instead")
        if constraint and req.extras:
            raise bad("a constraint cannot have extras")
        return RequirementLine(str(req), origin=origin, hashes=hashes, constraint=constraint)


def parse_requirements_file(path: str | os.PathLike[str]) -> RequirementsFile:
    """Read a requirements file (and every file it includes)."""
    reader = _Reader()
    reader.read(os.fspath(path), (), False, "")
    return RequirementsFile(tuple(reader.lines), reader.index_url, reader.pre, tuple(reader.files))


def parse_requirements(
    text: str, *, source: str = "<requirements>", base_dir: str | os.PathLike[str] = "."
) -> RequirementsFile:
    """Parse requirements-file *text*; ``-r`` includes are relative to *base_dir*."""
    reader = _Reader()
    reader.parse(text, source, os.fspath(base_dir), (), False)
    return RequirementsFile(tuple(reader.lines), reader.index_url, reader.pre, tuple(reader.files))
