"""AWS for tests: one moto server on loopback per session, reached by real boto3.

Import the fixtures into a test module::

    from aws import aws_fixture, moto_server_fixture  # noqa: F401  (pytest fixtures)

``aws`` points boto3 at the server through ``AWS_ENDPOINT_URL`` with fake
credentials and ``us-east-1`` as the default region, resets the server's state,
and yields an :class:`Aws` helper for making clients and reading back what a
test left behind.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account


@pytest.fixture(scope="session", name="moto_server")
def moto_server_fixture() -> Iterator[str]:
    """The endpoint URL of a moto server on 127.0.0.1 (a free port)."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


class Aws:
    """Clients on the moto server, and the state a test reads back."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    def client(self, service: str, region: str = REGION) -> Any:
        return boto3.session.Session().client(service, region_name=region)

    def reset(self) -> None:
        req = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()

    def layer_versions(self, name: str, region: str = REGION) -> list[dict[str, Any]]:
        """Every version of layer *name*, oldest first."""
        lam = self.client("lambda", region)
        out: list[dict[str, Any]] = []
        for page in lam.get_paginator("list_layer_versions").paginate(LayerName=name):
            out.extend(page["LayerVersions"])
        return sorted(out, key=lambda v: v["Version"])

    def layers(self, region: str = REGION) -> list[str]:
        lam = self.client("lambda", region)
        return sorted(layer["LayerName"] for layer in lam.list_layers()["Layers"])

    def get_version(self, name: str, version: int, region: str = REGION) -> dict[str, Any]:
        lam = self.client("lambda", region)
        got: dict[str, Any] = lam.get_layer_version(LayerName=name, VersionNumber=version)
        return got

    def policy(self, name: str, version: int, region: str = REGION) -> dict[str, Any]:
        lam = self.client("lambda", region)
        got = lam.get_layer_version_policy(LayerName=name, VersionNumber=version)
        policy: dict[str, Any] = json.loads(got["Policy"])
        return policy

    def make_bucket(self, name: str, region: str = REGION) -> None:
        s3 = self.client("s3", region)
        if region == "us-east-1":
            s3.create_bucket(Bucket=name)
        else:
            s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})

    def objects(self, bucket: str, region: str = REGION) -> list[str]:
        s3 = self.client("s3", region)
        return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]

    def uploads(self, bucket: str, region: str = REGION) -> list[str]:
        """Multipart uploads still open in *bucket*."""
        s3 = self.client("s3", region)
        return [u["Key"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]


@pytest.fixture(name="aws")
def aws_fixture(
    moto_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: Any
) -> Iterator[Aws]:
    """boto3 configured for the moto server only: no real profile, credentials or
    region from the machine can leak in."""
    empty = tmp_path_factory.mktemp("awsconfig")
    for var in (
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_SECURITY_TOKEN",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "LAYERBUILDER_STAGING_BUCKET",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    helper = Aws(moto_server)
    helper.reset()
    yield helper
