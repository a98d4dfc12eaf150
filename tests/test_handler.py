"""The Lambda handler: event validation, responses, and end to end against moto's
server (real boto3 calls on loopback) with the index served from fixtures."""

from __future__ import annotations

import base64
import hashlib
import logging
import platform
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from aws import ACCOUNT, REGION, Aws, aws_fixture, moto_server_fixture  # noqa: F401
from botocore.exceptions import ClientError
from fakeindex import INDEX_URL

from layerbuilder import errors, publish
from layerbuilder.build import build_layer
from layerbuilder.errors import BadRequest, InvalidLayerName, InvalidRequirement
from layerbuilder.handler import EVENT_KEYS, Request, lambda_handler, parse_event
from layerbuilder.targets import Target

CTX = SimpleNamespace(aws_request_id="req-0001", function_name="layerbuilder")
ENV = {"AWS_EXECUTION_ENV": "AWS_Lambda_python3.12"}
REQUESTS = "requests_2342_py312"  # the seed's convention for requests 2.34.2 on python3.12


@pytest.fixture
def index(fake_index: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("LAYERBUILDER_INDEX_URL", INDEX_URL)
    return fake_index


@pytest.fixture
def tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The /tmp of the invocation: the handler's work directories go here."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


@pytest.fixture
def lambda_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_EXECUTION_ENV", "AWS_Lambda_python3.12")
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")


def file_downloads(rsps: Any) -> list[str]:
    return [c.request.url for c in rsps.calls if c.request.url.endswith(".whl")]


def b64sha(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


# -- parsing the event (no AWS, no index) ------------------------------------------------


def test_minimal_event_takes_the_defaults() -> None:
    req = parse_event({"ModuleName": "requests"}, ENV, machine="x86_64")
    assert req == Request(
        requirement="requests", project="requests", target=Target("python3.12", "x86_64")
    )


def test_full_event() -> None:
    event = {
        "ModuleName": "PyJWT[crypto]",
        "ModuleVersion": ">=2,<3",
        "CustomLayerName": "jwt-layer",
        "Runtime": "python3.11",
        "Architecture": "arm64",
        "IncludeDependencies": False,
        "Exclude": ["Cffi", "pycparser"],
        "ExcludeNewer": "2025-01-31",
        "Regions": ["eu-west-1", "us-east-1", "eu-west-1"],
        "Share": {"Principal": "*", "OrganizationId": "o-abcdef1234"},
        "Force": True,
        "DryRun": False,
    }
    assert set(event) == set(EVENT_KEYS)
    req = parse_event(event, ENV, machine="x86_64")
    assert req.requirement == "PyJWT[crypto]<3,>=2"
    assert req.project == "pyjwt"
    assert req.target == Target("python3.11", "arm64")
    assert req.layer_name == "jwt-layer"
    assert req.no_deps and req.force and not req.dry_run
    assert req.exclude == ("cffi", "pycparser")
    assert req.exclude_newer is not None and req.exclude_newer.isoformat() == (
        "2025-01-31T00:00:00+00:00"
    )
    assert req.regions == ("eu-west-1", "us-east-1")
    assert req.share == {"Principal": "*", "OrganizationId": "o-abcdef1234"}


@pytest.mark.parametrize(
    ("env", "machine", "runtime", "arch"),
    [
        ({"AWS_EXECUTION_ENV": "AWS_Lambda_python3.11"}, "aarch64", "python3.11", "arm64"),
        ({"AWS_EXECUTION_ENV": "AWS_Lambda_python3.13"}, "x86_64", "python3.13", "x86_64"),
        ({"AWS_EXECUTION_ENV": "AWS_Lambda_nodejs20.x"}, "arm64", "python3.12", "arm64"),
        ({}, "AMD64", "python3.12", "x86_64"),
    ],
)
def test_defaults_from_the_function_itself(
    env: dict[str, str], machine: str, runtime: str, arch: str
) -> None:
    req = parse_event({"ModuleName": "six"}, env, machine=machine)
    assert req.target == Target(runtime, arch)


@pytest.mark.parametrize(
    ("module_name", "module_version", "requirement"),
    [
        ("numpy", "1.26.4", "numpy==1.26.4"),
        ("numpy", " 2.0 ", "numpy==2.0"),
        ("numpy", "~=1.26", "numpy~=1.26"),
        ("numpy>=1.20", "1.26.4", "numpy==1.26.4"),
        ("numpy>=1.20", ">=1.20", "numpy>=1.20"),
        ("pyjwt[crypto]>=2", None, "pyjwt[crypto]>=2"),
    ],
)
def test_module_version(module_name: str, module_version: str | None, requirement: str) -> None:
    event = {"ModuleName": module_name, "ModuleVersion": module_version}
    assert parse_event(event, ENV, "x86_64").requirement == requirement


@pytest.mark.parametrize(
    ("event", "error", "message"),
    [
        ([], BadRequest, "the event must be a JSON object"),
        ({}, BadRequest, "ModuleName is required"),
        ({"ModuleName": " "}, BadRequest, "ModuleName is required"),
        ({"ModuleName": None}, BadRequest, "ModuleName is required"),
        (
            {"ModuleName": "six", "Modulename": "x"},
            BadRequest,
            "unknown key 'Modulename' in the event (did you mean ModuleName?)",
        ),
        ({"ModuleName": "six", "Regoins": ["us-east-1"]}, BadRequest, "did you mean Regions"),
        ({"ModuleName": 7}, BadRequest, "ModuleName must be a string"),
        ({"ModuleName": "six", "ModuleVersion": 1.0}, BadRequest, "ModuleVersion must be a string"),
        (
            {"ModuleName": "six", "IncludeDependencies": "false"},
            BadRequest,
            "IncludeDependencies must be a boolean",
        ),
        ({"ModuleName": "six", "Force": 1}, BadRequest, "Force must be a boolean"),
        ({"ModuleName": "six", "DryRun": "yes"}, BadRequest, "DryRun must be a boolean"),
        ({"ModuleName": "six", "Exclude": "boto3"}, BadRequest, "Exclude must be a list"),
        ({"ModuleName": "six", "Exclude": ["ok", 3]}, BadRequest, "Exclude[1] must be"),
        (
            {"ModuleName": "six", "Exclude": ["no way"]},
            BadRequest,
            "Exclude[0] = 'no way' is not a project name",
        ),
        ({"ModuleName": "six", "Regions": "us-east-1"}, BadRequest, "Regions must be a list"),
        ({"ModuleName": "six", "Regions": []}, BadRequest, "Regions must list at least one"),
        (
            {"ModuleName": "six", "Regions": ["us-east-1", "Mars"]},
            BadRequest,
            "Regions[1] = 'Mars' is not an AWS region",
        ),
        ({"ModuleName": "six", "Share": "*"}, BadRequest, "Share must be an object"),
        (
            {"ModuleName": "six", "Share": {"Principal": "bob"}},
            BadRequest,
            "Share.Principal must be",
        ),
        (
            {"ModuleName": "six", "Share": {"Principal": "*", "Org": "o-1"}},
            BadRequest,
            "unknown key Share.Org",
        ),
        (
            {"ModuleName": "six", "ExcludeNewer": 20250101},
            BadRequest,
            "ExcludeNewer must be a string",
        ),
        (
            {"ModuleName": "six", "ExcludeNewer": "last tuesday"},
            BadRequest,
            "ExcludeNewer 'last tuesday' is not an ISO 8601 timestamp",
        ),
        (
            {"ModuleName": "six", "Runtime": "python2.7"},
            BadRequest,
            "Runtime 'python2.7' is not supported; use one of python3.9",
        ),
        (
            {"ModuleName": "six", "Architecture": "aarch64"},
            BadRequest,
            "Architecture 'aarch64' is not supported; use one of x86_64, arm64",
        ),
        (
            {"ModuleName": "six", "CustomLayerName": "my layer"},
            InvalidLayerName,
            "invalid layer name 'my layer'",
        ),
        (
            {"ModuleName": "six", "CustomLayerName": ["x"]},
            BadRequest,
            "CustomLayerName must be a string",
        ),
        ({"ModuleName": "six==="}, InvalidRequirement, "ModuleName 'six===' is not a project"),
        ({"ModuleName": "six @ https://files.test/six.whl"}, BadRequest, "direct URL reference"),
        (
            {"ModuleName": "six", "ModuleVersion": "latest"},
            InvalidRequirement,
            "ModuleVersion 'latest' is not a PEP 440 version or specifier",
        ),
        (
            {"ModuleName": "six", "ModuleVersion": "1.2.3.x"},
            InvalidRequirement,
            "ModuleVersion '1.2.3.x' is not a PEP 440 version",
        ),
        (
            {"ModuleName": "six>=2", "ModuleVersion": "1.17.0"},
            BadRequest,
            "ModuleVersion '1.17.0' conflicts with the specifier '>=2' in ModuleName",
        ),
        (
            {"ModuleName": "six<2", "ModuleVersion": ">=1"},
            BadRequest,
            "ModuleVersion '>=1' conflicts with the specifier '<2'",
        ),
    ],
)
def test_bad_events_name_the_key(event: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error) as info:
        parse_event(event, ENV, "x86_64")
    assert message in str(info.value)
    # and the handler answers 400 with the same message, touching nothing
    response = lambda_handler(event, CTX)
    assert response == {
        "statusCode": 400,
        "body": {"error": type(info.value).__name__, "message": str(info.value)},
    }


# -- end to end: moto + the fake index -----------------------------------------------------


def test_publishes_the_zip_we_built(
    aws: Aws, index: Any, tmp: Path, lambda_env: None, tmp_path: Path
) -> None:
    response = lambda_handler({"ModuleName": "requests"}, CTX)
    assert response["statusCode"] == 200, response
    body = response["body"]
    assert body["LayerName"] == REQUESTS
    assert body["LayerVersionArn"] == f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:{REQUESTS}:1"
    assert body["Version"] == 1 and body["Unchanged"] is False
    assert sorted((p["name"], p["version"]) for p in body["Packages"]) == [
        ("certifi", "2026.10.19.post1"),
        ("charset-normalizer", "3.5.3"),
        ("idna", "3.20"),
        ("requests", "2.34.2"),
        ("urllib3", "2.8.0"),
    ]
    assert all(len(p["sha256"]) == 64 and p["filename"].endswith(".whl") for p in body["Packages"])

    # build the same layer here: zips are deterministic, so this is the zip the handler sent
    ours = build_layer(["requests"], "python3.12", "x86_64", tmp_path / "ours.zip")
    data = ours.path.read_bytes()
    assert body["ContentSha256"] == ours.content_hash
    assert body["ZipSize"] == len(data) and body["UnzippedSize"] == ours.unzipped_size
    stored = aws.get_version(REQUESTS, 1)
    assert stored["Content"]["CodeSha256"] == b64sha(data)
    assert stored["Content"]["CodeSize"] == len(data)
    assert stored["CompatibleRuntimes"] == ["python3.12"]
    assert stored["CompatibleArchitectures"] == ["x86_64"]
    assert stored["LicenseInfo"] == ours.license_info and stored["LicenseInfo"]
    marker = publish.parse_description(stored["Description"])
    assert marker is not None and marker.matches(ours.content_hash)
    assert marker.unzipped_size == ours.unzipped_size and marker.requirement == "requests"
    # the work directory is gone
    assert list(tmp.iterdir()) == []


def test_second_call_is_unchanged_and_force_publishes(
    aws: Aws, index: Any, tmp: Path, lambda_env: None
) -> None:
    first = lambda_handler({"ModuleName": "requests"}, CTX)["body"]
    assert len(file_downloads(index)) == 5
    index.calls.reset()
    second = lambda_handler({"ModuleName": "requests"}, CTX)
    assert second["statusCode"] == 200
    body = second["body"]
    assert body["Unchanged"] is True and body["Version"] == first["Version"] == 1
    assert body["LayerVersionArn"] == first["LayerVersionArn"]
    assert body["ZipSize"] == first["ZipSize"] and body["UnzippedSize"] == first["UnzippedSize"]
    assert body["ContentSha256"] == first["ContentSha256"]
    assert file_downloads(index) == []  # recognised from the plan: nothing downloaded
    assert len(aws.layer_versions(REQUESTS)) == 1

    forced = lambda_handler({"ModuleName": "requests", "Force": True}, CTX)["body"]
    assert forced["Unchanged"] is False and forced["Version"] == 2
    assert (
        aws.get_version(REQUESTS, 2)["Content"]["CodeSha256"]
        == (aws.get_version(REQUESTS, 1)["Content"]["CodeSha256"])
    )
    assert list(tmp.iterdir()) == []


def test_version_and_target_from_the_event(
    aws: Aws, index: Any, tmp: Path, lambda_env: None
) -> None:
    event = {
        "ModuleName": "requests",
        "ModuleVersion": "2.32.5",
        "Architecture": "arm64",
        "Runtime": "python3.12",
        "Exclude": ["charset-normalizer"],
    }
    body = lambda_handler(event, CTX)["body"]
    assert body["LayerName"] == "requests_2325_py312_arm64"
    names = sorted(p["name"] for p in body["Packages"])
    assert names == ["certifi", "idna", "requests", "urllib3"]
    stored = aws.get_version("requests_2325_py312_arm64", 1)
    assert stored["CompatibleArchitectures"] == ["arm64"]


def test_no_dependencies_and_custom_name(aws: Aws, index: Any, tmp: Path, lambda_env: None) -> None:
    event = {"ModuleName": "six", "IncludeDependencies": False, "CustomLayerName": "my-six"}
    body = lambda_handler(event, CTX)["body"]
    assert body["LayerName"] == "my-six"
    assert [p["filename"] for p in body["Packages"]] == ["six-1.17.0-py2.py3-none-any.whl"]
    assert aws.layers() == ["my-six"]


def test_defaults_from_aws_execution_env(
    aws: Aws, index: Any, tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_EXECUTION_ENV", "AWS_Lambda_python3.11")
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    body = lambda_handler({"ModuleName": "six"}, CTX)["body"]
    assert body["Runtime"] == "python3.11" and body["Architecture"] == "arm64"
    assert body["LayerName"] == "six_1170_py311_arm64"
    stored = aws.get_version("six_1170_py311_arm64", 1)
    assert stored["CompatibleRuntimes"] == ["python3.11"]
    assert stored["CompatibleArchitectures"] == ["arm64"]


def test_regions_and_sharing(aws: Aws, index: Any, tmp: Path, lambda_env: None) -> None:
    event = {
        "ModuleName": "six",
        "Regions": ["eu-west-1", "ap-northeast-1"],
        "Share": {"Principal": "210987654321"},
    }
    body = lambda_handler(event, CTX)["body"]
    assert body["LayerVersionArn"] == f"arn:aws:lambda:eu-west-1:{ACCOUNT}:layer:six_1170_py312:1"
    assert [(r["Region"], r["Version"], r["Unchanged"]) for r in body["Regions"]] == [
        ("eu-west-1", 1, False),
        ("ap-northeast-1", 1, False),
    ]
    sha = aws.get_version("six_1170_py312", 1, "eu-west-1")["Content"]["CodeSha256"]
    assert aws.get_version("six_1170_py312", 1, "ap-northeast-1")["Content"]["CodeSha256"] == sha
    assert aws.layers(REGION) == []  # not the function's own region
    for region in ("eu-west-1", "ap-northeast-1"):
        [statement] = aws.policy("six_1170_py312", 1, region)["Statement"]
        assert statement["Sid"] == "layerbuilder-210987654321"
        assert statement["Action"] == "lambda:GetLayerVersion"
        assert statement["Principal"] == "210987654321"

    # a region added later gets the layer; the others stay unchanged
    event["Regions"] = ["eu-west-1", "us-west-2"]
    body = lambda_handler(event, CTX)["body"]
    assert [(r["Region"], r["Version"], r["Unchanged"]) for r in body["Regions"]] == [
        ("eu-west-1", 1, True),
        ("us-west-2", 1, False),
    ]
    assert body["Unchanged"] is False
    assert len(aws.policy("six_1170_py312", 1, "eu-west-1")["Statement"]) == 1


def test_dry_run_leaves_no_trace(
    aws: Aws, index: Any, tmp: Path, lambda_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    aws.make_bucket("staging")
    monkeypatch.setenv("LAYERBUILDER_STAGING_BUCKET", "staging")
    response = lambda_handler({"ModuleName": "requests", "DryRun": True}, CTX)
    assert response["statusCode"] == 200
    body = response["body"]
    assert body["DryRun"] is True and body["LayerName"] == REQUESTS
    assert body["LayerVersionArn"] is None and body["Version"] is None
    assert len(body["Packages"]) == 5 and len(body["ContentSha256"]) == 64
    assert body["DeclaredSize"] > 0
    assert file_downloads(index) == []
    assert aws.layers() == [] and aws.objects("staging") == []
    assert list(tmp.iterdir()) == []


def test_through_s3_when_over_the_inline_limit(
    aws: Aws, index: Any, tmp: Path, lambda_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    aws.make_bucket("staging")
    monkeypatch.setenv("LAYERBUILDER_STAGING_BUCKET", "staging")
    monkeypatch.setattr(publish, "MAX_INLINE_ZIP", 1000)
    body = lambda_handler({"ModuleName": "six", "Force": True}, CTX)["body"]
    assert body["Version"] == 1
    assert aws.get_version("six_1170_py312", 1)["Content"]["CodeSize"] == body["ZipSize"]
    assert aws.objects("staging") == []
    assert list(tmp.iterdir()) == []


def test_staging_object_removed_when_publish_fails(
    aws: Aws, index: Any, tmp: Path, lambda_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    aws.make_bucket("staging")
    monkeypatch.setenv("LAYERBUILDER_STAGING_BUCKET", "staging")
    monkeypatch.setattr(publish, "MAX_INLINE_ZIP", 1000)
    staged: list[str] = []
    real_session = boto3.session.Session

    def refuse(**_: Any) -> None:
        staged.extend(aws.objects("staging"))
        raise ClientError(
            {"Error": {"Code": "CodeStorageExceededException", "Message": "storage full"}},
            "PublishLayerVersion",
        )

    def session(*args: Any, **kwargs: Any) -> Any:
        s = real_session(*args, **kwargs)
        s.events.register("before-call.lambda.PublishLayerVersion", refuse)
        return s

    monkeypatch.setattr(boto3.session, "Session", session)
    response = lambda_handler({"ModuleName": "six"}, CTX)
    assert response["statusCode"] == 502
    assert response["body"]["error"] == "AwsError"
    assert "CodeStorageExceededException: storage full" in response["body"]["message"]
    assert len(staged) == 1
    assert aws.objects("staging") == [] and aws.layers() == []
    assert list(tmp.iterdir()) == []


def test_no_staging_bucket_is_a_400(
    aws: Aws, index: Any, tmp: Path, lambda_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(publish, "MAX_INLINE_ZIP", 1000)
    response = lambda_handler({"ModuleName": "six"}, CTX)
    assert response["statusCode"] == 400
    assert "LAYERBUILDER_STAGING_BUCKET" in response["body"]["message"]
    assert list(tmp.iterdir()) == []


# -- every error class and its status ---------------------------------------------------


@pytest.mark.parametrize(
    ("event", "status", "error", "message"),
    [
        ({"ModuleName": "no-such-project"}, 404, "ProjectNotFound", "no-such-project"),
        ({"ModuleName": "requests", "ModuleVersion": "9.9.9"}, 404, "VersionNotFound", "2.34.2"),
        ({"ModuleName": "docopt"}, 422, "SdistOnly", "docopt"),
        (
            {"ModuleName": "numpy", "Runtime": "python3.9", "ModuleVersion": "2.5.5"},
            422,
            "NoCompatibleWheel",
            "numpy",
        ),
    ],
)
def test_index_errors(
    aws: Aws,
    index: Any,
    tmp: Path,
    lambda_env: None,
    event: dict[str, Any],
    status: int,
    error: str,
    message: str,
) -> None:
    response = lambda_handler(event, CTX)
    assert response["statusCode"] == status, response
    assert response["body"]["error"] == error
    assert message in response["body"]["message"]
    assert aws.layers() == [] and list(tmp.iterdir()) == []


def test_wheel_missing_from_the_file_host_is_502(
    aws: Aws, index: Any, tmp: Path, lambda_env: None
) -> None:
    """numpy's JSON is recorded but its wheel is not stored: the file host answers 404."""
    response = lambda_handler({"ModuleName": "numpy", "IncludeDependencies": False}, CTX)
    assert response["statusCode"] == 502, response
    assert response["body"]["error"] == "IndexUnavailable"
    assert "numpy" in response["body"]["message"]
    assert aws.layers() == [] and list(tmp.iterdir()) == []


def test_too_large_from_declared_sizes_is_413_before_downloading(
    aws: Aws, index: Any, tmp: Path, lambda_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from layerbuilder import download

    monkeypatch.setattr(download, "MAX_UNZIPPED", 100_000)
    response = lambda_handler({"ModuleName": "requests"}, CTX)
    assert response["statusCode"] == 413, response
    assert response["body"]["error"] == "LayerTooLarge"
    assert "--exclude" in response["body"]["message"]
    assert file_downloads(index) == []
    assert aws.layers() == [] and list(tmp.iterdir()) == []


def test_too_large_once_unzipped_is_413_before_uploading(
    aws: Aws, index: Any, tmp: Path, lambda_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from layerbuilder import build

    monkeypatch.setattr(build, "MAX_UNZIPPED", 1_000_000)  # the wheels are 0.7 MB zipped
    response = lambda_handler({"ModuleName": "requests"}, CTX)
    assert response["statusCode"] == 413, response
    assert "charset-normalizer" in response["body"]["message"]
    assert aws.layers() == [] and list(tmp.iterdir()) == []


def test_aws_failure_is_502_naming_the_code(
    aws: Aws, index: Any, tmp: Path, lambda_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var)
    response = lambda_handler({"ModuleName": "six"}, CTX)
    assert response["statusCode"] == 502
    assert response["body"]["error"] == "AwsError"
    assert "NoCredentialsError" in response["body"]["message"]
    assert list(tmp.iterdir()) == []


def _every_error_class() -> list[type[errors.LayerBuilderError]]:
    return [
        getattr(errors, name) for name in errors.__all__ if isinstance(getattr(errors, name), type)
    ]


@pytest.mark.parametrize("cls", _every_error_class(), ids=lambda c: c.__name__)
def test_every_error_class_maps_to_its_status(
    cls: type[errors.LayerBuilderError],
    tmp: Path,
    lambda_env: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from layerbuilder import resolver

    def fail(*_: Any, **__: Any) -> Any:
        raise cls(f"{cls.__name__} happened; do this next")

    monkeypatch.setattr(resolver, "resolve", fail)
    response = lambda_handler({"ModuleName": "six"}, CTX)
    assert response == {
        "statusCode": errors.http_status_for(cls("x")),
        "body": {"error": cls.__name__, "message": f"{cls.__name__} happened; do this next"},
    }
    expected = {
        "BadRequest": 400,
        "NotFound": 404,
        "ConflictError": 409,
        "LayerTooLarge": 413,
        "NoCompatibleWheel": 422,
        "UnsafeWheel": 422,
        "VerificationFailed": 422,
        "IndexUnavailable": 502,
        "IntegrityError": 502,
        "AwsError": 502,
        "LayerBuilderError": 500,
    }
    base = next(c.__name__ for c in cls.__mro__ if c.__name__ in expected)
    assert response["statusCode"] == expected[base]


def test_unexpected_error_is_500_with_traceback_and_request_id(
    tmp: Path,
    lambda_env: None,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from layerbuilder import resolver

    def bug(*_: Any, **__: Any) -> Any:
        return {}["missing"]

    monkeypatch.setattr(resolver, "resolve", bug)
    caplog.set_level(logging.INFO, logger="layerbuilder")
    response = lambda_handler({"ModuleName": "six"}, CTX)
    assert response["statusCode"] == 500
    assert response["body"]["error"] == "KeyError"
    assert "req-0001" in response["body"]["message"]
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "req-0001" in record.getMessage() and record.exc_info is not None
    assert "Traceback" in caplog.text and "KeyError: 'missing'" in caplog.text


def test_logs_stage_timings_and_no_secrets(
    aws: Aws,
    index: Any,
    tmp: Path,
    lambda_env: None,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "wJalrXUtnFEMI-K7MDENG-SECRET"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="layerbuilder")
    response = lambda_handler({"ModuleName": "requests"}, CTX)
    assert response["statusCode"] == 200
    text = caplog.text
    for stage in ("resolve took", "download took", "zip took", "publish of", "publish took"):
        assert stage in text, stage
    assert "req-0001" in text
    assert secret not in text


# -- live: the real index, moto for AWS ---------------------------------------------------


@pytest.mark.live
def test_live_requests_layer(
    aws: Aws, tmp: Path, lambda_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The issue's "done when": publish ``requests`` from the live index to moto; the
    layer unpacks to a working requests with its dependencies; the second call is
    unchanged.  moto does not serve a layer's content back, so the zip is caught on
    its way to publish_layer and checked against the stored CodeSha256."""
    import subprocess
    import zipfile

    monkeypatch.delenv("LAYERBUILDER_INDEX_URL", raising=False)
    caught = tmp_path / "published.zip"
    real_publish = publish.publish_layer

    def catch(zip_path: Any, **kwargs: Any) -> Any:
        caught.write_bytes(Path(zip_path).read_bytes())
        return real_publish(zip_path, **kwargs)

    monkeypatch.setattr(publish, "publish_layer", catch)
    response = lambda_handler({"ModuleName": "requests"}, CTX)
    assert response["statusCode"] == 200, response
    body = response["body"]
    top = next(p for p in body["Packages"] if p["name"] == "requests")
    assert body["LayerName"] == "requests_{}_py312".format(top["version"].replace(".", ""))
    assert {"requests", "urllib3", "idna", "certifi", "charset-normalizer"} <= {
        p["name"] for p in body["Packages"]
    }
    stored = aws.get_version(body["LayerName"], body["Version"])
    assert stored["Content"]["CodeSha256"] == b64sha(caught.read_bytes())

    site = tmp_path / "opt"
    with zipfile.ZipFile(caught) as zf:
        assert all(n.startswith("python/lib/python3.12/site-packages/") for n in zf.namelist())
        zf.extractall(site)
    pythons = sorted(Path("/root/.pyenv/versions").glob("3.12.*/bin/python3.12"))
    assert pythons, "needs a CPython 3.12 to import the layer"
    code = (
        "import sys; sys.path[:0] = [sys.argv[1]]\n"
        "import requests, urllib3, idna, certifi, charset_normalizer\n"
        "assert requests.__file__.startswith(sys.argv[1])\n"
        "r = requests.Request('GET', 'https://example.invalid/x', params={'q': 'a b'}).prepare()\n"
        "print(requests.__version__, r.url)\n"
    )
    run = subprocess.run(
        [
            str(pythons[-1]),
            "-I",
            "-S",
            "-c",
            code,
            str(site / "python/lib/python3.12/site-packages"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == [top["version"], "https://example.invalid/x?q=a+b"]

    again = lambda_handler({"ModuleName": "requests"}, CTX)["body"]
    assert again["Unchanged"] is True
    assert again["Version"] == body["Version"]
    assert again["LayerVersionArn"] == body["LayerVersionArn"]
