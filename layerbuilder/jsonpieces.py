"""A JSON API document read from a body in pieces, each version's files read
only when asked for.

:func:`~layerbuilder.models.parse_json_api` needs the whole body in memory: for
numpy that is 3.8 MB, and parsing it was the highest point of a large build's
resident memory.  But nearly all of such a document is its ``releases`` object,
``{"<version>": [<file>, ...], ...}``, one list per version.  So
:func:`lazy_json_api_pieces` reads the body a piece at a time, decodes what
comes before ``"releases"`` for the project's name, and notes where each
version's list lies, holding one piece of the body at a time.  The page it makes
reads a version's list back (one ``pread``) when it is asked for that version's
files, and keeps the files the filter keeps.  The resolver asks for the newest
version first and seldom for more (:func:`layerbuilder.select.newest_candidate`):
of numpy's 154 versions it reads one, where decoding every file entry's name to
filter it took three quarters of the time (20.7 against 6.9 ms for numpy's
3.8 MB).

Where a version's list ends is found by looking for ``]`` followed by ``,`` or
``}``.  Such a match can also fall inside a string or a nested array; then the
text up to it is not a whole ``"<version>": [...]`` and does not decode, so the
reader looks further.  The text up to the true end always decodes, and no other
one can (a prefix cut at any other ``]`` leaves a string or a bracket open).

Whatever does not fit this shape (no ``info`` before ``releases``, no releases,
a body that ends early or does not parse) gives None, and the caller parses the
whole body as before: the page's files, once read, are always what
:func:`~layerbuilder.models.parse_json_api` gives for the files kept.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable, Iterator

import msgspec

from .models import Keep, ProjectPage, _Info, _kept, _page, _WireFile

__all__ = ["lazy_json_api_pieces"]

_RELEASES = re.compile(rb'"releases"\s*:\s*\{\s*')
_CLOSE = ord("}")


class _Head(msgspec.Struct, frozen=True):
    info: _Info


_HEAD_DECODER = msgspec.json.Decoder(_Head)
_RELEASE_DECODER = msgspec.json.Decoder(dict[str, list[msgspec.Raw]])
# finding where each version's list ends needs its text to decode, not its entries
_SPAN_DECODER = msgspec.json.Decoder(dict[str, msgspec.Raw])


def lazy_json_api_pieces(
    pieces: Iterator[bytes],
    base_url: str,
    keep: Keep,
    read: Callable[[int, int], bytes],
    close: Callable[[], None],
    fail: Callable[[Exception], Exception],
) -> ProjectPage | None:
    """The page of the JSON API document whose body *pieces* yields, in order,
    each version's files left in the document until they are asked for, and then
    only those *keep* keeps.

    The body is read through once, to find where each version's list lies; then
    ``read(offset, size)`` reads one list back when the page needs it (the
    resolver asks for the newest releases first and, mostly, for nothing else:
    :meth:`~layerbuilder.models.FileList.newest_first`).  *close* lets the body
    go, once every list has been read or the page is dropped.  An error reading or
    decoding a list later raises ``fail(error)``.  None (with the body left open)
    when the document is not in the shape this reads.
    """
    spans: list[tuple[int, int]] = []

    found = _scan(pieces, spans)
    if found is None:
        return None
    name, versions = found
    releases = _Releases(spans, versions, keep, read, close, fail)
    return _page(name, releases, versions, base_url, complete=False)


class _Releases:
    """The lists of one document's versions, in the file the document is in
    (a :class:`~layerbuilder.models.ReleaseSource`)."""

    def __init__(
        self,
        spans: list[tuple[int, int]],
        versions: tuple[str, ...],
        keep: Keep,
        read: Callable[[int, int], bytes],
        close: Callable[[], None],
        fail: Callable[[Exception], Exception],
    ) -> None:
        self._spans = spans
        self.versions = versions
        self._keep = keep
        self._read = read
        self._fail = fail
        # the body is let go when the page is, if it was not read through before
        self._closer = weakref.finalize(self, close)

    def entries(self, i: int) -> list[_WireFile]:
        """The files of version *i* (in document order) that the filter keeps."""
        start, end = self._spans[i]
        try:
            data = self._read(start, end - start)
            if len(data) != end - start:
                raise OSError(f"the document's file gave {len(data)} of {end - start} bytes")
            files = _RELEASE_DECODER.decode(b"{" + data + b"}")[self.versions[i]]
            return _kept(files, self._keep)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise self._fail(exc) from exc

    def close(self) -> None:
        self._closer()


def _scan(
    pieces: Iterator[bytes], spans: list[tuple[int, int]]
) -> tuple[str, tuple[str, ...]] | None:
    """Read the document that *pieces* yields, adding to *spans* where each
    version's ``"<version>": [...]`` lies in the body, in order.  The project's
    name and every version; None when the document is not in the shape this
    reads."""
    buf = b""
    base = 0  # where buf starts in the body
    at = start = -1  # where "releases" begins, and where its first version does
    for piece in pieces:
        seen = max(0, len(buf) - 32)  # "releases": { may straddle two pieces
        buf += piece
        del piece  # (the match objects below are let go too: each holds its buffer)
        found = _RELEASES.search(buf, seen)
        if found:
            at, start = found.span()
            del found
            break
    if at < 0:
        return None
    name = _name(buf[:at])
    if name is None or buf.startswith(b"}", start):
        return None  # no releases: a version's own document, whose files are in "urls"
    versions: list[str] = []
    listed: set[str] = set()
    look = start  # where to look for the end of the current version's list
    while True:
        close = buf.find(b"]", look) + 1
        after = _after_space(buf, close) if close else len(buf)
        if after == len(buf):  # no end yet, or nothing after it yet: read on
            piece = next(pieces, b"")
            if not piece:
                return None  # the body ends inside the releases
            buf = b"".join((memoryview(buf)[start:], piece))
            del piece
            base += start
            look -= start
            start = 0
            continue
        if buf[after] not in b",}":
            look = close  # a "]" inside a string or a nested list
            continue
        try:
            release = _SPAN_DECODER.decode(b"{" + buf[start:close] + b"}")
        except msgspec.DecodeError:
            look = close  # the same, followed by "," or "}"
            continue
        for version in release:
            if version in listed:
                return None  # a version twice: decoded whole, the last one wins
            listed.add(version)
            versions.append(version)
            spans.append((base + start, base + close))
        del release
        if buf[after] == _CLOSE:
            return name, tuple(versions)
        start = look = after + 1


def _after_space(buf: bytes, at: int) -> int:
    """Where the first byte from *at* on that is not JSON whitespace is (or the
    length of *buf*)."""
    while at < len(buf) and buf[at] in b" \t\r\n":
        at += 1
    return at


def _name(head: bytes) -> str | None:
    """The project's name from what comes before ``"releases"``; None if that is
    not the start of an object with ``info`` in it."""
    head = head.rstrip()
    if not head.endswith(b","):
        return None  # "releases" comes first
    try:
        return _HEAD_DECODER.decode(head[:-1] + b"}").info.name
    except msgspec.DecodeError:
        return None
