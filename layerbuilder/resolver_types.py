"""The requirements and candidates resolvelib sees, and the core metadata they carry.

These are the values :class:`~layerbuilder.resolver_provider.Provider` hands to
resolvelib, modelled on pip's:

* candidates: :class:`Base` (one version of a project, with the wheel chosen for
  the target), :class:`Extras` (``name[extra]`` at one version, its own node that
  depends on the exact base) and :class:`Python` (the runtime, for the
  Requires-Python node);
* requirements: :class:`Spec` (a name with a specifier), :class:`Explicit`
  (exactly one candidate), :class:`RequiresPython` and :class:`Unusable` (a node
  nothing can satisfy, for a candidate whose metadata cannot be used).

:func:`parse_metadata` reads a wheel's core metadata into a :class:`Metadata`.
"""

from __future__ import annotations

import email.parser
from typing import TYPE_CHECKING, Union

import msgspec
from packaging.requirements import InvalidRequirement as _PackagingInvalidRequirement
from packaging.requirements import Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

if TYPE_CHECKING:
    from .select import Candidate

__all__ = [
    "PYTHON_IDENTIFIER",
    "Base",
    "Cand",
    "Explicit",
    "Extras",
    "Metadata",
    "Python",
    "Req",
    "RequiresPython",
    "Spec",
    "Unusable",
    "parse_metadata",
]

PYTHON_IDENTIFIER = "<Python from Requires-Python>"

# -- requirements and candidates as resolvelib sees them ---------------------------------


def _format_name(name: str, extras: frozenset[str]) -> str:
    return f"{name}[{','.join(sorted(extras))}]" if extras else name


class Base(msgspec.Struct, frozen=True):
    """One version of a project, with the wheel chosen for the target."""

    name: str
    version: Version
    selected: Candidate

    @property
    def identifier(self) -> str:
        return self.name

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


class Extras(msgspec.Struct, frozen=True):
    """``name[extras]`` at one version: depends on the exact base candidate."""

    base: Base
    extras: frozenset[str]

    @property
    def identifier(self) -> str:
        return _format_name(self.base.name, self.extras)

    @property
    def version(self) -> Version:
        return self.base.version

    def __str__(self) -> str:
        return f"{self.identifier} {self.version}"


class Python(msgspec.Struct, frozen=True):
    version: Version

    @property
    def identifier(self) -> str:
        return PYTHON_IDENTIFIER

    def __str__(self) -> str:
        return f"Python {self.version}"


Cand = Union[Base, Extras, Python]


class Spec(msgspec.Struct, frozen=True):
    """A named requirement with a version specifier (pip's SpecifierRequirement)."""

    name: str
    extras: frozenset[str]
    specifier: SpecifierSet
    hashes: frozenset[str] = frozenset()
    origin: str | None = None  # "requirements.txt:3" for lines from files

    @property
    def identifier(self) -> str:
        return _format_name(self.name, self.extras)

    def __str__(self) -> str:
        return f"{self.identifier}{self.specifier}"


class Explicit(msgspec.Struct, frozen=True):
    """Exactly this candidate (pip's ExplicitRequirement)."""

    candidate: Base

    @property
    def identifier(self) -> str:
        return self.candidate.name

    def __str__(self) -> str:
        return f"{self.candidate.name}=={self.candidate.version}"


class RequiresPython(msgspec.Struct, frozen=True):
    specifier: SpecifierSet

    @property
    def identifier(self) -> str:
        return PYTHON_IDENTIFIER

    def __str__(self) -> str:
        return f"Python{self.specifier}"


class Unusable(msgspec.Struct, frozen=True):
    """A candidate whose metadata is unusable: a node nothing can satisfy."""

    candidate: Base
    reason: str

    @property
    def identifier(self) -> str:
        return f"<unusable {self.candidate.name} {self.candidate.version}>"

    def __str__(self) -> str:
        return self.reason


Req = Union[Spec, Explicit, RequiresPython, Unusable]

# -- core metadata -------------------------------------------------------------


class Metadata(msgspec.Struct, frozen=True):
    requires_dist: tuple[Requirement, ...]
    requires_python: SpecifierSet | None
    provides_extra: frozenset[str]
    problem: str | None = None


def parse_metadata(data: bytes, cand: Base) -> Metadata:
    msg = email.parser.BytesParser().parsebytes(data, headersonly=True)
    filename = cand.selected.file.filename
    name = msg.get("Name")
    version = msg.get("Version")
    try:
        if name is None or canonicalize_name(str(name)) != cand.name:
            raise ValueError(f"its metadata names project {name!r}")
        if version is None or Version(str(version)) != cand.version:
            raise ValueError(f"its metadata has version {version!r}")
        reqs = tuple(Requirement(str(r).strip()) for r in msg.get_all("Requires-Dist") or ())
        rp = msg.get("Requires-Python")
        requires_python = SpecifierSet(str(rp).strip()) if rp and str(rp).strip() else None
    except (ValueError, InvalidVersion, InvalidSpecifier, _PackagingInvalidRequirement) as exc:
        return Metadata((), None, frozenset(), f"{filename} has unusable metadata: {exc}")
    extras = frozenset(canonicalize_name(str(e)) for e in msg.get_all("Provides-Extra") or ())
    return Metadata(reqs, requires_python, extras)
