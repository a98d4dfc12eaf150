"""The handler answers 422 with verify's findings, and publishes nothing, when the
layer it built would not load on the target."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import responses
from aws import Aws, aws_fixture, moto_server_fixture  # noqa: F401
from fakeindex import INDEX_URL, serve
from wheelfactory import Member, make_wheel

from layerbuilder.handler import lambda_handler

CTX = SimpleNamespace(aws_request_id="req-verify", function_name="layerbuilder")
CRAFTED = "https://crafted.test/wheels/"
BAD_SO = "badext/_speedups.cpython-311-x86_64-linux-gnu.so"


@pytest.fixture
def crafted_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The recorded index plus one project whose wheel holds a cp311 extension."""
    (tmp_path / "w").mkdir()
    wheel = make_wheel(
        tmp_path / "w", "badext", "1.0", [Member("badext/__init__.py", b""), Member(BAD_SO, b"")]
    )
    data = wheel.read_bytes()
    entry = {
        "filename": wheel.name,
        "url": CRAFTED + wheel.name,
        "digests": {"sha256": hashlib.sha256(data).hexdigest()},
        "size": len(data),
        "requires_python": None,
        "yanked": False,
        "upload_time_iso_8601": "2025-01-01T00:00:00.000000Z",
    }
    doc = {"info": {"name": "badext", "version": "1.0"}, "releases": {"1.0": [entry]}}
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add("GET", f"{INDEX_URL}/badext/json", json=doc)
        rsps.add("GET", CRAFTED + wheel.name, body=data)
        serve(rsps)
        monkeypatch.setenv("LAYERBUILDER_INDEX_URL", INDEX_URL)
        monkeypatch.setenv("AWS_EXECUTION_ENV", "AWS_Lambda_python3.12")
        yield rsps


def test_verify_failure_is_422_with_findings_and_nothing_published(
    aws: Aws, crafted_index: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    work = tmp_path / "tmp"
    work.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(work))
    response = lambda_handler({"ModuleName": "badext", "Architecture": "x86_64"}, CTX)
    assert response["statusCode"] == 422, response
    body = response["body"]
    assert body["error"] == "LayerVerificationFailed"
    assert "cpython-311" in body["message"]
    paths = [f["path"] for f in body["findings"] if f["level"] == "error"]
    assert f"python/lib/python3.12/site-packages/{BAD_SO}" in paths
    assert aws.layer_versions("badext_10_py312") == []
    assert list(work.iterdir()) == []
