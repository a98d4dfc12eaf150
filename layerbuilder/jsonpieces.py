"""A JSON API document parsed one release at a time, from a body in pieces.

:func:`~layerbuilder.models.parse_json_api` needs the whole body in memory: for
numpy that is 3.8 MB, and parsing it was the highest point of a large build's
resident memory.  But nearly all of such a document is its ``releases`` object,
``{"<version>": [<file>, ...], ...}``, one list per version.  So
:func:`parse_json_api_pieces` reads the body a piece at a time, decodes what
comes before ``"releases"`` for the project's name, and then decodes each
version's list on its own, keeping the files the filter keeps: it holds one
piece of the body and one version's list at a time.

Where a version's list ends is found by looking for ``]`` followed by ``,`` or
``}``.  Such a match can also fall inside a string or a nested array; then the
text up to it is not a whole ``"<version>": [...]`` and does not decode, so the
parser looks further.  The text up to the true end always decodes, and no other
one can (a prefix cut at any other ``]`` leaves a string or a bracket open).

Whatever does not fit this shape (no ``info`` before ``releases``, no releases,
a body that ends early or does not parse) gives None, and the caller parses the
whole body as before: what this module returns is always what
:func:`~layerbuilder.models.parse_json_api` would, for the files kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import msgspec

from .models import Keep, ProjectPage, _Info, _kept, _page, _WireFile

__all__ = ["parse_json_api_pieces"]

_RELEASES = re.compile(rb'"releases"\s*:\s*\{\s*')
_CLOSE = ord("}")


class _Head(msgspec.Struct, frozen=True):
    info: _Info


_HEAD_DECODER = msgspec.json.Decoder(_Head)
_RELEASE_DECODER = msgspec.json.Decoder(dict[str, list[msgspec.Raw]])


def parse_json_api_pieces(pieces: Iterator[bytes], base_url: str, keep: Keep) -> ProjectPage | None:
    """The page of the JSON API document whose body *pieces* yields, in order,
    with only the files *keep* keeps; None when the document is not in the shape
    this reads (the caller then parses it whole).  Errors in a file entry raise
    as :func:`~layerbuilder.models.parse_json_api` raises them."""
    buf = b""
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
    entries: list[_WireFile] = []
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
            look -= start
            start = 0
            continue
        if buf[after] not in b",}":
            look = close  # a "]" inside a string or a nested list
            continue
        try:
            release = _RELEASE_DECODER.decode(b"{" + buf[start:close] + b"}")
        except msgspec.DecodeError:
            look = close  # the same, followed by "," or "}"
            continue
        for version, files in release.items():
            if version in listed:
                return None  # a version twice: decoded whole, the last one wins
            listed.add(version)
            versions.append(version)
            entries.extend(_kept(files, keep))
        del release
        if buf[after] == _CLOSE:
            return _page(name, entries, tuple(versions), base_url, complete=False)
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
