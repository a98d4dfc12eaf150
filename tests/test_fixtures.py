"""The recorded fixtures are self-consistent and name no real index host."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from distlib.locators import DEFAULT_INDEX
from fakeindex import FILES_URL, FIXTURES

DOCS = sorted((FIXTURES / "index").glob("*.json"))


def _entries(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for entries in doc["releases"].values() for e in entries]


def test_there_are_fixtures() -> None:
    names = {p.stem for p in DOCS}
    assert {"numpy", "lxml", "cryptography", "requests", "six", "markupsafe", "docopt"} <= names


@pytest.mark.parametrize("path", DOCS, ids=[p.stem for p in DOCS])
def test_index_document(path: Path) -> None:
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert path.stem == doc["info"]["name"].lower().replace("_", "-").replace(".", "-")
    for key in ("package_url", "project_url", "release_url"):
        value = doc["info"].get(key)
        assert value is None or value.startswith("https://index.test/"), (key, value)
    for entry in _entries(doc):
        assert entry["url"].startswith(FILES_URL + "/packages/"), entry["url"]
        assert entry["url"].endswith("/" + entry["filename"])
        offered = entry.get("core-metadata")
        if isinstance(offered, dict):
            body = (FIXTURES / "metadata" / f"{offered['sha256']}.metadata").read_bytes()
            assert hashlib.sha256(body).hexdigest() == offered["sha256"]
        stored = FIXTURES / "files" / urlsplit(entry["url"]).path.lstrip("/")
        if stored.is_file():
            data = stored.read_bytes()
            assert len(data) == entry["size"]
            assert hashlib.sha256(data).hexdigest() == entry["digests"]["sha256"]


def test_every_stored_file_is_listed() -> None:
    listed = {
        urlsplit(e["url"]).path.lstrip("/")
        for path in DOCS
        for e in _entries(json.loads(path.read_text(encoding="utf-8")))
    }
    stored = {
        str(p.relative_to(FIXTURES / "files"))
        for p in (FIXTURES / "files").rglob("*")
        if p.is_file()
    }
    assert stored and stored <= listed


def test_no_real_index_host_in_text_fixtures() -> None:
    host = urlsplit(DEFAULT_INDEX).hostname
    assert host
    domain = ".".join(host.split(".")[-2:]).encode()
    for path in [*DOCS, *(FIXTURES / "metadata").glob("*.metadata")]:
        assert domain not in path.read_bytes().lower(), path
