"""An exact pin is resolved from that release's own document, not the project's."""

from __future__ import annotations

from typing import Any

import pytest
from fakeindex import INDEX_URL

from layerbuilder.errors import VersionNotFound
from layerbuilder.resolver import resolve
from layerbuilder.targets import get_target


def _pages(rsps: Any) -> list[str]:
    return [c.request.url for c in rsps.calls if c.request.url.startswith(INDEX_URL)]


def test_pinned_requirement_reads_only_its_release(fake_index: Any) -> None:
    plan = resolve(["numpy==2.0.2"], get_target("python3.9", "arm64"), index_url=INDEX_URL)
    [numpy] = plan.packages
    assert numpy.file.filename == (
        "numpy-2.0.2-cp39-cp39-manylinux_2_17_aarch64.manylinux2014_aarch64.whl"
    )
    assert _pages(fake_index) == [f"{INDEX_URL}/numpy/2.0.2/json"]


def test_pinned_requirements_read_their_releases(fake_index: Any) -> None:
    plan = resolve(
        ["requests==2.34.2", "urllib3==2.8.0"],
        get_target("python3.12", "x86_64"),
        index_url=INDEX_URL,
    )
    assert {p.name: p.version for p in plan.packages}["urllib3"] == "2.8.0"
    pages = _pages(fake_index)
    assert {f"{INDEX_URL}/requests/2.34.2/json", f"{INDEX_URL}/urllib3/2.8.0/json"} <= set(pages)
    assert f"{INDEX_URL}/requests/json" not in pages
    assert f"{INDEX_URL}/idna/json" in pages  # unpinned: the whole document


def test_a_pin_the_release_document_lacks_falls_back_to_the_project(fake_index: Any) -> None:
    with pytest.raises(VersionNotFound, match=r"numpy==9\.9\.9"):
        resolve(["numpy==9.9.9"], get_target("python3.12", "x86_64"), index_url=INDEX_URL)
    # the resolver parsed the target's wheels only; explaining that no version fits
    # reads the whole page (from the disk cache, with an ETag, where there is one)
    assert _pages(fake_index) == [
        f"{INDEX_URL}/numpy/9.9.9/json",
        f"{INDEX_URL}/numpy/json",
        f"{INDEX_URL}/numpy/json",
    ]
