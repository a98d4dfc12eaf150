"""The plan: which wheels, pinned, make up a layer for one target.

A :class:`Plan` is what resolution (or a lock file) produces and what
:func:`layerbuilder.build_layer` consumes.  It is a frozen value; it downloads
nothing.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

from .models import DistFile
from .targets import Target

__all__ = ["Plan", "PlannedWheel"]


class PlannedWheel(msgspec.Struct, frozen=True):
    """One pinned wheel of a plan."""

    name: str  # normalised project name
    version: str
    file: DistFile
    # names of the plan's packages this one depends on, and those that depend on it
    requires: tuple[str, ...] = ()
    required_by: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        f = self.file
        return {
            "name": self.name,
            "version": self.version,
            "filename": f.filename,
            "url": f.url,
            "sha256": f.sha256,
            "size": f.size,
            "requires": list(self.requires),
            "required_by": list(self.required_by),
        }


class Plan(msgspec.Struct, frozen=True):
    """A consistent set of pinned wheels for one target."""

    target: Target
    packages: tuple[PlannedWheel, ...]
    # the top-level requirements as the user gave them
    requirements: tuple[str, ...] = ()
    # excluded name -> names of kept packages that depend on it
    excluded: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def content_hash(self) -> str:
        """sha256 over the target and the sorted wheel sha256s: equal plans give
        equal hashes, whatever order the wheels were found in."""
        h = hashlib.sha256(f"{self.target.runtime}/{self.target.arch}\n".encode())
        for digest in sorted(p.file.sha256 or p.file.url for p in self.packages):
            h.update(digest.encode() + b"\n")
        return h.hexdigest()

    @property
    def declared_size(self) -> int:
        """The sum of the index's declared file sizes (0 where none is declared)."""
        return sum(p.file.size or 0 for p in self.packages)

    def get(self, name: str) -> PlannedWheel | None:
        for p in self.packages:
            if p.name == name:
                return p
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "runtime": self.target.runtime,
            "arch": self.target.arch,
            "requirements": list(self.requirements),
            "packages": [p.to_json() for p in self.packages],
            "excluded": [{"name": n, "required_by": list(by)} for n, by in self.excluded],
        }
