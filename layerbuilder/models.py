"""Pure parsers: index documents in, frozen values out.  No I/O here.

Both the PyPI JSON API (``/pypi/<name>/json``) and the PEP 691 JSON simple API
parse to the same :class:`ProjectPage`, so everything downstream is indifferent
to which one the index speaks.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Optional, TypeVar

import msgspec
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
    # files, and most are never looked at closely.  Cached by hand rather than with
    # functools.cached_property, which before Python 3.12 takes one lock shared by
    # every instance of the class: resolver threads reading different files'
    # tags queued on it (cProfile: seconds of waiting in cached_property.__get__).
    # Two threads may both parse a name; they store equal values.
    @property
    def _wheel_name(
        self,
    ) -> tuple[Version | None, frozenset[Tag], tuple[int, str] | tuple[()]]:
        parsed: tuple[Version | None, frozenset[Tag], tuple[int, str] | tuple[()]] | None
        parsed = self.__dict__.get("_parsed_name")
        if parsed is None:
            parsed = None, frozenset(), ()
            if self.is_wheel:
                try:
                    _name, version, build, tags = parse_wheel_filename(self.filename)
                except (InvalidWheelFilename, InvalidVersion):
                    pass
                else:
                    parsed = version, tags, build
            self.__dict__["_parsed_name"] = parsed
        return parsed

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


# -- the documents as they come off the wire ----------------------------------------
#
# msgspec decodes a document straight into these structs, skipping every field not
# named here (a project's JSON API document is mostly READMEs and fields we never
# read): about 7x faster than ``json.loads`` plus walking the dicts, and the
# decoded form holds only what is used.  Fields whose type varies between indexes
# are ``Any`` and are interpreted below.  ``Optional``/``Union`` rather than ``|``:
# msgspec evaluates these annotations at run time, and layerbuilder runs on 3.9.


class _Digests(msgspec.Struct, frozen=True):
    sha256: Any = None


class _WireFile(
    msgspec.Struct,
    frozen=True,
    rename={
        "requires_python_pep691": "requires-python",
        "upload_time_pep700": "upload-time",
        "core_metadata": "core-metadata",
        "data_dist_info_metadata": "data-dist-info-metadata",
        "dist_info_metadata": "dist-info-metadata",
    },
):
    """A file entry of either API; each fills the fields its own spelling names."""

    filename: str
    url: str
    digests: Optional[_Digests] = None  # noqa: UP045 -- JSON API
    hashes: Any = None  # PEP 691
    size: Any = None
    requires_python: Any = None  # JSON API
    requires_python_pep691: Any = None
    yanked: Any = False
    yanked_reason: Any = None
    upload_time_iso_8601: Any = None  # JSON API
    upload_time_pep700: Any = None
    core_metadata: Any = None
    data_dist_info_metadata: Any = None
    dist_info_metadata: Any = None


class _Info(msgspec.Struct, frozen=True):
    name: str


class _ApiDocument(msgspec.Struct, frozen=True):
    info: _Info
    releases: Optional[dict[str, list[_WireFile]]] = None  # noqa: UP045
    urls: Optional[list[_WireFile]] = None  # noqa: UP045


class _SimpleDocument(msgspec.Struct, frozen=True):
    name: str
    files: Optional[list[_WireFile]] = None  # noqa: UP045
    versions: Optional[list[str]] = None  # noqa: UP045


_API_DECODER = msgspec.json.Decoder(_ApiDocument)
_SIMPLE_DECODER = msgspec.json.Decoder(_SimpleDocument)

_Doc = TypeVar("_Doc", _ApiDocument, _SimpleDocument)


def _decode(data: bytes | str | Mapping[str, Any], kind: type[_Doc]) -> _Doc:
    """Bytes (or text) of a document, or one already decoded, as *kind*.

    A document of the wrong shape raises :class:`ValueError` (msgspec's errors are
    ValueErrors) naming the field, e.g. ``Expected `str`, got `int` - at
    `$.info.name```.
    """
    if isinstance(data, (bytes, bytearray, memoryview, str)):
        decoder = _API_DECODER if kind is _ApiDocument else _SIMPLE_DECODER
        return decoder.decode(data)  # type: ignore[return-value]
    return msgspec.convert(data, kind)


def _core_metadata(entry: _WireFile) -> tuple[bool, str | None]:
    # PEP 714 renamed dist-info-metadata to core-metadata; the JSON API uses
    # data-dist-info-metadata / core-metadata keys in the same shape.
    for value in (entry.core_metadata, entry.data_dist_info_metadata, entry.dist_info_metadata):
        if value is None:
            continue
        if isinstance(value, Mapping):
            sha = value.get("sha256")
            return True, sha if isinstance(sha, str) else None
        return bool(value), None
    return False, None


def _file(project: NormalizedName, entry: _WireFile, url: str, sha256: Any) -> DistFile:
    yanked, reason = _yank(entry.yanked)
    if reason is None and isinstance(entry.yanked_reason, str):
        reason = entry.yanked_reason or None
    has_md, md_sha = _core_metadata(entry)
    uploaded = entry.upload_time_iso_8601 or entry.upload_time_pep700
    requires_python = entry.requires_python or entry.requires_python_pep691
    size = entry.size
    return DistFile(
        project=project,
        filename=entry.filename,
        url=url,
        sha256=sha256 if isinstance(sha256, str) else None,
        size=size if isinstance(size, int) and not isinstance(size, bool) else None,
        requires_python=requires_python if isinstance(requires_python, str) else None,
        yanked=yanked,
        yanked_reason=reason,
        upload_time=parse_timestamp(uploaded) if isinstance(uploaded, str) else None,
        has_metadata=has_md,
        metadata_sha256=md_sha,
    )


def parse_json_api(data: bytes | str | Mapping[str, Any]) -> ProjectPage:
    """Parse a ``/pypi/<name>/json`` document (its bytes, or already decoded)."""
    doc = _decode(data, _ApiDocument)
    name = canonicalize_name(doc.info.name)
    files: list[DistFile] = []
    releases = doc.releases or {}
    for entries in releases.values():
        for entry in entries:
            sha = entry.digests.sha256 if entry.digests is not None else None
            files.append(_file(name, entry, entry.url, sha))
    if not releases:  # a version-specific document carries only "urls"
        for entry in doc.urls or ():
            sha = entry.digests.sha256 if entry.digests is not None else None
            files.append(_file(name, entry, entry.url, sha))
    return ProjectPage(name=name, files=tuple(files), versions=tuple(releases))


def parse_simple_json(data: bytes | str | Mapping[str, Any], base_url: str = "") -> ProjectPage:
    """Parse a PEP 691 ``application/vnd.pypi.simple.v1+json`` project page (its
    bytes, or already decoded).

    Relative file URLs are resolved against *base_url*.
    """
    from urllib.parse import urljoin

    doc = _decode(data, _SimpleDocument)
    name = canonicalize_name(doc.name)
    files = tuple(
        _file(
            name,
            entry,
            urljoin(base_url, entry.url),
            entry.hashes.get("sha256") if isinstance(entry.hashes, Mapping) else None,
        )
        for entry in doc.files or ()
    )
    return ProjectPage(name=name, files=files, versions=tuple(doc.versions or ()))
