"""Pure parser for PEP 503 HTML project pages (the "simple" API before PEP 691).

Text in, :class:`~layerbuilder.models.ProjectPage` out; no I/O.  Understands the
anchor attributes later PEPs added: ``data-requires-python`` (PEP 503/345),
``data-yanked`` (PEP 592), ``data-core-metadata`` and its older spelling
``data-dist-info-metadata`` (PEP 658/714), and ``#sha256=`` URL fragments.
"""

from __future__ import annotations

import posixpath
from html.parser import HTMLParser
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

from packaging.utils import canonicalize_name

from .models import DistFile, ProjectPage

__all__ = ["parse_simple_html"]


class _AnchorParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.base: str | None = None
        self.anchors: list[tuple[dict[str, str | None], str]] = []
        self._open: dict[str, str | None] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "base" and self.base is None:
            href = dict(attrs).get("href")
            if href:
                self.base = href
        elif tag == "a":
            self._close()
            self._open = dict(attrs)
            self._text = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._close()

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._text.append(data)

    def close(self) -> None:
        super().close()
        self._close()

    def _close(self) -> None:
        if self._open is not None:
            self.anchors.append((self._open, "".join(self._text).strip()))
            self._open = None


def _metadata(attrs: dict[str, str | None]) -> tuple[bool, str | None]:
    for key in ("data-core-metadata", "data-dist-info-metadata"):
        if key in attrs:
            value = (attrs[key] or "").strip()
            if value.lower() == "false":
                return False, None
            name, _, digest = value.partition("=")
            if name.lower() == "sha256" and digest:
                return True, digest.lower()
            return True, None
    return False, None


def parse_simple_html(text: str, base_url: str, name: str) -> ProjectPage:
    """Parse a PEP 503 project page fetched from *base_url* for project *name*.

    Relative links resolve against ``<base href>`` when the page has one, else
    against *base_url*.  The filename is the last path component of the link
    (PEP 503 requires the anchor text to match it).
    """
    parser = _AnchorParser()
    parser.feed(text)
    parser.close()
    base = urljoin(base_url, parser.base) if parser.base else base_url
    project = canonicalize_name(name)
    files: list[DistFile] = []
    for attrs, label in parser.anchors:
        href = attrs.get("href")
        if not href:
            continue
        url, fragment = urldefrag(urljoin(base, href))
        filename = unquote(posixpath.basename(urlsplit(url).path)) or label
        if not filename:
            continue
        hash_name, _, digest = fragment.partition("=")
        requires_python = (attrs.get("data-requires-python") or "").strip() or None
        yanked = "data-yanked" in attrs
        has_md, md_sha = _metadata(attrs)
        files.append(
            DistFile(
                project=project,
                filename=filename,
                url=url,
                sha256=digest.lower() if hash_name.lower() == "sha256" and digest else None,
                requires_python=requires_python,
                yanked=yanked,
                yanked_reason=(attrs.get("data-yanked") or None) if yanked else None,
                has_metadata=has_md,
                metadata_sha256=md_sha,
            )
        )
    return ProjectPage(name=project, files=tuple(files))
