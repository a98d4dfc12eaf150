"""Pure parsers: index documents in, frozen values out.  No I/O here.

Both the PyPI JSON API (``/pypi/<name>/json``) and the PEP 691 JSON simple API
parse to the same :class:`ProjectPage`, so everything downstream is indifferent
to which one the index speaks.
"""

from __future__ import annotations

import datetime as _dt
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Optional, Protocol, TypeVar, overload
from urllib.parse import urljoin

import msgspec
from packaging.tags import Tag, parse_tag
from packaging.utils import (
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

__all__ = [
    "DistFile",
    "FileList",
    "Keep",
    "ProjectPage",
    "ReleaseSource",
    "filename_platforms",
    "parse_json_api",
    "parse_simple_json",
    "parse_timestamp",
    "platform_filter",
    "tag_filter",
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


#: each distinct set of tags a wheel name carries, kept once: the files of a project
#: repeat a handful of them (cp312-cp312-manylinux_2_17_x86_64 and its aliases), and
#: as a new frozenset of new Tag objects per file they held about 0.5 MB at the large
#: benchmark's resolution.  Bounded by the tag sets in use, not by the files seen.
_TAG_SETS: dict[frozenset[Tag], frozenset[Tag]] = {}


class DistFile(msgspec.Struct, frozen=True, dict=True):
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
    # Two threads may both parse a name; they store equal values.  (The struct has
    # a __dict__, dict=True, for this cache alone: it is not a field, so it is in
    # no comparison, hash or repr.)
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
                    parsed = version, _TAG_SETS.setdefault(tags, tags), build
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
        return filename_platforms(self.filename)

    @property
    def is_wheel(self) -> bool:
        return self.filename.endswith(".whl")

    @property
    def is_sdist(self) -> bool:
        return self.filename.endswith((".tar.gz", ".zip", ".tar.bz2", ".tgz"))

    @property
    def metadata_url(self) -> str:
        return self.url + ".metadata"


def filename_platforms(filename: str) -> frozenset[str]:
    """The platform tags in a wheel's *filename* (empty for other files), read
    without parsing the rest of the name."""
    if not filename.endswith(".whl"):
        return frozenset()
    return frozenset(filename[:-4].rsplit("-", 1)[-1].split("."))


def tag_filter(tags: frozenset[Tag]) -> Keep:
    """A :data:`Keep` for the wheels with at least one tag in *tags*: the last three
    fields of the name, parsed by :func:`packaging.tags.parse_tag` once per
    distinct tag string (a page repeats a few over thousands of files)."""
    # a wheel name's last three fields, with ".whl" -> kept
    seen: dict[str, bool] = {}

    def judge(tail: str) -> bool:
        if not tail.endswith(".whl"):
            return False
        try:
            return not tags.isdisjoint(parse_tag(tail[:-4]))
        except ValueError:  # packaging's InvalidTag: not a wheel anyone can load
            return False

    def keep(filename: str) -> bool:
        # called for every file of a page (numpy's lists 4,415): three rfinds and a
        # lookup, 2.3 -> 1.3 us a name
        at = filename.rfind("-")
        if at >= 0:
            at = filename.rfind("-", 0, at)
            if at >= 0:
                at = filename.rfind("-", 0, at)
        if at < 0:
            return False  # fewer than three "-": not a wheel name
        tail = filename[at + 1 :]
        ok = seen.get(tail)
        if ok is None:
            ok = seen[tail] = judge(tail)
        return ok

    return keep


def platform_filter(platforms: frozenset[str]) -> Keep:
    """A :data:`Keep` for the wheels whose platform tag names one of *platforms*
    (as :func:`filename_platforms` reads it).  A page repeats a few platform tags
    over thousands of files, so each distinct one is split and tested once."""
    seen: dict[str, bool] = {}

    def keep(filename: str) -> bool:
        if not filename.endswith(".whl"):
            return False
        tail = filename[:-4].rpartition("-")[2]
        ok = seen.get(tail)
        if ok is None:
            ok = seen[tail] = not platforms.isdisjoint(tail.split("."))
        return ok

    return keep


class ProjectPage(msgspec.Struct, frozen=True):
    """Every file the index lists for one project."""

    name: NormalizedName
    # A tuple, or a FileList from the parsers: equal either way.
    files: Sequence[DistFile]
    # Every version the index knows, including those with no files.
    versions: tuple[str, ...] = ()
    # False when a filter left files out (see parse_json_api's *keep*): ask the
    # index again before explaining what it does not offer.
    complete: bool = True

    @property
    def wheels(self) -> tuple[DistFile, ...]:
        return tuple(f for f in self.files if f.is_wheel and f.version is not None)

    def for_platforms(self, platforms: frozenset[str]) -> tuple[DistFile, ...]:
        """The wheels whose filename names one of *platforms*, in page order.
        On a parsed page only these become :class:`DistFile` values."""
        if isinstance(self.files, FileList):
            return self.files.for_platforms(platforms)
        return tuple(f for f in self.files if not f.platforms.isdisjoint(platforms))


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


# The same documents with each file entry left undecoded (a zero-copy view of the
# body), for parsing with a filter: an entry is decoded whole only if its filename
# passes, so a page of thousands of files never exists decoded all at once.
class _FileName(msgspec.Struct, frozen=True):
    filename: str


class _RawApiDocument(msgspec.Struct, frozen=True):
    info: _Info
    releases: Optional[dict[str, list[msgspec.Raw]]] = None  # noqa: UP045
    urls: Optional[list[msgspec.Raw]] = None  # noqa: UP045


class _RawSimpleDocument(msgspec.Struct, frozen=True):
    name: str
    files: Optional[list[msgspec.Raw]] = None  # noqa: UP045
    versions: Optional[list[str]] = None  # noqa: UP045


_API_DECODER = msgspec.json.Decoder(_ApiDocument)
_SIMPLE_DECODER = msgspec.json.Decoder(_SimpleDocument)
_RAW_API_DECODER = msgspec.json.Decoder(_RawApiDocument)
_RAW_SIMPLE_DECODER = msgspec.json.Decoder(_RawSimpleDocument)
_FILE_DECODER = msgspec.json.Decoder(_WireFile)
_NAME_DECODER = msgspec.json.Decoder(_FileName)

Keep = Callable[[str], bool]
"""A filter on file names: parse only the files it keeps."""

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


def _file(project: NormalizedName, entry: _WireFile, base_url: str) -> DistFile:
    if entry.digests is not None:  # JSON API
        sha256 = entry.digests.sha256
    else:  # PEP 691
        sha256 = entry.hashes.get("sha256") if isinstance(entry.hashes, Mapping) else None
    url = entry.url
    if base_url and not url.startswith(("https://", "http://")):
        url = urljoin(base_url, url)
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


class ReleaseSource(Protocol):
    """A document's versions whose files are read only when asked for
    (:func:`layerbuilder.jsonpieces.lazy_json_api_pieces`)."""

    versions: tuple[str, ...]

    def entries(self, i: int) -> list[_WireFile]:
        """The kept files of ``versions[i]``, in document order."""
        ...

    def close(self) -> None: ...


class FileList(Sequence[DistFile]):
    """A parsed page's files, each made a :class:`DistFile` on first use.

    Project pages list thousands of files (numpy's 4,415, pydantic-core's 15,057),
    and a resolution looks at the few wheels the target can load:
    :meth:`for_platforms` picks those by filename alone, so the rest stay compact
    decoded entries.  Equal to the tuple of its files; safe to share between
    threads (two threads may make the same file; the values are equal).

    Made from a :class:`ReleaseSource`, it reads a version's files only when
    asked: :meth:`newest_first` reads as many versions as its caller takes, and
    anything else that looks at the files reads them all, in document order, so
    that the list is then what it would have been had they been read at once.
    """

    __slots__ = ("_base_url", "_entries", "_lock", "_made", "_parts", "_project", "_source")

    def __init__(
        self,
        project: NormalizedName,
        entries: list[_WireFile] | ReleaseSource,
        base_url: str,
    ) -> None:
        self._project = project
        self._base_url = base_url
        self._source: ReleaseSource | None = None
        # each version read from the source: its entries and their files
        self._parts: dict[int, tuple[list[_WireFile], list[DistFile]]] = {}
        self._lock = threading.Lock()
        if isinstance(entries, list):
            self._entries = entries
            self._made: list[DistFile | None] = [None] * len(entries)
        else:
            self._source = entries
            self._entries = []
            self._made = []

    def _all(self) -> list[_WireFile]:
        """Every entry, reading the versions not read yet (all of them, once)."""
        if self._source is not None:
            with self._lock:
                source = self._source
                if source is not None:
                    parts = [self._part(i) for i in range(len(source.versions))]
                    self._made = [f for _, files in parts for f in files]
                    self._entries = [e for entries, _ in parts for e in entries]
                    self._source = None
                    source.close()
        return self._entries

    def _part(self, i: int) -> tuple[list[_WireFile], list[DistFile]]:
        """Version *i*'s entries and files, read from the source once (under the lock)."""
        part = self._parts.get(i)
        if part is None:
            assert self._source is not None
            entries = self._source.entries(i)
            files = [_file(self._project, e, self._base_url) for e in entries]
            part = self._parts[i] = (entries, files)
        return part

    @property
    def unread(self) -> int:
        """How many versions are still to be read from the source (0 once every
        one is, and always for a list made whole)."""
        source = self._source
        return 0 if source is None else len(source.versions) - len(self._parts)

    def newest_first(self) -> Iterator[tuple[DistFile, ...]] | None:
        """The files version by version, newest first (versions that compare equal
        together), reading each version only when the iteration reaches it.  None
        when the versions are all read already (then the list is the cheaper way)
        or one of them is not a valid version (then only the whole list orders
        them as the resolver does)."""
        source = self._source
        if source is None:
            return None
        groups: dict[Version, list[int]] = {}
        for i, text in enumerate(source.versions):
            try:
                groups.setdefault(Version(text), []).append(i)
            except InvalidVersion:
                return None
        return self._groups([groups[v] for v in sorted(groups, reverse=True)])

    def _groups(self, order: list[list[int]]) -> Iterator[tuple[DistFile, ...]]:
        for group in order:
            with self._lock:
                if self._source is None:  # read whole meanwhile: the parts are all there
                    files = [f for i in group for f in self._parts[i][1]]
                else:
                    files = [f for i in group for f in self._part(i)[1]]
            yield tuple(files)

    def _get(self, i: int) -> DistFile:
        made = self._made[i]
        if made is None:
            made = self._made[i] = _file(self._project, self._entries[i], self._base_url)
        return made

    def __len__(self) -> int:
        return len(self._all())

    @overload
    def __getitem__(self, index: int) -> DistFile: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[DistFile, ...]: ...

    def __getitem__(self, index: int | slice) -> DistFile | tuple[DistFile, ...]:
        entries = self._all()
        if isinstance(index, slice):
            return tuple(self._get(i) for i in range(*index.indices(len(entries))))
        return self._get(range(len(entries))[index])

    def __iter__(self) -> Iterator[DistFile]:
        return (self._get(i) for i in range(len(self._all())))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (FileList, tuple)):
            return tuple(self) == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        source = self._source  # (a repr reads nothing)
        if source is not None:
            unread = f"{self.unread} of {len(source.versions)} versions unread"
            return f"FileList({self._project!r}, {unread})"
        return f"FileList({self._project!r}, {len(self._entries)} files)"

    def for_platforms(self, platforms: frozenset[str]) -> tuple[DistFile, ...]:
        keep = platform_filter(platforms)
        return tuple(self._get(i) for i, entry in enumerate(self._all()) if keep(entry.filename))


def _kept(raws: Iterable[msgspec.Raw], keep: Keep) -> list[_WireFile]:
    return [_FILE_DECODER.decode(r) for r in raws if keep(_NAME_DECODER.decode(r).filename)]


def _keep_only(entries: list[_WireFile], keep: Keep | None) -> list[_WireFile]:
    """*entries* already decoded whole, without those *keep* drops."""
    return entries if keep is None else [e for e in entries if keep(e.filename)]


def _page(
    name: str,
    entries: list[_WireFile] | ReleaseSource,
    versions: tuple[str, ...],
    base_url: str,
    complete: bool,
) -> ProjectPage:
    """The page of either parser."""
    project = canonicalize_name(name)
    return ProjectPage(
        name=project,
        files=FileList(project, entries, base_url),
        versions=versions,
        complete=complete,
    )


def _is_text(data: object) -> bool:
    return isinstance(data, (bytes, bytearray, memoryview, str))


def parse_json_api(
    data: bytes | str | Mapping[str, Any], base_url: str = "", keep: Keep | None = None
) -> ProjectPage:
    """Parse a ``/pypi/<name>/json`` document (its bytes, or already decoded).

    Relative file URLs (some mirrors serve them) are resolved against *base_url*.
    With *keep*, only the files whose name it keeps are parsed and listed, and the
    page says so (``complete=False``).
    """
    entries: list[_WireFile]
    if keep is not None and _is_text(data):
        raw = _RAW_API_DECODER.decode(data)  # type: ignore[arg-type]
        name, raw_releases = raw.info.name, raw.releases or {}
        versions = tuple(raw_releases)
        entries = [e for files in raw_releases.values() for e in _kept(files, keep)]
        if not raw_releases:  # a version-specific document carries only "urls"
            entries = _kept(raw.urls or (), keep)
    else:
        doc = _decode(data, _ApiDocument)
        name, releases = doc.info.name, doc.releases or {}
        versions = tuple(releases)
        entries = [entry for files in releases.values() for entry in files]
        if not releases:
            entries = list(doc.urls or ())
        entries = _keep_only(entries, keep)
    return _page(name, entries, versions, base_url, complete=keep is None)


def parse_simple_json(
    data: bytes | str | Mapping[str, Any], base_url: str = "", keep: Keep | None = None
) -> ProjectPage:
    """Parse a PEP 691 ``application/vnd.pypi.simple.v1+json`` project page (its
    bytes, or already decoded).

    Relative file URLs are resolved against *base_url*; *keep* as for
    :func:`parse_json_api`.
    """
    if keep is not None and _is_text(data):
        raw = _RAW_SIMPLE_DECODER.decode(data)  # type: ignore[arg-type]
        name, versions = raw.name, raw.versions
        entries = _kept(raw.files or (), keep)
    else:
        doc = _decode(data, _SimpleDocument)
        name, versions = doc.name, doc.versions
        entries = _keep_only(list(doc.files or ()), keep)
    return _page(name, entries, tuple(versions or ()), base_url, complete=keep is None)
