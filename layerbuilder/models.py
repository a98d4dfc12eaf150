"""Pure parsers: index documents in, frozen values out.  No I/O here.

Both the PyPI JSON API (``/pypi/<name>/json``) and the PEP 691 JSON simple API
parse to the same :class:`ProjectPage`, so everything downstream is indifferent
to which one the index speaks.
"""

from __future__ import annotations

import datetime as _dt
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from packaging.tags import Tag
from packaging.utils import (
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

__all__ = [
    "DistFile",
    "ProjectPage",
    "parse_json_api",
    "parse_simple_json",
    "parse_timestamp",
]


def parse_timestamp(value: str) -> _dt.datetime:
    """ISO 8601 to an aware datetime; a value without a zone is taken as UTC."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    if len(text) == 10:  # a bare date
        text += "T00:00:00"
    stamp = _dt.datetime.fromisoformat(text)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=_dt.timezone.utc)
    return stamp


@dataclass(frozen=True)
class DistFile:
    """One file of a project on the index."""

    project: NormalizedName
    filename: str
    url: str
    sha256: str | None = None
    size: int | None = None
    requires_python: str | None = None
    yanked: bool = False
    yanked_reason: str | None = None
    upload_time: _dt.datetime | None = None
    # PEP 658/714: does ``<url>.metadata`` exist, and its sha256 when given.
    has_metadata: bool = False
    metadata_sha256: str | None = None

    # Parsed from the filename on first use: a project page lists thousands of
    # files, and most are never looked at closely.
    @functools.cached_property
    def _wheel_name(
        self,
    ) -> tuple[Version | None, frozenset[Tag], tuple[int, str] | tuple[()]]:
        if self.is_wheel:
            try:
                _name, version, build, tags = parse_wheel_filename(self.filename)
            except (InvalidWheelFilename, InvalidVersion):
                pass
            else:
                return version, tags, build
        return None, frozenset(), ()

    @property
    def version(self) -> Version | None:
        """The version in a wheel's filename; None for other files or bad names."""
        return self._wheel_name[0]

    @property
    def tags(self) -> frozenset[Tag]:
        return self._wheel_name[1]

    @property
    def build_tag(self) -> tuple[int, str] | tuple[()]:
        return self._wheel_name[2]

    @property
    def platforms(self) -> frozenset[str]:
        """The platform tags of a wheel's filename, read cheaply without parsing
        the rest (empty for other files): a quick first filter."""
        if not self.is_wheel:
            return frozenset()
        return frozenset(self.filename[:-4].rsplit("-", 1)[-1].split("."))

    @property
    def is_wheel(self) -> bool:
        return self.filename.endswith(".whl")

    @property
    def is_sdist(self) -> bool:
        return self.filename.endswith((".tar.gz", ".zip", ".tar.bz2", ".tgz"))

    @property
    def metadata_url(self) -> str:
        return self.url + ".metadata"


@dataclass(frozen=True)
class ProjectPage:
    """Every file the index lists for one project."""

    name: NormalizedName
    files: tuple[DistFile, ...]
    # Every version the index knows, including those with no files.
    versions: tuple[str, ...] = ()

    @property
    def wheels(self) -> tuple[DistFile, ...]:
        return tuple(f for f in self.files if f.is_wheel and f.version is not None)


def _yank(value: Any) -> tuple[bool, str | None]:
    if isinstance(value, str):
        return True, value or None
    return bool(value), None


def _core_metadata(entry: Mapping[str, Any]) -> tuple[bool, str | None]:
    # PEP 714 renamed dist-info-metadata to core-metadata; the JSON API uses
    # data-dist-info-metadata / core-metadata keys in the same shape.
    for key in ("core-metadata", "data-dist-info-metadata", "dist-info-metadata"):
        if key in entry:
            value = entry[key]
            if isinstance(value, Mapping):
                return True, value.get("sha256")
            return bool(value), None
    return False, None


def _file(project: NormalizedName, entry: Mapping[str, Any], url: str, sha256: Any) -> DistFile:
    yanked, reason = _yank(entry.get("yanked", False))
    if reason is None and isinstance(entry.get("yanked_reason"), str):
        reason = entry["yanked_reason"] or None
    has_md, md_sha = _core_metadata(entry)
    uploaded = entry.get("upload_time_iso_8601") or entry.get("upload-time")
    size = entry.get("size")
    return DistFile(
        project=project,
        filename=str(entry["filename"]),
        url=url,
        sha256=sha256 if isinstance(sha256, str) else None,
        size=int(size) if isinstance(size, int) else None,
        requires_python=entry.get("requires_python") or entry.get("requires-python") or None,
        yanked=yanked,
        yanked_reason=reason,
        upload_time=parse_timestamp(uploaded) if isinstance(uploaded, str) else None,
        has_metadata=has_md,
        metadata_sha256=md_sha,
    )


def parse_json_api(data: Mapping[str, Any]) -> ProjectPage:
    """Parse a ``/pypi/<name>/json`` document."""
    name = canonicalize_name(str(data["info"]["name"]))
    files: list[DistFile] = []
    releases: Mapping[str, Iterable[Mapping[str, Any]]] = data.get("releases") or {}
    for entries in releases.values():
        for entry in entries:
            digests = entry.get("digests") or {}
            files.append(_file(name, entry, str(entry["url"]), digests.get("sha256")))
    if not releases:  # a version-specific document carries only "urls"
        for entry in data.get("urls") or ():
            digests = entry.get("digests") or {}
            files.append(_file(name, entry, str(entry["url"]), digests.get("sha256")))
    return ProjectPage(name=name, files=tuple(files), versions=tuple(releases))


def parse_simple_json(data: Mapping[str, Any], base_url: str = "") -> ProjectPage:
    """Parse a PEP 691 ``application/vnd.pypi.simple.v1+json`` project page.

    Relative file URLs are resolved against *base_url*.
    """
    from urllib.parse import urljoin

    name = canonicalize_name(str(data["name"]))
    files = tuple(
        _file(
            name,
            entry,
            urljoin(base_url, str(entry["url"])),
            (entry.get("hashes") or {}).get("sha256"),
        )
        for entry in data.get("files") or ()
    )
    return ProjectPage(name=name, files=files, versions=tuple(data.get("versions") or ()))
