"""publish_layer against moto's server on loopback, through real boto3 calls."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws import ACCOUNT, REGION, Aws, aws_fixture, moto_server_fixture  # noqa: F401
from botocore.exceptions import ClientError

from layerbuilder import publish
from layerbuilder.errors import AwsError, BadRequest, InvalidLayerName, LayerTooLarge
from layerbuilder.limits import MAX_DESCRIPTION, MAX_LICENSE, MAX_UNZIPPED
from layerbuilder.publish import (
    Marker,
    find_existing,
    format_description,
    parse_description,
    publish_layer,
    statement_id,
    validate_share,
    zip_facts,
)
from layerbuilder.targets import Target

TARGET = Target("python3.12", "x86_64")
HASH = hashlib.sha256(b"plan").hexdigest()
OTHER_HASH = hashlib.sha256(b"other plan").hexdigest()


def make_zip(path: Path, payload: bytes = b"print('hi')\n", name: str = "demo") -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        info = zipfile.ZipInfo(f"python/lib/python3.12/site-packages/{name}/__init__.py")
        info.date_time = (1980, 1, 1, 0, 0, 0)
        zf.writestr(info, payload)
    return path


def b64sha(path: Path) -> str:
    return base64.b64encode(hashlib.sha256(path.read_bytes()).digest()).decode()


def recording_session() -> tuple[Any, list[str]]:
    """A boto3 session that records the name of every API call its clients make."""
    session = boto3.session.Session()
    calls: list[str] = []
    session.events.register("before-call", lambda model, **_: calls.append(model.name))
    return session, calls


def pub(zip_path: Path, **kw: Any) -> list[publish.PublishResult]:
    args: dict[str, Any] = {
        "layer_name": "demo_10_py312",
        "target": TARGET,
        "content_hash": HASH,
        "requirement": "demo==1.0",
        "unzipped_size": 12,
    }
    args.update(kw)
    return publish_layer(zip_path, **args)


# -- the description marker ------------------------------------------------------------


def test_description_round_trip() -> None:
    text = format_description(HASH, 1234, "pyjwt[crypto]>=2")
    assert text == f"layerbuilder:v1 sha={HASH[:24]} size=1234 req=pyjwt[crypto]>=2"
    assert parse_description(text) == Marker(HASH[:24], 1234, "pyjwt[crypto]>=2")
    assert parse_description(text).matches(HASH)  # type: ignore[union-attr]
    assert not parse_description(text).matches(OTHER_HASH)  # type: ignore[union-attr]


def test_description_trims_a_long_requirement_to_256() -> None:
    req = "demo" + ",".join(f"!={i}.0" for i in range(200))
    text = format_description(HASH, 5, req)
    assert len(text) == MAX_DESCRIPTION
    assert text.endswith("...")
    marker = parse_description(text)
    assert marker is not None and marker.unzipped_size == 5 and marker.matches(HASH)


@pytest.mark.parametrize(
    "text",
    [None, "", "my own layer", "layerbuilder:v1 sha=abc size=1", "layerbuilder:v2 sha=" + HASH],
)
def test_parse_description_ignores_other_descriptions(text: str | None) -> None:
    assert parse_description(text) is None


def test_format_description_refuses_a_non_hex_hash() -> None:
    with pytest.raises(BadRequest, match="not a hex digest"):
        format_description("not-a-hash", 1, "x")


# -- sharing values ------------------------------------------------------------------


def test_validate_share() -> None:
    assert validate_share({"Principal": "*"}) == {"Principal": "*"}
    assert validate_share({"Principal": ACCOUNT}) == {"Principal": ACCOUNT}
    org = {"Principal": "*", "OrganizationId": "o-abcdef1234"}
    assert validate_share(org) == org
    assert statement_id(org) == "layerbuilder-all-o-abcdef1234"
    assert statement_id({"Principal": ACCOUNT}) == f"layerbuilder-{ACCOUNT}"


@pytest.mark.parametrize(
    ("share", "message"),
    [
        ({"Principal": "me"}, "Share.Principal must be"),
        ({"Principal": 123456789012}, "Share.Principal must be"),
        ({}, "Share.Principal must be"),
        ({"Principal": "*", "OrganizationId": "org-1"}, "Share.OrganizationId must look like"),
        ({"Principal": ACCOUNT, "OrganizationId": "o-abcdef1234"}, "needs Share.Principal '\\*'"),
        ({"Principal": "*", "Org": "o-abcdef1234"}, "unknown key Share.Org"),
        (["*"], "Share must be an object"),
    ],
)
def test_validate_share_names_the_bad_key(share: Any, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        validate_share(share)


# -- publishing inline ---------------------------------------------------------------


def test_publish_inline_stores_our_zip(aws: Aws, tmp_path: Path) -> None:
    z = make_zip(tmp_path / "layer.zip")
    [res] = pub(z, license_info="MIT " * 200)
    assert res.region == REGION and res.version == 1 and not res.unchanged
    assert res.layer_version_arn == (f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:demo_10_py312:1")
    assert res.code_sha256 == b64sha(z) and res.code_size == z.stat().st_size
    got = aws.get_version("demo_10_py312", 1)
    assert got["Content"]["CodeSha256"] == b64sha(z)
    assert got["Content"]["CodeSize"] == z.stat().st_size
    assert got["CompatibleRuntimes"] == ["python3.12"]
    assert got["CompatibleArchitectures"] == ["x86_64"]
    assert got["Description"] == format_description(HASH, 12, "demo==1.0")
    assert len(got["LicenseInfo"]) == MAX_LICENSE and got["LicenseInfo"].startswith("MIT MIT")


def test_publish_is_idempotent_and_force_publishes_again(aws: Aws, tmp_path: Path) -> None:
    z = make_zip(tmp_path / "layer.zip")
    session, calls = recording_session()
    [first] = pub(z, session=session)
    assert calls == ["ListLayerVersions", "PublishLayerVersion"]
    calls.clear()
    [second] = pub(z, session=session)
    assert calls == ["ListLayerVersions", "GetLayerVersion"]
    assert second.unchanged and second.version == first.version == 1
    assert second.layer_version_arn == first.layer_version_arn
    assert second.code_sha256 == b64sha(z) and second.unzipped_size == 12
    assert len(aws.layer_versions("demo_10_py312")) == 1
    [forced] = pub(z, force=True)
    assert not forced.unchanged and forced.version == 2
    # the newest matching version is the one found from now on
    [again] = pub(z)
    assert again.unchanged and again.version == 2


def test_other_content_or_target_publishes_a_new_version(aws: Aws, tmp_path: Path) -> None:
    z = make_zip(tmp_path / "layer.zip")
    pub(z)
    [other] = pub(z, content_hash=OTHER_HASH)
    assert not other.unchanged and other.version == 2
    [arm] = pub(z, target=Target("python3.12", "arm64"))
    assert not arm.unchanged and arm.version == 3
    assert aws.get_version("demo_10_py312", 3)["CompatibleArchitectures"] == ["arm64"]
    [py313] = pub(z, target=Target("python3.13", "x86_64"))
    assert not py313.unchanged and py313.version == 4


def test_versions_published_by_hand_are_not_mistaken(aws: Aws, tmp_path: Path) -> None:
    z = make_zip(tmp_path / "layer.zip")
    aws.client("lambda").publish_layer_version(
        LayerName="demo_10_py312",
        Content={"ZipFile": z.read_bytes()},
        Description="built by hand",
        CompatibleRuntimes=["python3.12"],
    )
    [res] = pub(z)
    assert not res.unchanged and res.version == 2


class _FakePaginator:
    def __init__(self, pages: list[dict[str, Any]]) -> None:
        self.pages = pages
        self.kwargs: dict[str, Any] = {}

    def paginate(self, **kwargs: Any) -> list[dict[str, Any]]:
        self.kwargs = kwargs
        return self.pages


class _FakeLambda:
    """Pages the way Lambda does (moto returns a single page)."""

    def __init__(self, pages: list[dict[str, Any]]) -> None:
        self.paginator = _FakePaginator(pages)
        self.got: list[tuple[str, int]] = []

    def get_paginator(self, name: str) -> _FakePaginator:
        assert name == "list_layer_versions"
        return self.paginator

    def get_layer_version(self, LayerName: str, VersionNumber: int) -> dict[str, Any]:
        self.got.append((LayerName, VersionNumber))
        return {
            "LayerArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:{LayerName}",
            "LayerVersionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:{LayerName}"
            f":{VersionNumber}",
            "Content": {"CodeSha256": "abc=", "CodeSize": 99},
        }


def _item(version: int, content_hash: str, runtime: str = "python3.12") -> dict[str, Any]:
    return {
        "Version": version,
        "Description": format_description(content_hash, 7, "demo"),
        "CompatibleRuntimes": [runtime],
        "CompatibleArchitectures": ["x86_64"],
    }


def test_find_existing_reads_every_page() -> None:
    pages = [
        {"LayerVersions": [_item(9, OTHER_HASH), _item(8, HASH, "python3.11")]},
        {"LayerVersions": [_item(5, OTHER_HASH), _item(4, HASH)]},
        {"LayerVersions": [_item(2, HASH)]},
    ]
    lam = _FakeLambda(pages)
    found = find_existing(lam, "demo", TARGET, HASH, REGION)
    assert found is not None and found.version == 4 and found.unchanged
    assert found.code_size == 99 and found.unzipped_size == 7
    assert lam.paginator.kwargs == {"LayerName": "demo"}
    assert lam.got == [("demo", 4)]
    assert find_existing(_FakeLambda(pages[:1]), "demo", TARGET, HASH, REGION) is None


# -- through S3 ----------------------------------------------------------------------


def test_publish_through_s3_deletes_the_staging_object(aws: Aws, tmp_path: Path) -> None:
    aws.make_bucket("staging")
    z = make_zip(tmp_path / "layer.zip", payload=bytes(range(256)) * 4000)
    session, calls = recording_session()
    [res] = pub(z, inline_limit=100, s3_bucket="staging", session=session)
    assert calls == ["ListLayerVersions", "PutObject", "PublishLayerVersion", "DeleteObject"]
    assert not res.unchanged and res.version == 1
    got = aws.get_version("demo_10_py312", 1)
    assert got["Content"]["CodeSha256"] == b64sha(z)
    assert got["Content"]["CodeSize"] == z.stat().st_size
    assert aws.objects("staging") == []
    assert aws.uploads("staging") == []


def test_staging_bucket_from_the_environment(
    aws: Aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    aws.make_bucket("from-env")
    monkeypatch.setenv("LAYERBUILDER_STAGING_BUCKET", "from-env")
    z = make_zip(tmp_path / "layer.zip")
    [res] = pub(z, inline_limit=0)
    assert res.code_sha256 == b64sha(z)
    assert aws.objects("from-env") == []


def test_multipart_upload_through_s3(aws: Aws, tmp_path: Path) -> None:
    """A zip over the 16 MiB multipart threshold goes up in parts."""
    aws.make_bucket("staging")
    z = tmp_path / "layer.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("python/big.bin", hashlib.sha256(b"x").digest() * (20 * 1024 * 1024 // 32))
    session, calls = recording_session()
    [res] = pub(z, inline_limit=1024, s3_bucket="staging", session=session)
    assert "CreateMultipartUpload" in calls and "CompleteMultipartUpload" in calls
    assert calls.count("UploadPart") == 2  # 16 MiB parts
    assert aws.get_version("demo_10_py312", res.version)["Content"]["CodeSha256"] == b64sha(z)
    assert aws.objects("staging") == [] and aws.uploads("staging") == []


def test_staging_object_deleted_when_publishing_fails(aws: Aws, tmp_path: Path) -> None:
    aws.make_bucket("staging")
    z = make_zip(tmp_path / "layer.zip")
    session = boto3.session.Session()
    staged: list[str] = []

    def refuse(params: dict[str, Any], **_: Any) -> None:
        # the object is there while PublishLayerVersion runs...
        staged.extend(aws.objects("staging"))
        raise ClientError(
            {"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}},
            "PublishLayerVersion",
        )

    session.events.register("before-call.lambda.PublishLayerVersion", refuse)
    with pytest.raises(AwsError) as info:
        pub(z, inline_limit=0, s3_bucket="staging", session=session)
    assert info.value.code == "AccessDeniedException"
    assert "AccessDeniedException" in str(info.value) and REGION in str(info.value)
    assert len(staged) == 1 and staged[0].startswith("layerbuilder-staging/demo_10_py312/")
    # ...and gone afterwards
    assert aws.objects("staging") == []
    assert aws.layers() == []


def test_missing_staging_bucket_is_an_aws_error(aws: Aws, tmp_path: Path) -> None:
    z = make_zip(tmp_path / "layer.zip")
    with pytest.raises(AwsError) as info:
        pub(z, inline_limit=0, s3_bucket="no-such-bucket")
    assert info.value.code == "NoSuchBucket"
    assert "no-such-bucket" in str(info.value)
    assert aws.layers() == []


def test_no_staging_bucket_says_how_to_set_one(aws: Aws, tmp_path: Path) -> None:
    z = make_zip(tmp_path / "layer.zip")
    with pytest.raises(BadRequest) as info:
        pub(z, inline_limit=10)
    message = str(info.value)
    assert "LAYERBUILDER_STAGING_BUCKET" in message and "--s3-bucket" in message
    assert f"{z.stat().st_size:,} bytes" in message
    assert aws.layers() == []


# -- regions and sharing ---------------------------------------------------------------


def test_publish_to_several_regions_and_share(aws: Aws, tmp_path: Path) -> None:
    z = make_zip(tmp_path / "layer.zip")
    regions = ["us-east-1", "eu-west-1", "ap-southeast-2"]
    share = {"Principal": "*", "OrganizationId": "o-abcdef1234"}
    results = pub(z, regions=[*regions, "eu-west-1"], share=share)
    assert [r.region for r in results] == regions
    for r in results:
        assert r.layer_version_arn == f"arn:aws:lambda:{r.region}:{ACCOUNT}:layer:demo_10_py312:1"
        assert aws.get_version("demo_10_py312", 1, r.region)["Content"]["CodeSha256"] == b64sha(z)
        [statement] = aws.policy("demo_10_py312", 1, r.region)["Statement"]
        assert statement["Sid"] == "layerbuilder-all-o-abcdef1234"
        assert statement["Action"] == "lambda:GetLayerVersion"
        assert statement["Principal"] == "*"
        # moto keeps OrganizationId as sent; Lambda turns it into a PrincipalOrgID condition
        assert "o-abcdef1234" in json.dumps(statement)
        assert r.shared_with == ("layerbuilder-all-o-abcdef1234",)
    # unchanged everywhere the second time, and the grant is not added twice
    again = pub(z, regions=regions, share=share)
    assert all(r.unchanged and r.version == 1 for r in again)
    for region in regions:
        assert len(aws.policy("demo_10_py312", 1, region)["Statement"]) == 1


def test_share_with_an_account_on_an_unchanged_version(aws: Aws, tmp_path: Path) -> None:
    z = make_zip(tmp_path / "layer.zip")
    pub(z)
    [res] = pub(z, share={"Principal": "210987654321"})
    assert res.unchanged and res.shared_with == ("layerbuilder-210987654321",)
    [statement] = aws.policy("demo_10_py312", 1)["Statement"]
    assert statement["Principal"] == "210987654321"
    assert statement["Sid"] == "layerbuilder-210987654321"


def test_region_defaults_to_the_configured_one(
    aws: Aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    z = make_zip(tmp_path / "layer.zip")
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    [res] = pub(z)
    assert res.region == "eu-central-1"
    monkeypatch.setenv("AWS_REGION", "eu-north-1")
    [res] = pub(z)
    assert res.region == "eu-north-1"
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    with pytest.raises(BadRequest, match="no AWS region"):
        pub(z)


def test_bad_region_name(aws: Aws, tmp_path: Path) -> None:
    with pytest.raises(BadRequest, match=r"Regions\[1\] = 'mars'"):
        pub(make_zip(tmp_path / "layer.zip"), regions=["us-east-1", "mars"])
    assert aws.layers() == []


# -- refusals before anything is uploaded ------------------------------------------------


def test_too_large_is_refused_before_uploading(aws: Aws, tmp_path: Path) -> None:
    aws.make_bucket("staging")
    z = make_zip(tmp_path / "layer.zip")
    sizes = {"torch": 200_000_000, "numpy": 40_000_000, "six": 30_000, "nvidia": 90_000_000}
    with pytest.raises(LayerTooLarge) as info:
        pub(z, unzipped_size=MAX_UNZIPPED + 1, sizes=sizes, s3_bucket="staging")
    message = str(info.value)
    assert f"{MAX_UNZIPPED + 1:,} bytes" in message and f"{MAX_UNZIPPED:,}" in message
    assert "torch (200.0 MB), nvidia (90.0 MB), numpy (40.0 MB)" in message
    assert "Exclude" in message
    assert aws.layers() == [] and aws.objects("staging") == []


def test_exactly_at_the_limit_is_allowed(aws: Aws, tmp_path: Path) -> None:
    [res] = pub(make_zip(tmp_path / "layer.zip"), unzipped_size=MAX_UNZIPPED)
    assert res.version == 1


def test_bad_layer_name_and_missing_zip(aws: Aws, tmp_path: Path) -> None:
    with pytest.raises(InvalidLayerName, match="'bad name'"):
        pub(make_zip(tmp_path / "layer.zip"), layer_name="bad name")
    with pytest.raises(BadRequest, match="no layer zip at"):
        pub(tmp_path / "missing.zip")
    assert aws.layers() == []


# -- AWS failures ----------------------------------------------------------------------


def test_no_credentials(aws: Aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var)
    with pytest.raises(AwsError) as info:
        pub(make_zip(tmp_path / "layer.zip"))
    assert info.value.code == "NoCredentialsError"
    assert "credentials" in str(info.value) and "ListLayerVersions" in str(info.value)


def test_unreachable_endpoint(aws: Aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(AwsError) as info:
        pub(make_zip(tmp_path / "layer.zip"))
    assert info.value.code == "EndpointConnectionError"
    assert f"127.0.0.1:{port}" in str(info.value)


def test_client_error_names_the_code(aws: Aws, tmp_path: Path) -> None:
    session = boto3.session.Session()

    def throttle(**_: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "TooManyRequestsException", "Message": "slow down"}},
            "ListLayerVersions",
        )

    session.events.register("before-call.lambda.ListLayerVersions", throttle)
    with pytest.raises(AwsError) as info:
        pub(make_zip(tmp_path / "layer.zip"), session=session)
    assert info.value.code == "TooManyRequestsException"
    assert str(info.value).endswith("TooManyRequestsException: slow down")


# -- zips built elsewhere ----------------------------------------------------------------


def test_zip_facts(tmp_path: Path) -> None:
    z = make_zip(tmp_path / "a.zip", payload=b"x" * 1000, name="alpha")
    facts = zip_facts(z, TARGET)
    assert facts.unzipped_size == 1000 and facts.sizes == {"alpha": 1000}
    assert facts.zip_sha256 == hashlib.sha256(z.read_bytes()).hexdigest()
    assert facts.content_hash != zip_facts(z, Target("python3.12", "arm64")).content_hash
    assert facts == zip_facts(z, TARGET)
    with pytest.raises(BadRequest, match="cannot read layer zip"):
        zip_facts(tmp_path / "nope.zip", TARGET)


def test_importing_layerbuilder_does_not_import_boto3() -> None:
    code = (
        "import sys, layerbuilder, layerbuilder.publish, layerbuilder.handler\n"
        "assert 'boto3' not in sys.modules and 'botocore' not in sys.modules, 'boto3 imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_large_zip_to_several_regions_uses_a_bucket_per_region(aws: Aws, tmp_path: Path) -> None:
    """Lambda reads a layer's zip only from a bucket in the layer's own region."""
    for region in ("us-east-1", "eu-west-1"):
        aws.make_bucket(f"staging-{region}", region)
    z = make_zip(tmp_path / "layer.zip")
    session, calls = recording_session()
    results = pub(
        z,
        regions=["us-east-1", "eu-west-1"],
        inline_limit=0,
        s3_bucket="staging-{region}",
        session=session,
    )
    assert calls.count("PutObject") == 2 and calls.count("DeleteObject") == 2
    for r in results:
        assert aws.get_version("demo_10_py312", 1, r.region)["Content"]["CodeSha256"] == b64sha(z)
        assert aws.objects(f"staging-{r.region}", r.region) == []


def test_a_layer_that_does_not_exist_yet_has_no_versions(aws: Aws, tmp_path: Path) -> None:
    """Whether ListLayerVersions answers [] or ResourceNotFoundException for a new name,
    publishing goes ahead."""
    session = boto3.session.Session()

    def not_found(**_: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "ResourceNotFoundException", "Message": "no layer"}},
            "ListLayerVersions",
        )

    session.events.register("before-call.lambda.ListLayerVersions", not_found)
    [res] = pub(make_zip(tmp_path / "layer.zip"), session=session)
    assert res.version == 1 and not res.unchanged
